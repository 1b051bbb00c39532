"""One reloadscope at a time per target and user: an flock on a file only the caller can write.

Two clients injecting into one process at once collide in ptrace (the second attach fails with
EPERM), and one client's detach removes the agent the other is talking to.  So a session holds
``/tmp/reloadscope-client-<uid>/attach-<pid>.lock`` from before it looks for an agent until it
has detached.  The directory is the caller's own (mode 0700, checked, never followed through a
symbolic link): a path another user controls could not be trusted to serialize anything.  The
lock is the kernel's: a client that dies releases it.  Clients of different users do not share
a lock; they can still collide in ptrace, which the session then names.
"""

from __future__ import annotations

import fcntl
import os
import stat
import sys
import time
from collections.abc import Callable

from .client import AttachError

LOCK_TIMEOUT = 60.0
POLL = 0.05


def lock_dir() -> str:
    return f"/tmp/reloadscope-client-{os.getuid()}"


def _open_private_dir(path: str) -> int:
    """A descriptor of ``path``, created mode 0700 if missing, which must be this user's own
    private directory (not a symbolic link)."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise AttachError(f"cannot create {path}: {e.strerror}") from None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        raise AttachError(
            f"{path} is not a directory of this user (a symbolic link?): remove it and try again"
        ) from None
    st = os.fstat(fd)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        os.close(fd)
        raise AttachError(
            f"{path} is not a private directory of this user (owner uid {st.st_uid}, mode "
            f"{stat.S_IMODE(st.st_mode):04o}): remove it and try again"
        )
    return fd


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""


def notify_stderr(message: str) -> None:
    """Tell the user on stderr, before any terminal UI has started, why nothing happens yet."""
    print(f"reloadscope: {message}", file=sys.stderr, flush=True)


class AttachLock:
    """Held from ``acquire`` until ``release``; the file holds the holder's PID, for the
    message a waiting client shows."""

    def __init__(self, dir_fd: int, name: str, fd: int) -> None:
        self._dir_fd = dir_fd
        self._name = name
        self._fd: int | None = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Removed while still held: a waiter that opened this file finds, once it gets the
            # lock, that the name no longer leads to it, and opens the new one.
            os.unlink(self._name, dir_fd=self._dir_fd)
        except OSError:
            pass
        os.close(fd)
        os.close(self._dir_fd)


def acquire(
    pid: int,
    *,
    timeout: float = LOCK_TIMEOUT,
    on_wait: Callable[[str], None] | None = notify_stderr,
) -> AttachLock:
    """The lock of target ``pid`` for this user; waits for another client holding it (saying
    so through ``on_wait`` once) at most ``timeout`` seconds."""
    dir_fd = _open_private_dir(lock_dir())
    name = f"attach-{pid}.lock"
    deadline = time.monotonic() + timeout
    told = False
    try:
        while True:
            try:
                fd = os.open(
                    name,
                    os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                    0o600,
                    dir_fd=dir_fd,
                )
            except OSError as e:
                raise AttachError(f"cannot open {lock_dir()}/{name}: {e.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                who = f"another reloadscope (PID {holder})" if holder else "another reloadscope"
                if time.monotonic() > deadline:
                    raise AttachError(
                        f"{who} has been attached to process {pid} for over {timeout:.0f} s: "
                        "try again when it has finished"
                    ) from None
                if not told and on_wait is not None:
                    on_wait(f"waiting for {who}, attached to process {pid}, to finish")
                    told = True
                time.sleep(POLL)
                continue
            try:
                now = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                now = None
            mine = os.fstat(fd)
            if now is None or (now.st_dev, now.st_ino) != (mine.st_dev, mine.st_ino):
                os.close(fd)  # released and removed by its last holder meanwhile: open anew
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return AttachLock(dir_fd, name, fd)
    except BaseException:
        os.close(dir_fd)
        raise
