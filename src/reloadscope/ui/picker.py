"""Process trees in the UI: a live source that spans a parent and the Python processes below
it, and the picker (``p``) that moves between them.

Each process is attached once, the first time it is shown, and its agent is kept (one
``LiveSource``, one session) until the UI ends: coming back to a process reuses it.  Quitting
closes every one (each injected agent detaches); a killed UI leaves none either, since an
injected agent leaves with its client's connection.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import DataTable

from ..attach.client import AttachError
from ..inert import inert
from .source import LiveSource

if TYPE_CHECKING:
    from pathlib import Path

    from textual.app import App, ComposeResult

    from ..attach.discovery import PythonProcess
    from ..fixplan import FixPlan, FixResult
    from ..model import Report


class Member:
    """One process of the tree as the picker lists it."""

    def __init__(self, process: PythonProcess, depth: int, parent: int | None) -> None:
        self.process = process
        self.depth = depth
        self.parent = parent  # its tree parent (nearest Python ancestor); None for the root

    @property
    def pid(self) -> int:
        return self.process.pid


class LiveTree:
    """A ``Source`` on one process of a tree at a time (``current``), starting at its root.

    Anything a ``LiveSource`` has that this class does not is the current one's."""

    kind = "live"
    can_rescan = True

    def __init__(self, root: LiveSource) -> None:
        self.root = root.pid
        self.sources: dict[int, LiveSource] = {root.pid: root}
        self.current = root
        self.parents: dict[int, int | None] = {root.pid: None}
        self._locks: dict[int, threading.Lock] = {}  # one request at a time per connection
        self._guard = threading.Lock()
        self._closed = False
        self.description = root.description

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in ("current", "sources", "description"):
            raise AttributeError(name)
        return getattr(self.current, name)

    @property
    def pid(self) -> int:
        return self.current.pid

    def _describe(self) -> None:
        parent = self.parents.get(self.current.pid)
        own = self.current.description
        self.description = own if parent is None else f"{own}, child of {parent}"

    def members(self) -> list[Member]:
        """The root and the Python processes below it now, depth-first, children by PID."""
        from ..attach.discovery import process_parents, python_processes, python_tree, walk

        parents = process_parents()
        roots = python_tree(python_processes(under=self.root, parents=parents), parents)
        out = [Member(node.process, depth, None) for depth, node in walk(roots)]
        by_pid = {m.pid: m for m in out}
        for root in roots:
            self._note_parents(root, None, by_pid)
        self._describe()
        return out

    def _note_parents(self, node: Any, parent: int | None, by_pid: dict[int, Member]) -> None:
        pid = node.process.pid
        by_pid[pid].parent = parent
        self.parents[pid] = parent
        for child in node.children:
            self._note_parents(child, pid, by_pid)

    def attached(self, pid: int) -> bool:
        return pid in self.sources

    def switch(self, pid: int, progress: Any = None) -> bool:
        """Make ``pid`` the current process, attaching to it the first time; True when it was
        attached now.  AttachError when it cannot be reached (the current one stays)."""
        with self._guard:
            source = self.sources.get(pid)
        fresh = source is None
        if source is None:
            source = LiveSource(pid, progress=progress)
            with self._guard:
                closed = self._closed
                if not closed:
                    self.sources[pid] = source
            if closed:  # the UI ended while this one was being attached
                source.close()
                raise AttachError(f"the UI has ended; detached from process {pid}")
        self.current = source
        self._describe()
        return fresh

    def _lock(self, pid: int) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(pid, threading.Lock())

    def load(self, *, collect: bool = True) -> Report:
        while True:
            source = self.current
            with self._lock(source.pid):
                report = source.load(collect=collect)
            if source is self.current:  # not switched away meanwhile
                return report

    def save(self, report: Report, path: str | None = None) -> Path:
        return self.current.save(report, path)

    def fix(self, *, apply: bool = False, only: list[str] | None = None) -> FixPlan | FixResult:
        """The current process's plan or repair (the fix dialog is modal: no switch between
        its plan and its apply)."""
        source = self.current
        with self._lock(source.pid):
            return source.fix(apply=apply, only=only)

    def vitals(self) -> str:
        return self.current.vitals()

    def close(self) -> None:
        """Detach from every process attached to, the current one last."""
        with self._guard:
            self._closed = True
            sources = [s for s in self.sources.values() if s is not self.current]
            sources.append(self.current)
        for s in sources:
            try:
                s.close()
            except Exception:  # one that went away must not keep the others attached
                pass


