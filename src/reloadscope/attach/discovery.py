"""Which processes are Python processes this user may attach to (psutil)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import psutil

from .client import agent_listens
from .elfinfo import interpreter

_PYTHON = re.compile(r"(^|/)(python|pypy)[\d.]*$")


@dataclass(frozen=True)
class PythonProcess:
    pid: int
    python: str | None
    cmdline: tuple[str, ...]
    rss: int
    agent: bool

    def to_json(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "python": self.python,
            "cmdline": list(self.cmdline),
            "rss": self.rss,
            "agent": self.agent,
        }


def python_version(proc: psutil.Process) -> str | None:
    """The CPython ``major.minor`` a process runs, read from the ELF files it maps
    (``elfinfo``), never from a file name; None when unreadable."""
    found = interpreter(proc.pid)
    return found.version if found is not None else None


def is_python(proc: psutil.Process) -> bool:
    """Does the process run CPython (under any executable name: uWSGI, an embedding host, a
    copied binary)?  Decided by CPython's symbols in what it maps.  When its files cannot be
    read (another user's process, without root), a Python-looking name is taken at its word:
    attaching then fails with the permission error, which says what to do."""
    if interpreter(proc.pid) is not None:
        return True
    try:
        readable = os.access(f"/proc/{proc.pid}/exe", os.R_OK)
        exe = proc.exe()
        name = proc.name()
    except (psutil.Error, OSError):
        return False
    return not readable and bool(_PYTHON.search(os.path.realpath(exe)) or _PYTHON.search(name))


def python_processes() -> list[PythonProcess]:
    me = os.getpid()
    uid = os.getuid()
    out = []
    for proc in psutil.process_iter(["pid", "uids", "cmdline", "memory_info"]):
        try:
            if proc.pid == me or (uid != 0 and proc.info["uids"].real != uid):
                continue
            if not is_python(proc):
                continue
            rss = proc.info["memory_info"].rss if proc.info["memory_info"] else 0
            out.append(
                PythonProcess(
                    proc.pid,
                    python_version(proc),
                    tuple(proc.info["cmdline"] or ()),
                    rss,
                    # Under the target's uid: root lists other users' processes too.
                    agent_listens(proc.pid, proc.info["uids"].real),
                )
            )
        except (psutil.Error, OSError):
            continue
    return sorted(out, key=lambda p: p.pid)
