"""What a target process has: threads, open files, progress (from /proc)."""

from __future__ import annotations

import os
from pathlib import Path


def tasks(pid: int) -> set[str]:
    return set(os.listdir(f"/proc/{pid}/task"))


def fds(pid: int) -> set[str]:
    """What the process has open, less the ticks file it rewrites itself."""
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if "ticks" not in target:
            out.add(f"{fd}:{target}")
    return out


def ticks(d: Path) -> int:
    """The progress counter a test target writes (atomically) to ``d/ticks``."""
    try:
        return int((d / "ticks").read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0
