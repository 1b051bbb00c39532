"""Which processes are Python processes this user may attach to (psutil)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil

from .client import agent_listens
from .elfinfo import interpreter, is_python, named_python, python_version

__all__ = ["PythonProcess", "is_python", "python_processes", "python_version"]


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


def python_processes() -> list[PythonProcess]:
    me = os.getpid()
    uid = os.getuid()
    out = []
    for proc in psutil.process_iter(["pid", "uids", "cmdline", "memory_info"]):
        try:
            if proc.pid == me or (uid != 0 and proc.info["uids"].real != uid):
                continue
            found = interpreter(proc.pid)  # read once: it parses the process's ELF files
            if found is None and not named_python(proc.pid):
                continue
            rss = proc.info["memory_info"].rss if proc.info["memory_info"] else 0
            out.append(
                PythonProcess(
                    proc.pid,
                    found.version if found is not None else None,
                    tuple(proc.info["cmdline"] or ()),
                    rss,
                    # Under the target's uid: root lists other users' processes too.
                    agent_listens(proc.pid, proc.info["uids"].real),
                )
            )
        except (psutil.Error, OSError):
            continue
    return sorted(out, key=lambda p: p.pid)
