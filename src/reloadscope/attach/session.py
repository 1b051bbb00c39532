"""Reach a process by PID: check it, find or start its agent, and leave it as it was.

Before anything touches the target: it must not be stopped (gdb calling into a stopped process
leaves it to die of SIGSEGV once continued, and a stopped agent cannot answer) nor traced (one
tracer per thread).  One session per target and user at a time (``lock``), from the look for
an agent until the detach.  Whatever answers on the agent's socket is checked to be the
target's own agent before a byte of it is read (``client.AgentDir``).
"""

from __future__ import annotations

import os

from . import lock, procstate
from .client import AgentDir, AttachError, Client, NoAgent, start_failure
from .elfinfo import interpreter, named_python, process_name

TYPE_CHECKING = False  # typing is not imported at run time: starting must stay cheap
if TYPE_CHECKING:
    from collections.abc import Callable


def check_target(pid: int) -> str | None:
    """The CPython ``major.minor`` the process runs (None when its files cannot be read), or
    an AttachError saying why it cannot be a target (whether it is stopped or traced is
    looked at by ``Session``, under its lock).  Read from /proc, not with psutil, whose import
    alone would cost 'reloadscope report PID' a third of a bare interpreter's start."""
    if pid == os.getpid():
        raise AttachError("that is reloadscope's own process")
    uid = _real_uid(pid)
    if os.getuid() != 0 and uid != os.getuid():
        raise AttachError(
            f"process {pid} belongs to another user (uid {uid}); run reloadscope as "
            "that user, or as root"
        )
    found = interpreter(pid)  # read once: it parses the process's ELF files
    if found is None and not named_python(pid):
        raise AttachError(f"process {pid} ({process_name(pid) or '?'}) is not a Python process")
    version = found.version if found is not None else None
    if version is not None and tuple(map(int, version.split("."))) < (3, 10):
        raise AttachError(
            f"process {pid} runs Python {version}; reloadscope needs CPython 3.10 or newer"
        )
    return version


def _real_uid(pid: int) -> int:
    try:
        return procstate.real_uid(pid)
    except (FileNotFoundError, ProcessLookupError):
        raise AttachError(f"no process with PID {pid} (see 'reloadscope ps')") from None
    except PermissionError:
        raise AttachError(f"permission denied reading process {pid}") from None
    except (OSError, ValueError) as e:
        raise AttachError(f"cannot read process {pid}: {e}") from None


def _check_runnable(pid: int) -> None:
    why = procstate.refusal(pid)
    if why is not None:
        raise AttachError(why)


class Session:
    """A connection to the agent of ``pid``; ``close()`` detaches an agent we injected.

    ``on_wait`` hears, once, that another client of this user is attached to ``pid`` and this
    one waits for it (at most ``lock_timeout`` seconds).  ``progress`` hears each longer step
    it waits for ("injecting the agent into PID 123 (gdb)"), for a line on a terminal."""

    def __init__(
        self,
        pid: int,
        *,
        timeout: float = 120.0,
        on_wait: Callable[[str], None] | None = lock.notify_stderr,
        lock_timeout: float = lock.LOCK_TIMEOUT,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        check_target(pid)
        self.pid = pid
        self.injected = False
        self._progress = progress
        self._lock: lock.AttachLock | None = lock.acquire(
            pid, timeout=lock_timeout, on_wait=on_wait
        )
        try:
            # Stopped or traced: only now, under the lock, so that another client of this user
            # injecting at this moment (its gdb tracing the target) is waited for, not named.
            _check_runnable(pid)
            self.client = self._connect(_real_uid(pid), timeout)
        except BaseException:
            self._release()
            raise

    def _connect(self, uid: int, timeout: float) -> Client:
        pid = self.pid
        try:
            return Client(pid, timeout=timeout, uid=uid)
        except NoAgent as e:
            if e.stale:  # left by an earlier process with this PID, or an agent that died
                directory = AgentDir(pid, uid)
                try:
                    directory.remove_stale()
                finally:
                    directory.close()
        self._inject(uid)
        self.injected = True
        return Client(pid, timeout=timeout, uid=uid)

    def _inject(self, uid: int) -> None:
        import time

        from .elfinfo import python_version
        from .inject import inject

        pid = self.pid
        began = time.time()
        start_failure(pid, uid)  # one left by an earlier injection says nothing about this one
        try:
            inject(pid, uid, python_version(pid), progress=self._progress)
        except AttachError:
            # The agent could not start, and said why.
            why = start_failure(pid, uid, since=began)
            if why is not None:
                raise AttachError(
                    f"the agent could not start in process {pid}: {why}; start the program "
                    "with 'reloadscope run' or call reloadscope.install() in it"
                ) from None
            # A debugger that came after the check makes ptrace fail with EPERM, which gdb
            # words as a permission problem; name the debugger instead.
            by = procstate.tracer(pid)
            if by:
                raise AttachError(
                    f"another debugger (PID {by}) is attached to process {pid}: wait until "
                    f"{procstate.name(by)} (PID {by}) has detached, and try again"
                ) from None
            _check_runnable(pid)
            raise

    def _release(self) -> None:
        held, self._lock = self._lock, None
        if held is not None:
            held.release()

    def close(self) -> None:
        try:
            if self.injected:
                try:
                    self.client.detach()
                except AttachError:
                    pass
            else:
                self.client.close()
        finally:
            self._release()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
