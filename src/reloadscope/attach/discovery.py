"""Which processes are Python processes this user may attach to (psutil)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import psutil

from .client import agent_listens

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
    """The CPython version a process runs, from the libpython or executable it maps."""
    try:
        for m in proc.memory_maps(grouped=True):
            found = re.search(r"libpython(\d+\.\d+)", m.path)
            if found:
                return found.group(1)
        exe = proc.exe()
    except (psutil.Error, OSError):
        return None
    found = re.search(r"python(\d+\.\d+)", os.path.realpath(exe))
    return found.group(1) if found else None


def is_python(proc: psutil.Process) -> bool:
    try:
        exe = proc.exe()
        name = proc.name()
    except (psutil.Error, OSError):
        return False
    return bool(_PYTHON.search(os.path.realpath(exe)) or _PYTHON.search(name))


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
                    agent_listens(proc.pid),
                )
            )
        except (psutil.Error, OSError):
            continue
    return sorted(out, key=lambda p: p.pid)
