"""The Textual app: modules, their stale objects, and the paths that hold the selected one."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Header, Input, Static

from ..holders import Holder
from ..inert import inert
from ..model import Module, Report, StaleObject
from . import live, picker, view
from .fix import FixScreen, Scope
from .holders import HoldersScreen
from .source import Source
from .timeline import TimelineScreen

HELP = """reloadscope

Left: every module recording saw reloaded, and every module that owns a stale object, most
stale first. Right: its stale objects (filter with /, sort by clicking a column header) and the
paths that hold the selected one, each with the fix.

  arrows / tab   move; enter selects
  /              filter the stale objects (escape clears)
  enter          on a module: its generations (time, trigger, status, source hash)
  h              holders: what keeps the stale objects alive (a list that grows on every
                 reload, a dict...), most stale first; enter on one shows only the stale
                 objects it holds (escape shows all again)
  b              fix the selected stale object: a dialog lists every change the fix would
                 make (the code of each rebind) and every holder it cannot change, and why,
                 before anything is written; y (or enter on Apply) carries out exactly those
                 changes, then shows what is gone and what remains, and rescans; escape
                 cancels (nothing is written). A snapshot file's plan is shown, never applied
  B              the same for every stale object
  t              timeline: each module's generations over time, with the stale objects,
                 bytes and retained bytes each still has alive, and a bar
  d              source diff between generations ([ ] and { } pick which two)
  x              export the selected object's reference graph (.dot; .png with graphviz)
  r              rescan (live sources)
  g              collect garbage, then rescan (live sources)
  f              pause / resume following: after the process reloads, the UI rescans by
                 itself and marks what changed (new stale objects +, changed modules)
  s              save a snapshot file
  p              processes: the attached one and the Python processes below it (a pre-fork
                 server's workers); enter switches (each is attached once, all detach on quit)
  e              how the process ended (a post-mortem file): the exception and its
                 traceback, and which stale objects the crash ran or held
  ?              this help
  q              quit (a live process is detached and runs on)
"""


class TextScreen(ModalScreen[None]):
    """A scrollable page of text (help, diff); any of escape, q or ? closes it."""

    BINDINGS: ClassVar = [Binding("escape,q,question_mark", "dismiss", "close")]

    def __init__(self, text: str, title: str) -> None:
        super().__init__()
        self.text = text
        self.title_text = title

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="source"):
            yield Static(self.text, markup=False)

    def on_mount(self) -> None:
        self.query_one("#source").border_title = self.title_text


class DiffScreen(TextScreen):
    """Generations of one module and the source diff between any two of them."""

    BINDINGS: ClassVar = [
        Binding("left_square_bracket", "move('old', -1)", "older from"),
        Binding("right_square_bracket", "move('old', 1)", "newer from"),
        Binding("left_curly_bracket", "move('new', -1)", "older to"),
        Binding("right_curly_bracket", "move('new', 1)", "newer to"),
    ]

    def __init__(self, report: Report, module: Module) -> None:
        self.report = report
        self.module = module
        self.numbers = sorted(report.sources.get(module.name, {}))
        self.new = len(self.numbers) - 1
        self.old = max(self.new - 1, 0)
        super().__init__(self._compose_text(), f"{module.name}: generations and source diff")

    def _compose_text(self) -> str:
        text = view.generations_text(self.module)
        if len(self.numbers) >= 2:
            old, new = self.numbers[self.old], self.numbers[self.new]
            text += "\n\n[ ] move the older side, { } the newer side\n\n"
            text += view.diff_text(self.report, self.module.name, old, new)
        else:
            text += "\n\n" + view.diff_text(self.report, self.module.name)
        return text

    def action_move(self, side: str, step: int) -> None:
        last = len(self.numbers) - 1
        if side == "old":
            self.old = min(max(self.old + step, 0), last)
        else:
            self.new = min(max(self.new + step, 0), last)
        self.text = self._compose_text()
        self.query_one(Static).update(self.text)


class ReloadScopeApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "reloadscope"
    BINDINGS: ClassVar = [
        Binding("q", "quit", "quit"),
        Binding("h", "holders", "holders"),
        Binding("b", "fix_this", "fix"),
        Binding("B", "fix_all", "fix all", show=False),
        Binding("r", "rescan", "rescan"),
        # Following first: its state (pause/resume) is worth seeing in a narrow footer.
        Binding("f", "pause_follow", "pause follow"),
        Binding("f", "resume_follow", "resume follow"),
        Binding("g", "collect", "gc"),
        # A file cannot rescan: r and g only say so, and leave the narrow footer's room to others.
        Binding("r,g", "cannot_rescan", "rescan", show=False),
        Binding("s", "save", "save"),
        Binding("d", "diff", "diff"),
        Binding("t", "timeline", "timeline"),
        Binding("x", "export", "export"),
        Binding("p", "pick", "processes"),
        Binding("e", "ending", "how it ended"),
        Binding("slash", "filter", "filter"),
        Binding("escape", "clear_filter", "clear filter", show=False),
        Binding("question_mark", "help", "help"),
    ]

    def __init__(self, source: Source) -> None:
        super().__init__()
        self.source = source
        self.report: Report | None = None
        self.modules: list[Module] = []
        self.rows: list[StaleObject] = []
        self.sort = "kind"
        self.holder: Holder | None = None  # the stale table shows only what it holds

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("loading...", id="summary", markup=False)
        yield Static("", id="follow", markup=False)
        with Horizontal(id="body"):
            yield DataTable(id="modules", cursor_type="row", zebra_stripes=True)
            with Vertical(id="right"):
                yield Input(placeholder="filter stale objects", id="filter")
                yield DataTable(id="stale", cursor_type="row", zebra_stripes=True)
                with VerticalScroll(id="held"):
                    yield Static("", id="paths", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        modules = self.query_one("#modules", DataTable)
        modules.add_columns("module", "gens", "stale")
        modules.border_title = "modules"
        stale = self.query_one("#stale", DataTable)
        stale.add_columns(*view.SORT_KEYS)
        stale.border_title = "stale objects"
        self.query_one("#held").border_title = "held by"
        self.sub_title = inert(self.source.description)
        self.load()
        picker.announce(self)
        live.start(self)

    def on_unmount(self) -> None:
        live.stop(self)
        self.source.close()

    # -- data ----------------------------------------------------------------------------------
    @work(thread=True, exclusive=True)
    def load(self, collect: bool = True) -> None:
        self.call_from_thread(self._status, "scanning..." if self.report else "loading...")
        try:
            report = self.source.load(collect=collect)
        except Exception as e:  # the source explains itself (detached, damaged file...)
            self.call_from_thread(self._status, f"error: {e}")
            return
        self.call_from_thread(self.show, report)

    def _status(self, text: str) -> None:
        self.query_one("#summary", Static).update(text)
        busy = text.endswith("...")
        for table in self.query(DataTable):
            table.loading = busy  # a spinner over the tables while a scan runs

    def show(self, report: Report) -> None:
        first = self.report is None
        previous, self.report = self.report, report
        if self.holder is not None:  # the same holder in the new scan, if it still holds any
            old = self.holder
            self.holder = next(
                (h for h in report.holders if (h.root, h.path) == (old.root, old.path)), None
            )
        chosen = self.current_module()
        live.noted(self, previous, report)
        self.sub_title = view.title(report, self.source.kind, self.source.description)
        text = view.summary(report)
        vitals = getattr(self.source, "vitals", None)
        if vitals is not None:
            text += f" | {vitals()}"
        self._status(text)
        self.modules = view.modules_in_order(report)
        table = self.query_one("#modules", DataTable)
        table.clear()
        for m in self.modules:
            table.add_row(*live.module_cells(self, m), key=m.name)  # text, never markup
        if self.modules:
            table.move_cursor(row=live.keep_module(self.modules, chosen.name if chosen else None))
        self._fill_stale()
        if first:  # on the findings: arrows move through the stale objects at once
            stale = self.query_one("#stale", DataTable)
            (stale if stale.row_count else table).focus()
        self.refresh_bindings()  # what the footer offers may depend on the report (e)

    def current_module(self) -> Module | None:
        table = self.query_one("#modules", DataTable)
        if not self.modules:
            return None
        return self.modules[min(table.cursor_row, len(self.modules) - 1)]

    def _fill_stale(self) -> None:
        module = self.current_module()
        text = self.query_one("#filter", Input).value
        stale = list(module.stale) if module else []
        table = self.query_one("#stale", DataTable)
        if self.holder is not None and module is not None:
            mine = {i for name, i in self.holder.entries if name == module.name}
            stale = [s for i, s in enumerate(stale) if i in mine]
            table.border_title = f"stale objects held by {inert(self.holder.path)}"
            table.border_subtitle = "escape: all"
        else:
            table.border_title = "stale objects"
            table.border_subtitle = ""
        self.rows = view.visible_stale(stale, text, self.sort)
        table.clear()
        width = self._held_by_width()
        for i, s in enumerate(self.rows):
            table.add_row(*live.stale_cells(self, module, s, width), key=str(i))
        if self.rows:
            table.move_cursor(row=0)
        self._fill_paths()

    def _held_by_width(self) -> int:
        """Room for the held-by column: the table's width less the other columns' (their
        longest cell, and two columns of padding each)."""
        table = self.query_one("#stale", DataTable)
        total = table.size.width or (self.size.width * 2 // 3)
        others = [
            max([len(k), *(len(view.stale_row(s)[i]) for s in self.rows)])
            for i, k in enumerate(list(view.SORT_KEYS)[:-1])
        ]
        return max(total - sum(others) - 2 * len(view.SORT_KEYS) - 4, 16)  # 4: scrollbar

    def _fill_paths(self) -> None:
        table = self.query_one("#stale", DataTable)
        s = self.rows[table.cursor_row] if self.rows else None
        module = self.current_module()
        blind = self.report.blind_spots if self.report is not None else ()
        text = view.paths_text(s, blind)
        if module is not None and s is None:
            seen = "".join(f"\ncould not see: {inert(b)}" for b in blind)
            text = view.generations_text(module) + seen
        # Names from the target are text, never markup (a key like '/a[/]b' would break it).
        self.query_one("#paths", Static).update(Text(text))
        n = len(blind)
        self.query_one("#held").border_subtitle = (
            f"{'a blind spot' if n == 1 else f'{n} blind spots'} below (tab here to scroll)"
            if n
            else ""
        )

    # -- events --------------------------------------------------------------------------------
    @on(DataTable.RowHighlighted, "#modules")
    def _module_moved(self) -> None:
        self._fill_stale()

    @on(DataTable.RowSelected, "#modules")
    def _module_chosen(self) -> None:
        module = self.current_module()
        if module is not None:
            self.push_screen(TextScreen(view.generations_text(module), f"{module.name}"))

    @on(DataTable.RowHighlighted, "#stale")
    def _stale_moved(self) -> None:
        self._fill_paths()

    @on(DataTable.HeaderSelected, "#stale")
    def _sort(self, event: DataTable.HeaderSelected) -> None:
        self.sort = str(event.label)
        self._fill_stale()

    @on(Input.Changed, "#filter")
    def _filter(self) -> None:
        self._fill_stale()

    # -- actions -------------------------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("visible")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("visible")
        if self.holder is not None:
            self.holder = None
            self._fill_stale()
        self.query_one("#stale", DataTable).focus()

    def action_holders(self) -> None:
        if self.report is not None:
            self.push_screen(HoldersScreen(self.report.holders), self.show_holder)

    def show_holder(self, holder: Holder | None) -> None:
        """The main screen with only the stale objects ``holder`` holds, in the module of
        its first entry."""
        if holder is None or not holder.entries:
            return
        self.holder = holder
        name = holder.entries[0][0]
        table = self.query_one("#modules", DataTable)
        row = next((i for i, m in enumerate(self.modules) if m.name == name), None)
        if row is not None:
            table.move_cursor(row=row)
        self._fill_stale()
        self.query_one("#stale", DataTable).focus()

    def action_fix_this(self) -> None:
        """The fix dialog for the selected stale object."""
        module = self.current_module()
        if self.report is None or module is None or not self.rows:
            self.notify("no stale object selected (B plans a fix of all)", severity="warning")
            return
        s = self.rows[min(self.query_one("#stale", DataTable).cursor_row, len(self.rows) - 1)]
        self.push_screen(FixScreen(self.source, Scope(module.name, s), self._fixed))

    def action_fix_all(self) -> None:
        """The fix dialog for every stale object."""
        if self.report is not None:
            self.push_screen(FixScreen(self.source, None, self._fixed))

    def _fixed(self, result: object) -> None:
        """A fix was applied: scan again (the dialog still shows its result)."""
        self.load()

    def action_rescan(self) -> None:
        if self.source.can_rescan:
            self.load(collect=False)
        else:
            self.notify("a snapshot file cannot be rescanned", severity="warning")

    def action_cannot_rescan(self) -> None:
        self.notify("a snapshot file cannot be rescanned", severity="warning")

    def action_collect(self) -> None:
        if self.source.can_rescan:
            self.load(collect=True)
        else:
            self.notify("a snapshot file cannot be rescanned", severity="warning")

    def action_save(self) -> None:
        if self.report is None:
            return
        try:
            path: Path = self.source.save(self.report)
        except OSError as e:
            self.notify(inert(f"could not save: {e}"), severity="error", markup=False)
            return
        self.notify(inert(f"saved {path}"), markup=False)

    def action_diff(self) -> None:
        module = self.current_module()
        if self.report is None or module is None:
            return
        self.push_screen(DiffScreen(self.report, module))

    def action_timeline(self) -> None:
        if self.report is None:
            return
        module = self.current_module()
        self.push_screen(TimelineScreen(self.report, module.name if module else None))

    def action_export(self) -> None:
        table = self.query_one("#stale", DataTable)
        if not self.rows:
            return
        s = self.rows[table.cursor_row]
        name = f"reloadscope-{s.qualname.replace('<', '').replace('>', '')}".replace(".", "-")
        try:
            written, note = export_graph(self.source, s, name)
        except OSError as e:
            self.notify(inert(f"could not export: {e}"), severity="error", markup=False)
            return
        self.notify(inert("wrote " + ", ".join(written)), markup=False)
        if note:
            self.notify(inert(note), severity="warning", markup=False)

    def action_pause_follow(self) -> None:
        live.toggle(self)

    def action_resume_follow(self) -> None:
        live.toggle(self)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("pause_follow", "resume_follow"):
            return live.check(self, action)
        if action in ("rescan", "collect"):
            return self.source.can_rescan
        if action == "cannot_rescan":
            return not self.source.can_rescan
        if action == "pick":  # only a live process has a tree to pick from
            return picker.can_pick(self.source)
        if action == "ending":  # only a post-mortem file knows how its process ended
            return self.report is not None and self.report.exit is not None
        return True

    def action_ending(self) -> None:
        if self.report is not None and self.report.exit is not None:
            self.push_screen(TextScreen(view.ending_text(self.report), "how it ended"))

    def action_pick(self) -> None:
        picker.pick(self)

    def action_help(self) -> None:
        self.push_screen(TextScreen(HELP, "help"))


NO_OBJGRAPH = (
    "objgraph is not installed (pip install 'reloadscope[graph]'): the graph shows the "
    "reported paths instead of the object's back-references"
)


def export_graph(source: Source, s: StaleObject, name: str) -> tuple[list[str], str | None]:
    """Write the object's reference graph: objgraph's back-references when the object lives
    in this process (objgraph is the ``graph`` extra), else the reported paths; a .png too
    when graphviz is installed.  Returns the files written and a note on what was missing."""
    import shutil
    import subprocess

    dot = Path(f"{name}.dot")
    note = None
    drawn = False
    if source.kind == "process" and s.paths:
        try:
            drawn = _objgraph_backrefs(s.paths[0].object_id, dot)
        except ImportError:
            note = NO_OBJGRAPH
    if not drawn:
        dot.write_text(view.paths_dot(s))
    written = [str(dot)]
    if shutil.which("dot"):
        png = dot.with_suffix(".png")
        subprocess.run(["dot", "-Tpng", str(dot), "-o", str(png)], check=False, timeout=60)
        if png.exists():
            written.append(str(png))
    return written, note


def _objgraph_backrefs(object_id: int | None, dot: Path) -> bool:
    import gc

    import objgraph

    if object_id is None:
        return False
    obj = next((o for o in gc.get_objects() if id(o) == object_id), None)
    if obj is None:
        return False
    objgraph.show_backrefs(
        [obj],
        max_depth=4,
        filename=str(dot),
        too_many=8,
        filter=lambda o: not isinstance(o, type(gc.get_objects)),
    )
    return dot.exists()
