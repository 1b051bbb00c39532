"""What a target process has: threads, open files, progress (from /proc)."""

from __future__ import annotations

import os
import time
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


def progresses(d: Path, timeout: float = 5) -> bool:
    """Does the target's tick counter (``ticks``) advance within ``timeout`` seconds?"""
    t0 = ticks(d)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ticks(d) > t0:
            return True
        time.sleep(0.05)
    return False
