"""Following a live process: rescan once its reloads settle, and say what each rescan changed.

Used by the UI (``attach PID``, ``breakpoint()``) and by ``reloadscope report PID --watch``.
The agent tells generations as they begin and end (its ``wait`` request); ``follow`` rescans
when they have settled: no generation still running, ``DEBOUNCE_S`` after the last one ended,
and never sooner than ``MIN_INTERVAL_S`` or ``SCAN_SCALE`` times the last scan's duration
after the last scan ended, so a busy process is never rescanned in a loop.  An agent that
cannot tell (an older reloadscope's) is polled instead: a rescan every ``POLL_S`` seconds
(``RELOADSCOPE_POLL_S`` changes it), or ``POLL_SCALE`` times the last scan's duration if longer.

No Textual here, and nothing of the agent: this runs in the client.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # typing is not imported at run time: starting must stay cheap
if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterable
    from typing import Any

    from .holders import Holder
    from .model import Report, StaleObject

DEBOUNCE_S = 0.75
MIN_INTERVAL_S = 1.0
SCAN_SCALE = 4.0


def _poll_s(default: float = 10.0) -> float:
    try:
        value = float(os.environ.get("RELOADSCOPE_POLL_S", default))
    except ValueError:
        return default
    return value if value > 0 else default


POLL_S = _poll_s()
POLL_SCALE = 20.0
WAIT_S = 2.0  # the longest single wait; the loop looks at ``stop`` and ``paused`` in between
STUCK_S = 30.0  # a generation heard begun but never ended is taken as ended after this


class Settle:
    """When a rescan is due, from the generation events heard (only reloads count: a first
    import is no reload)."""

    def __init__(
        self,
        debounce: float = DEBOUNCE_S,
        min_interval: float = MIN_INTERVAL_S,
        scale: float = SCAN_SCALE,
    ) -> None:
        self.debounce = debounce
        self.min_interval = min_interval
        self.scale = scale
        self.pending = False  # reloads heard since the last scan began
        self.running: set[tuple[str, int]] = set()
        self.last_event = 0.0
        self.earliest = 0.0  # no automatic scan before this

    def hear(self, events: Iterable[dict[str, Any]], now: float, *, missed: bool = False) -> None:
        for e in events:
            if e.get("reload") is not True:
                continue
            key = (str(e.get("module")), int(e.get("generation") or 0))
            if e.get("status") == "running":
                self.running.add(key)
            else:
                self.running.discard(key)
            self.pending = True
            self.last_event = now
        if missed:  # more happened than the agent could keep: rescan all the same
            self.pending = True
            self.last_event = now

    def due(self, now: float) -> bool:
        if not self.pending or now < self.earliest:
            return False
        quiet = now - self.last_event
        if self.running and quiet < STUCK_S:
            return False
        return quiet >= self.debounce

    def until_due(self, now: float, longest: float) -> float:
        """How long to wait for more events before ``due`` may turn true (at most ``longest``)."""
        if not self.pending:
            return longest
        wake = max(self.earliest, self.last_event + self.debounce)
        if self.running:
            wake = max(wake, self.last_event + STUCK_S)
        return min(longest, max(0.0, wake - now))

    def scanned(self, began: float, ended: float) -> None:
        """A scan ran from ``began`` to ``ended`` (automatic or asked for): what it shows
        includes every reload heard before it began."""
        if self.last_event <= began:
            self.pending = False
        self.earliest = ended + max(self.min_interval, self.scale * (ended - began))


def follow(
    scan: Callable[[], Report],
    on_report: Callable[[Report], None],
    *,
    wait: Callable[[int | None, float], dict[str, Any]] | None,
    stop: threading.Event,
    paused: Callable[[], bool] = lambda: False,
    on_heard: Callable[[list[dict[str, Any]]], None] | None = None,
    after: int | None = None,
    settle: Settle | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Until ``stop`` is set: wait for reloads (``wait(after, timeout)``, the agent's
    ``wait`` request; None for an agent that cannot tell, which is polled), and once they have
    settled, and ``paused()`` is false, ``scan()`` and hand the report to ``on_report``.
    ``on_heard`` hears the reload events as they come.  ``after``: the agent's event number
    when the report shown last began (``Client.last_sequence``), so that no reload between
    that scan and this call is missed; None asks the agent for its number now.  Whatever
    ``scan`` or ``wait`` raises ends it (the process went away)."""
    settle = settle or Settle()
    if wait is not None:
        first = wait(None, 0)
        if first.get("recording") is False:
            wait = None  # nothing records there, so nothing would be told: poll
        if after is None:
            after = int(first.get("sequence", 0))
    last_duration = 0.0
    polled = clock()
    while not stop.is_set():
        now = clock()
        if wait is None:
            interval = max(POLL_S, POLL_SCALE * last_duration)
            if now - polled < interval or paused():
                stop.wait(min(WAIT_S, max(0.05, interval - (now - polled))))
                continue
            settle.pending = True
        else:
            # Paused, events are still heard (they are cheap) but nothing is scanned.
            timeout = WAIT_S if paused() else settle.until_due(now, WAIT_S)
            heard = wait(after, timeout)
            sequence = heard.get("sequence")
            after = sequence if type(sequence) is int else after
            now = clock()
            events = heard.get("events", [])
            settle.hear(events, now, missed=heard.get("missed") is True)
            reloads = [e for e in events if e.get("reload") is True]
            if reloads and on_heard is not None:
                on_heard(reloads)
            if heard.get("recording") is False:
                wait = None  # recording stopped (uninstall()): poll from now on
                continue
            if not settle.due(now) or paused() or stop.is_set():
                continue
        began = clock()
        report = scan()
        polled = ended = clock()
        last_duration = ended - began
        settle.scanned(began, ended)
        if not stop.is_set():
            on_report(report)


