"""Where the UI's data comes from: a live agent, this process, or a snapshot file.

The app calls these from a worker thread and never reads anything else, so every screen works
the same on all three; only ``live`` sources can rescan and collect garbage.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ..model import Report


class Source(Protocol):
    kind: str  # "live", "process" or "file"
    description: str
    can_rescan: bool

    def load(self, *, collect: bool = True) -> Report: ...

    def save(self, report: Report, path: str | None = None) -> Path: ...

    def close(self) -> None: ...


class FileSource:
    kind = "file"
    can_rescan = False

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.description = f"snapshot {self.path.name}"

    def load(self, *, collect: bool = True) -> Report:
        from ..snapshot import load

        return load(self.path)

    def save(self, report: Report, path: str | None = None) -> Path:
        from ..snapshot import write

        return write(report, path)

    def close(self) -> None:
        pass


class ProcessSource:
    """This very process (``reloadscope.breakpoint()``)."""

    kind = "process"
    can_rescan = True

    def __init__(self) -> None:
        self.description = f"this process (pid {os.getpid()})"

    def load(self, *, collect: bool = True) -> Report:
        from .. import scan

        return scan(collect=collect)

    def save(self, report: Report, path: str | None = None) -> Path:
        from ..snapshot import write

        return write(report, path)

    def close(self) -> None:
        pass


class LiveSource:
    """Another process, through its agent (injected when it has none)."""

    kind = "live"
    can_rescan = True

    def __init__(self, pid: int, *, progress: Callable[[str], None] | None = None) -> None:
        """``progress`` hears what attaching waits for (an injection), as ``Session``'s."""
        from ..attach.session import Session

        self.pid = pid
        self.session = Session(pid, progress=progress)
        self.description = f"live process {pid} (Python {self.session.client.python})"

    def load(self, *, collect: bool = True) -> Report:
        return self.session.client.scan(collect=collect)

    def vitals(self) -> str:
        """RSS and CPU of the live process (psutil), for the header."""
        import psutil

        try:
            proc = psutil.Process(self.pid)
            rss = proc.memory_info().rss / 2**20
            cpu = proc.cpu_percent(interval=None)
        except psutil.Error:
            return "process gone"
        return f"RSS {rss:.0f} MiB, CPU {cpu:.0f}%"

    def save(self, report: Report, path: str | None = None) -> Path:
        from ..snapshot import write

        return write(report, path)

    def close(self) -> None:
        self.session.close()
