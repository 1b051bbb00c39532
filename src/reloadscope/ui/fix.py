"""The fix dialog (keys ``b``: the selected stale object, ``B``: all of them).

It asks the source for the repair plan (``Source.fix``, in a worker thread: nothing is written)
and lists every change it would make, as code, and every holder it cannot change, and why,
before anything is written.  ``y`` (or Enter on Apply) carries out exactly the changes listed
(their keys, ``only=``: a change the process finds new meanwhile is not made), then the dialog
shows what was applied, skipped, gone and what remains, and the app scans again.  Escape
cancels: only the plan was made.  A snapshot's plan is shown and cannot be applied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from ..fixplan import FixPlan, FixResult, _n
from ..inert import inert, inert_lines
from ..model import StaleObject
from .source import Source

# The agent's reason for a change it skipped because ``only`` left it out (agent/repair.py):
# such a change was never listed in the dialog, so the result does not list it either.
NOT_REVIEWED = "not in the reviewed plan"


class Scope:
    """Which stale entry the dialog is about (``None`` for the whole process): the plan's
    changes and reasons of its module, qualified name and generation (an instance's fix is its
    class's, ``__class__`` set to the current class, which has the same three)."""

    def __init__(self, module: str, s: StaleObject) -> None:
        self.module = module
        self.qualname = s.qualname
        self.kind = s.kind
        self.generation = s.generation
        self.count = s.count

    @property
    def name(self) -> str:
        gen = "generation ?" if self.generation is None else f"generation {self.generation}"
        return f"{self.module}.{self.qualname} ({self.kind}, {gen})"

    def holds(self, c: object) -> bool:
        return (
            getattr(c, "module", None) == self.module
            and getattr(c, "qualname", None) == self.qualname
            and getattr(c, "generation", None) == self.generation
        )


def scoped(plan: FixPlan, scope: Scope | None) -> FixPlan:
    """The part of ``plan`` about ``scope`` (all of it for None)."""
    if scope is None:
        return plan
    return FixPlan(
        pid=plan.pid,
        changes=tuple(c for c in plan.changes if scope.holds(c)),
        cannot=tuple(k for k in plan.cannot if scope.holds(k)),
        stale=scope.count,
        blind_spots=plan.blind_spots,
        applicable=plan.applicable,
    )


def plan_text(plan: FixPlan, scope: Scope | None) -> str:
    """What the dialog shows before anything is written: every change, as code, and every
    holder it cannot change, with why (``FixPlan.text`` with the dialog's keys)."""
    nothing = "Nothing to fix here."
    if scope is not None:
        nothing += (
            "\n(No holder of it can be rebound: it may be held only by other stale objects, "
            "and go with them; B plans a fix of everything.)"
        )
    text = plan.text(
        subject=scope.name if scope is not None else "every stale object",
        review="Nothing has been written yet. y (or Apply) carries out exactly these changes; "
        "escape cancels.",
        not_applicable="From a snapshot: the paths it recorded, not checked again. A snapshot "
        "cannot be applied: fix the live process (reloadscope attach PID, or reloadscope fix "
        "PID --apply).",
        nothing=nothing,
    )
    return inert_lines(text)


def result_text(result: FixResult) -> str:
    """What applying did (``FixResult.text``), without the changes left out because they were
    not listed in the dialog."""
    from ..fixplan import FixPlan

    shown = FixPlan(
        result.pid,
        tuple(c for c in result.changes if c.reason != NOT_REVIEWED),
        result.cannot,
        result.stale,
        result.freed_with_others,
        result.blind_spots,
        result.applicable,
    )
    listed = FixResult(
        shown,
        tuple((c, why) for c, why in result.skipped if why != NOT_REVIEWED),
        gone=result.gone,
        remains=result.remains,
        report=result.report,
    )
    return inert_lines(listed.text())


class FixScreen(ModalScreen["FixResult | None"]):
    """Plan, review, apply.  Dismissed with the result when something was applied, else
    None; ``on_applied`` hears the result as soon as it is known (the app scans again)."""

    BINDINGS: ClassVar = [
        Binding("y", "apply", "apply"),
        Binding("escape,q,n", "close", "cancel"),
    ]

    def __init__(
        self,
        source: Source,
        scope: Scope | None,
        on_applied: Callable[[FixResult], None] | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.scope = scope
        self.on_applied = on_applied
        self.state = "planning"  # then review, applying, done; or failed
        self.plan: FixPlan | None = None
        self.result: FixResult | None = None
        self.text = "planning a fix... (nothing is written)"

    def compose(self) -> ComposeResult:
        with Vertical(id="fix"):
            with VerticalScroll(id="fix-body"):
                yield Static(self.text, id="fix-text", markup=False)
            with Horizontal(id="fix-buttons"):
                yield Button("Apply (y)", id="fix-apply", variant="warning", disabled=True)
                yield Button("Cancel (esc)", id="fix-cancel")

    def on_mount(self) -> None:
        what = self.scope.name if self.scope is not None else "every stale object"
        self.query_one("#fix").border_title = inert(f"fix: {what}")
        self.query_one("#fix-body").focus()
        self.make_plan()

    def _say(self, text: str) -> None:
        self.text = text
        self.query_one("#fix-text", Static).update(Text(text))

    # -- workers: the source is asked in a thread ------------------------------------------------
    @work(thread=True, exclusive=True, group="fix")
    def make_plan(self) -> None:
        try:
            plan = self.source.fix()
        except Exception as e:  # the source explains itself (detached, damaged file...)
            self.app.call_from_thread(self._failed, f"could not plan a fix: {e}")
            return
        assert isinstance(plan, FixPlan)
        self.app.call_from_thread(self._planned, plan)

    @work(thread=True, exclusive=True, group="fix")
    def carry_out(self, keys: list[str]) -> None:
        try:
            result = self.source.fix(apply=True, only=keys)
        except Exception as e:
            self.app.call_from_thread(self._failed, f"could not apply the fix: {e}")
            return
        assert isinstance(result, FixResult)
        self.app.call_from_thread(self._applied, result)

    # -- on the UI thread ------------------------------------------------------------------------
    def _planned(self, plan: FixPlan) -> None:
        if not self.is_attached:  # cancelled while planning
            return
        self.plan = scoped(plan, self.scope)
        self.state = "review"
        self._say(plan_text(self.plan, self.scope))
        apply = self.query_one("#fix-apply", Button)
        if not self.plan.applicable:
            apply.label = "snapshot: cannot apply"
        elif not self.plan.changes:
            apply.label = "nothing to apply"
        else:
            apply.label = f"Apply {_n(len(self.plan.changes), 'change')} (y)"
            apply.disabled = False

    def _applied(self, result: FixResult) -> None:
        self.result = result
        self.state = "done"
        if self.on_applied is not None:
            self.on_applied(result)
        if not self.is_attached:
            return
        self._say(result_text(result))
        self.query_one("#fix-apply", Button).display = False
        close = self.query_one("#fix-cancel", Button)
        close.label = "Close (esc)"
        close.disabled = False
        close.focus()

    def _failed(self, why: str) -> None:
        self.state = "failed"
        if not self.is_attached:
            return
        self._say(inert_lines(why))
        self.query_one("#fix-apply", Button).disabled = True
        self.query_one("#fix-cancel", Button).disabled = False

    # -- actions ---------------------------------------------------------------------------------
    def action_apply(self) -> None:
        plan = self.plan
        if self.state != "review" or plan is None:
            return
        if not plan.applicable:
            self.notify("a snapshot cannot be fixed: fix the live process", severity="warning")
            return
        if not plan.changes:
            return
        self.state = "applying"
        self._say(self.text + f"\n\napplying {_n(len(plan.changes), 'change')}...")
        self.query_one("#fix-apply", Button).disabled = True
        self.query_one("#fix-cancel", Button).disabled = True
        self.carry_out([c.key for c in plan.changes])

    def action_close(self) -> None:
        if self.state == "applying":  # under way in the process: wait for what it did
            self.notify("applying: the result comes when the process has done it")
            return
        self.dismiss(self.result)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "fix-apply":
            self.action_apply()
        else:
            self.action_close()