# -- what changed between two reports ---------------------------------------------------------


def stale_key(module: str, s: StaleObject) -> tuple[str, str, str, str, int | None]:
    """What makes a stale entry the same one in the next scan (its owner module, kind, name,
    type and generation; object ids change meaning between scans)."""
    return (module, s.kind, s.qualname, s.type, s.generation)


StaleKey = tuple[str, str, str, str, "int | None"]


def among(key: StaleKey, keys: set[StaleKey]) -> bool:
    """Is ``key``'s entry in ``keys``?  An unknown generation (None) matches any number: an
    object a late agent found by evidence alone gets the number of the module's arrival
    generation once recording has seen the module run again, and stays the same object."""
    if key in keys:
        return True
    if key[4] is not None:
        return (*key[:4], None) in keys
    return any(k[:4] == key[:4] for k in keys)


def stale_keys(report: Report | None) -> set[tuple[str, str, str, str, int | None]]:
    if report is None:
        return set()
    return {stale_key(m.name, s) for m in report.modules for s in m.stale}


class Change:
    """What one module's entry changed between two reports: its new generations, the stale
    entries that appeared, and how many went away."""

    __slots__ = ("error", "generations", "gone", "gone_names", "module", "new", "stale", "status")

    def __init__(
        self,
        module: str,
        generations: list[int],
        status: str | None,
        error: str | None,
        stale: int,
        new: list[StaleObject],
        gone: int,
        gone_names: list[str] | None = None,
    ) -> None:
        self.module = module
        self.generations = generations
        self.status = status
        self.error = error
        self.stale = stale
        self.new = new
        self.gone = gone
        self.gone_names = gone_names or []  # "kind qualname" of what went away

    def line(self, *, names: bool = True) -> str:
        """One line: ``gen 3 of plug: +2 stale [function handler, code handler], -1 gone
        [function handler] (4 now)`` (the first few named; without ``names``, counts only)."""
        from .inert import inert

        g = self.generations
        if not g:
            head = inert(self.module)
        else:
            numbers = str(g[0]) if len(g) == 1 else f"{g[0]}-{g[-1]}"
            head = f"gen{'s' if len(g) > 1 else ''} {numbers} of {inert(self.module)}"
            if self.status == "failed":
                head += f" failed ({inert(self.error or '?')})"
        new = _first_few(self.new_names()) if names else ""
        gone = _first_few(self.gone_names) if names else ""
        return f"{head}: +{len(self.new)} stale{new}, -{self.gone} gone{gone} ({self.stale} now)"

    def new_names(self) -> list[str]:
        return [f"{s.kind} {s.qualname}" for s in self.new]

    def as_json(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "generations": self.generations,
            "status": self.status,
            "stale": self.stale,
            "new": len(self.new),
            "gone": self.gone,
            "new_names": self.new_names(),
            "gone_names": list(self.gone_names),
        }