class ProcessPicker(ModalScreen[int | None]):
    """The tree's processes: enter switches to the one under the cursor, escape closes."""

    DEFAULT_CSS = """
    ProcessPicker { align: center middle; }
    ProcessPicker > DataTable {
        width: 90%; height: auto; max-height: 80%; border: round $accent;
    }
    """
    BINDINGS: ClassVar = [Binding("escape,q,p", "dismiss_none", "close")]

    def __init__(self, members: list[Member], family: LiveTree) -> None:
        super().__init__()
        self.members = members
        self.family = family

    def compose(self) -> ComposeResult:
        yield DataTable(id="picker", cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one("#picker", DataTable)
        table.border_title = (
            f"processes under PID {self.family.root}: enter switches, escape closes"
        )
        table.add_columns("", "PID", "Python", "agent", "command")
        here = 0
        for i, m in enumerate(self.members):
            if m.pid == self.family.pid:
                here = i
            if self.family.attached(m.pid):
                agent = "attached"  # ours, kept until the UI ends
            else:
                agent = "yes" if m.process.agent else "no"
            row = (
                ">" if i == here and m.pid == self.family.pid else "",
                str(m.pid),
                m.process.python or "?",
                agent,
                "  " * m.depth + inert(" ".join(m.process.cmdline)),
            )
            table.add_row(*map(Text, row), key=str(m.pid))
        table.move_cursor(row=here)
        table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.dismiss(int(str(event.row_key.value)))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


def _members_or_say(app: App[Any], tree: LiveTree) -> list[Member] | None:
    try:
        return tree.members()
    except Exception as e:  # psutil could not list processes
        app.call_from_thread(app.notify, inert(f"cannot list processes: {e}"), severity="error")
        return None


def can_pick(source: object) -> bool:
    """Whether ``source`` spans a process tree (``p`` is shown and works)."""
    return isinstance(source, LiveTree)


def pick(app: Any) -> None:
    """``p``: list the tree's processes (in a thread: it reads /proc) and open the picker."""
    tree = app.source
    if not isinstance(tree, LiveTree):
        app.notify("only a live process (reloadscope attach PID) has processes to pick")
        return

    def listing() -> None:
        members = _members_or_say(app, tree)
        if members is not None:
            app.call_from_thread(_open, app, tree, members)

    app.run_worker(listing, thread=True, group="picker", exclusive=True)


def _open(app: Any, tree: LiveTree, members: list[Member]) -> None:
    if len(members) < 2:
        app.notify(f"no Python process below PID {tree.root}", markup=False)
        return

    def chosen(pid: int | None) -> None:
        if pid is not None and pid != tree.pid:
            switch(app, tree, pid)

    app.push_screen(ProcessPicker(members, tree), chosen)


def switch(app: Any, tree: LiveTree, pid: int) -> None:
    """Attach to ``pid`` (once; in a thread: an injection takes a while), then show it."""

    def attach() -> None:
        first = not tree.attached(pid)
        if first:
            app.call_from_thread(app._status, f"attaching to PID {pid}...")
        try:
            fresh = tree.switch(pid, progress=None)
        except AttachError as e:
            app.call_from_thread(_failed, app, str(e))
            return
        app.call_from_thread(_switched, app, tree, fresh)

    app.run_worker(attach, thread=True, group="picker", exclusive=True)


def _failed(app: Any, error: str) -> None:
    app.notify(inert(f"cannot attach: {error}"), severity="error", markup=False)
    if app.report is not None:
        app.show(app.report)  # back to the current process's summary


def _switched(app: Any, tree: LiveTree, fresh: bool) -> None:
    app.sub_title = inert(tree.description)
    app.report = None
    app.load(collect=fresh)  # a garbage collection on the first visit, as on attach


def announce(app: Any) -> None:
    """On start: say when the process has Python children, and which key shows them."""
    tree = app.source
    if not isinstance(tree, LiveTree):
        return

    def look() -> None:
        try:
            n = len(tree.members()) - 1
        except Exception:
            return
        if n > 0:
            what = f"{n} Python process{'es' if n > 1 else ''}"
            app.call_from_thread(app.notify, f"{what} below: press p", markup=False)

    app.run_worker(look, thread=True, group="announce")
