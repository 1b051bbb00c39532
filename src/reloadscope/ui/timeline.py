"""The timeline screen (key ``t``): each module's generations over time, with what each still
has alive (stale objects, their bytes, what only they keep alive) and a bar, so that growth
from reload to reload shows at a glance.  ``timeline_text`` computes it (no widgets)."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..inert import inert
from ..model import Figures, Module, Report
from ..textreport import plural

BAR = 24
HEAD = ("gen", "started", "how", "stale", "bytes", "retained", "")


def human(n: int | None, capped: bool = False) -> str:
    """``2104 B``, ``9.0 kB``, ``85.3 MB``; ``?`` when not measured; ``>=`` when capped."""
    if n is None:
        return "?"
    ge = ">=" if capped else ""
    if n < 10_000:
        return f"{ge}{n} B"
    for unit, scale in (("kB", 1e3), ("MB", 1e6), ("GB", 1e9)):
        if n < scale * 1000 or unit == "GB":
            return f"{ge}{n / scale:.1f} {unit}"
    return f"{ge}{n} B"  # not reached


def _how(kind: str, trigger: str | None) -> str:
    """``import``, ``reload t.py:18`` (the trigger's file name and line, not its directory)."""
    if not trigger:
        return kind
    return f"{kind} {trigger.rsplit('/', 1)[-1]}"


def _measure(f: Figures) -> int:
    return f.retained_bytes if f.retained_bytes is not None else f.stale_bytes


def module_rows(m: Module, longest: int = BAR) -> list[tuple[str, ...]]:
    """One row per generation (and one for objects of unknown generation), with its bar
    scaled to the module's largest figure (retained bytes, or stale bytes if not measured)."""
    figs: list[tuple[str, str, str, Figures]] = [
        (
            str(g.number),
            g.started_at.replace("+00:00", "").replace("T", " "),
            _how(g.kind, g.trigger),
            g.figures,
        )
        for g in m.generations
    ]
    if m.unknown_generation is not None:
        figs.insert(0, ("?", "before recording", "", m.unknown_generation))
    top = max((_measure(f) for *_, f in figs), default=0)
    rows: list[tuple[str, ...]] = []
    for number, when, how, f in figs:
        width = round(longest * _measure(f) / top) if top else 0
        bar = "█" * width if width or not f.stale else "▏"
        rows.append(
            (
                number,
                when,
                how,
                str(f.stale),
                human(f.stale_bytes),
                human(f.retained_bytes, f.retained_capped),
                bar,
            )
        )
    return rows


def module_text(m: Module, bar: int = BAR) -> str:
    rows: list[tuple[str, ...]] = [HEAD, *module_rows(m, bar)]
    widths = [max(len(inert(r[i])) for r in rows) for i in range(len(HEAD))]
    right = {0, 3, 4, 5}
    now = "" if m.current_generation is None else f", current {m.current_generation}"
    lines = [f"{inert(m.name)}: {plural(len(m.generations), 'generation')}{now}"]
    for r in rows:
        cells = [
            inert(c).rjust(w) if i in right else inert(c).ljust(w)
            for i, (c, w) in enumerate(zip(r, widths))
        ]
        lines.append("  " + "  ".join(cells).rstrip())
    return "\n".join(lines)


def timeline_text(report: Report, first: str | None = None, *, bar: int = BAR) -> str:
    """Every module's timeline, ``first`` (the selected module) on top; the longest bar is
    ``bar`` cells."""
    modules = sorted(report.modules, key=lambda m: (m.name != first, -m.stale_count, m.name))
    if not modules:
        return "No module was reloaded and nothing is stale."
    parts = [module_text(m, bar) for m in modules]
    legend = (
        "stale: objects that generation made and that are still alive; bytes: their sizes; "
        "retained: at least what only they keep alive, theirs included (>= the scan's bound "
        "stopped it, ? not measured); the bar: retained (or bytes) against the module's largest"
    )
    return "\n\n".join([*parts, legend])


class TimelineScreen(ModalScreen[None]):
    """A scrollable page with every module's timeline; escape, q or t closes it."""

    BINDINGS: ClassVar = [Binding("escape,q,t", "dismiss", "close")]

    def __init__(self, report: Report, first: str | None = None) -> None:
        super().__init__()
        self.report, self.first = report, first
        self.text = timeline_text(report, first)

    def compose(self) -> ComposeResult:
        # Bars as long as the width leaves (at most BAR): a row stays on one line at 80.
        bare = timeline_text(self.report, self.first, bar=0).split("\n\n")
        widest = max((len(line) for part in bare[:-1] for line in part.splitlines()), default=0)
        room = self.app.size.width - 4 - widest - 2  # border, padding, the bar's gap
        self.text = timeline_text(self.report, self.first, bar=min(max(room, 3), BAR))
        *modules, legend = self.text.split("\n\n")
        # A row is never wrapped (narrower than its columns, it is cut); the legend is.
        rows = Text("\n\n".join(modules), no_wrap=True, overflow="crop")
        with VerticalScroll(id="timeline"):
            yield Static(Group(rows, Text(""), Text(legend)), id="timeline-text")

    def on_mount(self) -> None:
        self.query_one("#timeline").border_title = "timeline: what each generation still has alive"
