"""Reach a process by PID: check it, find or start its agent, and leave it as it was."""

from __future__ import annotations

import os
import socket

import psutil

from ..agent.server import socket_path
from .client import AttachError, Client, agent_listens
from .discovery import is_python


def check_target(pid: int) -> psutil.Process:
    """The process, or an AttachError saying why it cannot be a target."""
    if pid == os.getpid():
        raise AttachError("that is reloadscope's own process")
    try:
        proc = psutil.Process(pid)
        uids = proc.uids()
    except psutil.NoSuchProcess:
        raise AttachError(f"no process with PID {pid} (see 'reloadscope ps')") from None
    except psutil.AccessDenied:
        raise AttachError(f"permission denied reading process {pid}") from None
    if os.getuid() != 0 and uids.real != os.getuid():
        raise AttachError(
            f"process {pid} belongs to another user (uid {uids.real}); run reloadscope as "
            "that user, or as root"
        )
    if not is_python(proc):
        try:
            name = proc.name()
        except psutil.Error:
            name = "?"
        raise AttachError(f"process {pid} ({name}) is not a Python process")
    from .discovery import python_version

    version = python_version(proc)
    if version is not None and tuple(map(int, version.split("."))) < (3, 10):
        raise AttachError(
            f"process {pid} runs Python {version}; reloadscope needs CPython 3.10 or newer"
        )
    return proc


def _answers(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


class Session:
    """A connection to the agent of ``pid``; ``close()`` detaches an agent we injected."""

    def __init__(self, pid: int, *, timeout: float = 120.0) -> None:
        proc = check_target(pid)
        self.pid = pid
        self.injected = False
        uid = proc.uids().real
        page = None
        path = socket_path(pid, uid)
        if agent_listens(pid, uid) and not _answers(path):
            os.unlink(path)  # left by an earlier process with this PID that died
        if not agent_listens(pid, uid):
            from .discovery import python_version
            from .inject import inject

            page = inject(pid, uid, python_version(proc))
            self.injected = True
        self.client = Client(pid, timeout=timeout, uid=uid)
        if page is not None:
            address, size = page
            if self.client.request("release", address=address, size=size) == "client":
                from .inject import unmap

                unmap(pid, address, size)

    def close(self) -> None:
        if self.injected:
            try:
                self.client.detach()
            except AttachError:
                pass
        else:
            self.client.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