SHOWN_NAMES = 3


def _first_few(names: list[str]) -> str:
    """`` [function handler, class Widget, +2 more]``; empty for none."""
    if not names:
        return ""
    from .inert import inert

    shown = [inert(n) for n in names[:SHOWN_NAMES]]
    if len(names) > SHOWN_NAMES:
        shown.append(f"+{len(names) - SHOWN_NAMES} more")
    return " [" + ", ".join(shown) + "]"


def changes(old: Report | None, new: Report) -> list[Change]:
    """Per module, what ``new`` shows that ``old`` did not (modules with no change left out),
    in ``new``'s order, then modules ``old`` had and ``new`` has no more."""
    before = {m.name: m for m in old.modules} if old is not None else {}
    found: list[Change] = []
    for m in new.modules:
        prev = before.pop(m.name, None)
        old_numbers = {g.number for g in prev.generations} if prev is not None else set()
        # New generations that ran again: not the module as recording found it ("arrival"),
        # nor its first import when it is listed now for the first time, with its reload.
        fresh = [g for g in m.generations if g.number not in old_numbers and g.kind != "arrival"]
        if len(fresh) > 1 and fresh[0].number == 0 and fresh[0].kind == "import":
            del fresh[0]
        was = {stale_key(m.name, s) for s in prev.stale} if prev is not None else set()
        now = {stale_key(m.name, s) for s in m.stale}
        added = [s for s in m.stale if not among(stale_key(m.name, s), was)]
        went = [
            f"{s.kind} {s.qualname}"
            for s in (prev.stale if prev is not None else ())
            if not among(stale_key(m.name, s), now)
        ]
        gone = len(went)
        if fresh or added or gone:
            last = fresh[-1] if fresh else None
            found.append(
                Change(
                    m.name,
                    [g.number for g in fresh],
                    last.status if last is not None else None,
                    last.error if last is not None else None,
                    m.stale_count,
                    added,
                    gone,
                    went,
                )
            )
    for name, prev in before.items():
        if prev.stale:
            went = [f"{s.kind} {s.qualname}" for s in prev.stale]
            found.append(Change(name, [], None, None, 0, [], len(prev.stale), went))
    return found


# -- holders that grew ---------------------------------------------------------------------------


class HolderChange:
    """A holder (``reloadscope.holders``) that grew between two reports: it is growing (holds
    stale objects of consecutive generations) and holds ``new`` more than before."""

    __slots__ = ("holder", "new")

    def __init__(self, holder: Holder, new: int) -> None:
        self.holder = holder
        self.new = new

    def line(self) -> str:
        """``holder __main__.SUBSCRIBERS grew: +1 stale (3 now, gens 0-2)``."""
        from .inert import inert
        from .textreport import generations_text

        h = self.holder
        return (
            f"holder {inert(h.path)} grew: +{self.new} stale ({h.count} now, "
            f"{generations_text(h.generations)}): {inert(h.hint)}"
        )

    def as_json(self) -> dict[str, Any]:
        h = self.holder
        return {
            "holder": h.path,
            "root": h.root,
            "count": h.count,
            "new": self.new,
            "generations": list(h.generations),
            "growing": h.growing,
            "hint": h.hint,
        }


def grown_holders(old: Report | None, new: Report) -> list[HolderChange]:
    """The growing holders of ``new`` that hold more stale objects than in ``old``, in
    ``new``'s order (most stale first)."""
    before = {(h.root, h.path): h.count for h in old.holders} if old is not None else {}
    return [
        HolderChange(h, h.count - before.get((h.root, h.path), 0))
        for h in new.holders
        if h.growing and h.count > before.get((h.root, h.path), 0)
    ]
