"""Where the UI's data comes from: a live agent, this process, or a snapshot file.

The app calls these from a worker thread and never reads anything else, so every screen works
the same on all three; only ``live`` sources can rescan and collect garbage.

The two that can rescan can also be followed (``reloadscope.follow``): ``follows`` says
whether the process can tell when it reloads, ``wait(after, timeout)`` waits for that (the
agent's ``wait`` request), and ``hurry()`` ends a pending wait from another thread.  A file
does not change, so ``FileSource`` has none of them.

``fix`` gives the repair plan (``reloadscope.fixplan``), or with ``apply`` carries out the
changes whose keys are in ``only`` (those the user reviewed) and returns the result.  A file's
plan comes from the paths it recorded (``fixplan.from_report``) and is never applied
(``CannotApply``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ..fixplan import FixPlan, FixResult
from ..model import Report


class CannotApply(Exception):
    """A snapshot file holds no objects: its plan can be read, never carried out."""


class Source(Protocol):
    kind: str  # "live", "process" or "file"
    description: str
    can_rescan: bool

    def load(self, *, collect: bool = True) -> Report: ...

    def save(self, report: Report, path: str | None = None) -> Path: ...

    def fix(self, *, apply: bool = False, only: list[str] | None = None) -> FixPlan | FixResult:
        """The repair plan (``apply`` false: nothing is written), or the changes whose keys are
        in ``only`` (all of a new plan when None) carried out, and the scan run again."""
        ...

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

    def fix(self, *, apply: bool = False, only: list[str] | None = None) -> FixPlan | FixResult:
        if apply:
            raise CannotApply(
                f"{self.path.name} is a snapshot: it holds no objects and cannot be fixed; fix "
                "the live process instead (reloadscope fix PID --apply)"
            )
        from ..fixplan import from_report

        return from_report(self.load())

    def close(self) -> None:
        pass


class ProcessSource:
    """This very process (``reloadscope.breakpoint()``)."""

    kind = "process"
    can_rescan = True

    def __init__(self) -> None:
        self.description = f"this process (pid {os.getpid()})"
        self._scanning = threading.Lock()  # one scan at a time, asked for or followed
        self._hurry = threading.Event()
        self.last_sequence: int | None = None  # the recorder's, when the last scan began

    def load(self, *, collect: bool = True) -> Report:
        from .. import agent, scan

        with self._scanning:
            rec = agent.recorder()
            self.last_sequence = rec.sequence if rec is not None else None
            return scan(collect=collect)

    @property
    def follows(self) -> bool:
        """Recording is on here (``install()``), so reloads are told as they happen."""
        from .. import agent

        return agent.recorder() is not None

    def wait(self, after: int | None, timeout: float) -> dict[str, Any]:
        """This process's recorder's generation events after ``after`` (the agent's ``wait``,
        called directly), until ``timeout`` or ``hurry()``."""
        import time

        from ..agent import wait_events

        self._hurry.clear()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            heard: dict[str, Any] = wait_events(
                {"after": after, "timeout": max(0.0, min(left, 0.25))}
            )
            if heard["events"] or heard["missed"] or after is None or not heard["recording"]:
                return heard
            if left <= 0 or self._hurry.is_set():
                return heard

    def hurry(self) -> None:
        self._hurry.set()

    def save(self, report: Report, path: str | None = None) -> Path:
        from ..snapshot import write

        return write(report, path)

    def fix(self, *, apply: bool = False, only: list[str] | None = None) -> FixPlan | FixResult:
        """``reloadscope.fix`` in this process, one at a time with the scans."""
        from .. import fix

        with self._scanning:
            return fix(dry_run=not apply, only=only)

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
        self._born = _create_time(pid)  # the same process later, not another with its PID
        # One request at a time on the connection; a scan asked for ends a pending wait
        # (``hurry``) and goes first (``_free``).
        self._lock = threading.Lock()
        self._free = threading.Event()
        self._free.set()

    def load(self, *, collect: bool = True) -> Report:
        self._free.clear()
        try:
            self.session.client.hurry()
            with self._lock:
                return self.session.client.scan(collect=collect)
        finally:
            self._free.set()

    @property
    def last_sequence(self) -> int | None:
        """The agent's generation event number when the last scan began."""
        return self.session.client.last_sequence

    @property
    def follows(self) -> bool:
        """The agent tells when the process reloads (agents before reloadscope's follow do
        not: they are polled)."""
        return self.session.client.follows

    def wait(self, after: int | None, timeout: float) -> dict[str, Any]:
        """The agent's generation events after ``after`` (``Client.wait``); a scan asked
        for meanwhile goes first."""
        self._free.wait()
        with self._lock:
            return self.session.client.wait(after, timeout)

    def hurry(self) -> None:
        self.session.client.hurry()

    @property
    def ended(self) -> bool:
        """The process has exited (or is a zombie waiting for its parent): its agent and
        connection are gone, there is nothing more to scan."""
        born = _create_time(self.pid)
        return born is None or (self._born is not None and born != self._born)

    @property
    def injected(self) -> bool:
        """The agent was injected by this attach: it leaves when the UI detaches, and the
        reload history it recorded meanwhile goes with it."""
        return bool(self.session.injected)

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

    def fix(self, *, apply: bool = False, only: list[str] | None = None) -> FixPlan | FixResult:
        """``Client.fix`` on the agent; like a scan asked for, it goes before a pending wait."""
        self._free.clear()
        try:
            self.session.client.hurry()
            with self._lock:
                return self.session.client.fix(apply=apply, only=only)
        finally:
            self._free.set()

    def close(self) -> None:
        self._free.clear()  # a follower waits no more
        self.session.client.hurry()
        got = self._lock.acquire(timeout=5)
        try:
            self.session.close()
        finally:
            if got:
                self._lock.release()
            self._free.set()  # a follower still waiting finds the connection closed


def _create_time(pid: int) -> float | None:
    """When ``pid`` started; None once it has exited (a zombie has exited too)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(proc.create_time())
    except psutil.Error:
        return None
