"""Following the process in the UI: rescan after its reloads settle, without a key press, and
show what changed (a line under the summary, new stale rows and changed modules highlighted).

``f`` pauses and resumes.  The rescans run in a thread of their own through
``reloadscope.follow.follow``; the source serializes them with the scans asked for (``r``,
``g``), so there is never more than one at a time.  A file does not change: nothing here
runs for a ``FileSource``.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

from rich.text import Text

from ..follow import POLL_S, Change, among, changes, follow, stale_key
from ..inert import inert
from . import view

if TYPE_CHECKING:
    from ..model import Module, Report, StaleObject
    from .app import ReloadScopeApp

NEW_STYLE = "bold green"
CHANGED_STYLE = "bold yellow"
MAX_GONE_NAMED = 4


class FollowState:
    """What the app knows of following: paused or not, what the last rescan changed, what
    was heard while paused."""

    def __init__(self, followable: bool) -> None:
        self.followable = followable
        self.paused = False
        self.stop = threading.Event()
        self.polling = False  # the agent cannot tell when it reloads
        self.stopped: str | None = None  # why following ended (the process went away)
        self.changes: list[Change] = []
        self.gone: dict[str, list[str]] = {}  # module -> names of the entries that went away
        self.new: set[tuple[str, str, str, str, int | None]] = set()
        self.unseen: list[str] = []  # reloads heard while paused, not yet shown


_states: weakref.WeakKeyDictionary[ReloadScopeApp, FollowState] = weakref.WeakKeyDictionary()


def state(app: ReloadScopeApp) -> FollowState:
    """The app's follow state (made on first use)."""
    found = _states.get(app)
    if found is None:
        found = _states[app] = FollowState(app.source.kind != "file")
    return found


def start(app: ReloadScopeApp) -> None:
    """Begin following (live and in-process sources); a file source gets no follow line."""
    st = state(app)
    if not st.followable:
        app.query_one("#follow").display = False
        return
    st.polling = not getattr(app.source, "follows", False)
    _line(app)
    # A thread of its own, not a Textual worker: it runs as long as the app (waiting for the
    # app's workers to complete means waiting for its scans), and never keeps the UI's
    # process from exiting.
    threading.Thread(target=_run, args=(app, st), name="reloadscope-follow", daemon=True).start()


def stop(app: ReloadScopeApp) -> None:
    """Before the source closes: the follower ends its wait at once."""
    st = state(app)
    st.stop.set()
    hurry = getattr(app.source, "hurry", None)
    if hurry is not None:
        try:
            hurry()
        except Exception:
            pass


def toggle(app: ReloadScopeApp) -> None:
    st = state(app)
    if not st.followable:
        app.notify("a snapshot file does not change: there is nothing to follow")
        return
    st.paused = not st.paused
    if not st.paused:
        st.unseen.clear()
    _line(app)
    app.refresh_bindings()


def check(app: ReloadScopeApp, action: str) -> bool | None:
    """Which of the two ``f`` bindings the footer shows (pause while following, resume
    while paused); neither for a file."""
    st = state(app)
    if not st.followable:
        return False
    return st.paused if action == "resume_follow" else not st.paused


def _run(app: ReloadScopeApp, st: FollowState) -> None:
    source: Any = app.source

    def scan() -> Report:
        app.call_from_thread(_line, app, "reload seen: rescanning...")
        report: Report = source.load(collect=True)
        return report

    def heard(events: list[dict[str, Any]]) -> None:
        if st.paused:
            app.call_from_thread(_heard_while_paused, app, events)

    # From the first report shown on: what it shows is known, reloads after its scan began
    # are not.
    while app.report is None and not st.stop.wait(0.05):
        pass
    after = getattr(source, "last_sequence", None)
    wait = None if st.polling else (lambda after, timeout: app.source.wait(after, timeout))  # type: ignore[attr-defined]
    try:
        follow(
            scan,
            lambda report: app.call_from_thread(app.show, report),
            wait=wait,
            stop=st.stop,
            paused=lambda: st.paused,
            on_heard=heard,
            after=after,
        )
    except Exception as e:
        if st.stop.is_set():
            return
        st.stopped = str(e)
        try:
            if getattr(source, "ended", False):  # the process exited: the header says so
                app.call_from_thread(app.mark_ended)
            else:
                app.call_from_thread(_line, app)
        except Exception:
            pass


def ended(app: ReloadScopeApp) -> None:
    """The process has exited: nothing more to follow."""
    st = state(app)
    if st.followable:
        st.stopped = "the process has ended"
        _line(app)


def _heard_while_paused(app: ReloadScopeApp, events: list[dict[str, Any]]) -> None:
    st = state(app)
    for e in events:
        if e.get("status") != "running":
            st.unseen.append(f"gen {e.get('generation')} of {inert(str(e.get('module')))}")
    _line(app)


def noted(app: ReloadScopeApp, old: Report | None, new: Report) -> None:
    """A new report is about to be shown: what changed since the one shown before (nothing
    to highlight on the first)."""
    st = state(app)
    if old is None or not st.followable:
        return
    st.changes = changes(old, new)
    st.unseen.clear()  # what was heard while paused is in this report
    st.new = {stale_key(c.module, s) for c in st.changes for s in c.new}
    before = {m.name: m for m in old.modules}
    now = {stale_key(m.name, s) for m in new.modules for s in m.stale}
    st.gone = {}
    for c in st.changes:
        if c.gone and c.module in before:
            names = [
                s.qualname for s in before[c.module].stale if not among(stale_key(c.module, s), now)
            ]
            st.gone[c.module] = names
    _line(app)


def _line(app: ReloadScopeApp, doing: str | None = None) -> None:
    st = state(app)
    if not st.followable:
        return
    parts: list[str] = []
    for c in st.changes:
        text = c.line(names=False)  # the table marks what is new; the gone are named below
        names = st.gone.get(c.module)
        if names:
            more = f" and {len(names) - MAX_GONE_NAMED} more" if len(names) > MAX_GONE_NAMED else ""
            text += " gone: " + ", ".join(inert(n) for n in names[:MAX_GONE_NAMED]) + more
        parts.append(text)
    if st.stopped is not None:
        mode = f"not following: {inert(st.stopped)}"
    elif st.paused:
        mode = "follow paused (f resumes)"
        if st.unseen:
            mode += "; not shown yet: " + ", ".join(st.unseen[-3:])
    elif doing is not None:
        mode = doing
    elif st.polling:
        why = (
            "recording is off in this process (reloadscope.install() turns it on)"
            if app.source.kind == "process"
            else "the agent there cannot tell when it reloads (an older reloadscope's)"
        )
        mode = f"{why}: rescanning every {POLL_S:.0f} s (f pauses)"
    else:
        mode = "following: rescans after each reload (f pauses)"
    text = "; ".join(parts)
    app.query_one("#follow").update(Text(f"{text} | {mode}" if text else mode))  # type: ignore[attr-defined]


def module_cells(app: ReloadScopeApp, m: Module) -> list[Text]:
    """A modules-table row: a module the last rescan changed stands out, with its change."""
    name, gens, stale = view.module_row(m)
    change = next((c for c in state(app).changes if c.module == m.name), None)
    if change is None:
        return [Text(name), Text(gens), Text(stale)]
    stale += f" (+{len(change.new)} -{change.gone})"
    return [Text(cell, style=CHANGED_STYLE) for cell in (name, gens, stale)]


def stale_cells(
    app: ReloadScopeApp, module: Module | None, s: StaleObject, width: int | None = None
) -> list[Text]:
    """A stale-table row (its path shortened to ``width``): one new since the last scan is
    marked ``+`` and stands out."""
    cells = list(view.stale_row(s, width))
    if s.in_traceback:  # a post-mortem file's: the crash ran or held it
        cells[1] = "! " + cells[1]
    if module is None or stale_key(module.name, s) not in state(app).new:
        return [Text(cell) for cell in cells]
    cells[1] = "+ " + cells[1]
    return [Text(cell, style=NEW_STYLE) for cell in cells]


def keep_module(modules: list[Module], name: str | None) -> int:
    """The row of the module named ``name`` (the one the cursor was on), else the first."""
    for i, m in enumerate(modules):
        if m.name == name:
            return i
    return 0
