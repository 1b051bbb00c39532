"""The Textual app: modules, their stale objects, and the paths that hold the selected one."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from ..holders import Holder
from ..inert import inert
from ..model import Module, Report, StaleObject
from . import live, picker, view
from .fix import FixScreen, Scope
from .holders import HoldersScreen
from .source import Source
from .timeline import TimelineScreen

INTRO = (
    "Left: every module recording saw reloaded, and every module that owns a stale object, "
    "most stale first, with its stale count and generations. Right: its stale objects (filter "
    "with /, sort by clicking a column header) and the paths that hold the selected one, each "
    "with the fix. The footer shows the keys needed first; every key is below, and ctrl+p (the "
    "command palette) finds each of reloadscope's commands by name."
)

# (key, action or None, palette title, what it does): the help's lines, one a key, reflowed
# to the width by the help screen; the palette lists the ones with an action.
KEYS: list[tuple[str, str | None, str, str]] = [
    ("arrows / tab", None, "", "move; enter selects"),
    ("enter", None, "", "on a module: its generations (time, trigger, status, source hash)"),
    ("/", "filter", "Filter", "filter the stale objects as you type (escape clears)"),
    (
        "h",
        "holders",
        "Holders",
        "holders: what keeps the stale objects alive (a list that grows on every reload, a "
        "dict...), most stale first; enter on one shows only the stale objects it holds "
        "(escape shows all again)",
    ),
    (
        "b",
        "fix_this",
        "Fix the selected stale object",
        "fix the selected stale object: a dialog lists every change the fix would make (the "
        "code of each rebind) and every holder it cannot change, and why, before anything is "
        "written; y (or enter on Apply) carries out exactly those changes, then shows what is "
        "gone and what remains, and rescans; escape cancels (nothing is written). A snapshot "
        "file's plan is shown, never applied",
    ),
    ("B", "fix_all", "Fix all stale objects", "the same for every stale object"),
    (
        "t",
        "timeline",
        "Timeline",
        "timeline: each module's generations over time, with the stale objects, bytes and "
        "retained bytes each still has alive, and a bar",
    ),
    ("d", "diff", "Source diff", "source diff between generations ([ ] and { } pick which two)"),
    (
        "x",
        "export",
        "Export the reference graph",
        "export the selected object's reference graph (.dot; .png with graphviz)",
    ),
    ("r", "rescan", "Rescan", "rescan (a live process or this one)"),
    ("g", "collect", "Collect garbage and rescan", "collect garbage, then rescan (live)"),
    (
        "f",
        "toggle_follow",
        "Pause or resume following",
        "pause / resume following (live): after the process reloads, the UI rescans by itself "
        "and marks what changed (new stale objects +, changed modules)",
    ),
    ("s", "save", "Save a snapshot", "save a snapshot file"),
    (
        "p",
        "pick",
        "Processes",
        "processes: the attached one and the Python processes below it (a pre-fork server's "
        "workers); enter switches (each is attached once, all detach on quit)",
    ),
    (
        "e",
        "ending",
        "How the process ended",
        "how the process ended (a post-mortem file): the exception and its traceback, and "
        "which stale objects the crash ran or held",
    ),
    ("ctrl+p", None, "", "the command palette: every command here, by name"),
    ("?", None, "", "this help"),
    (
        "q",
        None,
        "",
        "quit (a live process is detached and runs on; when the agent was injected by this "
        "attach, the reload history it recorded goes with it, and q asks first)",
    ),
]

# The same, one line a key and unwrapped: what the tests and `reloadscope` docs read.
HELP = "reloadscope\n\n" + INTRO + "\n\n" + "".join(f"  {k:<13}  {t}\n" for k, _, _, t in KEYS)


def help_renderable() -> Group:
    """The help as the screen shows it: the paragraph and a two-column grid whose second
    column wraps to the width (nothing is hard-wrapped)."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True, style="bold")
    grid.add_column(ratio=1)
    for key, _, _, text in KEYS:
        grid.add_row(key, text)
    return Group(Text("reloadscope", style="bold"), Text(""), Text(INTRO), Text(""), grid)


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


class HelpScreen(TextScreen):
    """The help, reflowed to the terminal's width."""

    def __init__(self) -> None:
        super().__init__(HELP, "help")

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="source"):
            yield Static(help_renderable())


class QuitScreen(ModalScreen[str]):
    """Before quitting a process whose agent this attach injected, after it recorded reloads:
    what goes with it.  q (or y, enter) quits, s saves a snapshot and quits, escape stays."""

    BINDINGS: ClassVar = [
        Binding("q,y,enter", "dismiss('quit')", "quit"),
        Binding("s", "dismiss('save')", "save, then quit"),
        Binding("escape,n", "dismiss('stay')", "stay"),
    ]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="quit"):
            yield Static(self.text, markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#quit").border_title = "quit?"


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
    # The footer shows these, in this order, and 80 columns hold all that apply at once (f
    # for a live process, p for one with Python children, e for a post-mortem file); every
    # other key is in the help (?) and the command palette (ctrl+p), which also lists
    # reloadscope's own commands by name.
    BINDINGS: ClassVar = [
        Binding("question_mark", "help", "help"),
        Binding("slash", "filter", "filter"),
        Binding("h", "holders", "holders"),
        Binding("b", "fix_this", "fix"),
        Binding("t", "timeline", "timeline"),
        # Following: its state (pause/resume) is worth seeing in a narrow footer.
        Binding("f", "pause_follow", "pause"),
        Binding("f", "resume_follow", "resume"),
        Binding("p", "pick", "tree"),  # a live process with Python children
        Binding("e", "ending", "how it ended"),  # a post-mortem file
        Binding("q", "quit", "quit"),
        Binding("B", "fix_all", "fix all", show=False),
        Binding("d", "diff", "diff", show=False),
        Binding("x", "export", "export", show=False),
        Binding("s", "save", "save", show=False),
        Binding("r", "rescan", "rescan", show=False),
        Binding("g", "collect", "gc", show=False),
        # A file (or a process that ended) cannot rescan: r and g only say so.
        Binding("r,g", "cannot_rescan", "rescan", show=False),
        Binding("escape", "clear_filter", "clear filter", show=False),
    ]

    def __init__(self, source: Source) -> None:
        super().__init__()
        self.source = source
        self.report: Report | None = None
        self.modules: list[Module] = []
        self.rows: list[StaleObject] = []
        self.sort = "kind"
        self.holder: Holder | None = None  # the stale table shows only what it holds
        self.ended = False  # a live process that exited while attached
        self._quit_asked = False
        self._columns: tuple[str, ...] = ()

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
        yield Footer(compact=True)

    def on_mount(self) -> None:
        modules = self.query_one("#modules", DataTable)
        modules.add_columns("module", "gens", "stale")
        modules.border_title = "modules"
        stale = self.query_one("#stale", DataTable)
        stale.border_title = "stale objects"
        self.query_one("#held").border_title = "held by"
        self.sub_title = inert(self.source.description)
        self.load()
        picker.announce(self)
        live.start(self)
        if hasattr(self.source, "ended"):  # a live process: is it still there?
            self.set_interval(1.0, self._check_ended)

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
            if getattr(self.source, "ended", False):  # not a broken pipe: the process exited
                self.call_from_thread(self.mark_ended)
            else:
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
        self.sub_title = view.title(
            report, self.source.kind, self.source.description, ended=self.ended
        )
        text = view.summary(report)
        vitals = getattr(self.source, "vitals", None)
        if vitals is not None and not self.ended:
            text += f" | {vitals()}"
        self._status(text)
        self.modules = view.modules_in_order(report)
        self._fill_modules()
        table = self.query_one("#modules", DataTable)
        if self.modules:
            table.move_cursor(row=live.keep_module(self.modules, chosen.name if chosen else None))
        self._fill_stale()
        if first:  # on the findings: arrows move through the stale objects at once
            self.call_after_refresh(self._refit)  # the widths, now that they are known
            stale = self.query_one("#stale", DataTable)
            (stale if stale.row_count else table).focus()
        self.refresh_bindings()  # what the footer offers may depend on the report (e)

    def _fill_modules(self) -> None:
        """The modules table, each name shortened in the middle so that its stale count and
        generations always show."""
        table = self.query_one("#modules", DataTable)
        rows = [live.module_cells(self, m) for m in self.modules]
        others = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in ((1, "gens"), (2, "stale"))]
        total = table.size.width or max(self.size.width * 32 // 100 - 2, 22)
        scrollbar = 2 if len(rows) >= table.size.height else 0  # the header takes a line
        room = max(total - sum(others) - 2 * 3 - scrollbar, 8)  # 2 * 3: the cells' padding
        cursor = table.cursor_row
        table.clear()
        for m, cells in zip(self.modules, rows, strict=True):
            name = cells[0]
            if len(name) > room:
                name = Text(view.shorten(name.plain, room), style=name.style)
            table.add_row(name, *cells[1:], key=m.name)  # text, never markup
        if self.modules:
            table.move_cursor(row=min(cursor, len(self.modules) - 1))

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
        columns, width = self._stale_layout()
        if columns != self._columns:
            table.clear(columns=True)
            table.add_columns(*columns)
            self._columns = columns
        table.clear()
        keep = [i for i, k in enumerate(view.SORT_KEYS) if k in columns]
        for i, s in enumerate(self.rows):
            cells = live.stale_cells(self, module, s, width)
            table.add_row(*(cells[c] for c in keep), key=str(i))
        if self.rows:
            table.move_cursor(row=0)
        self._fill_paths()

    # Given up, in this order, when the held-by column would be cut shorter than its paths
    # (and than HELD_BY_ROOM): the panel below says both for the selected object.
    NARROW_DROPS = ("size", "count")
    HELD_BY_ROOM = 40

    def _stale_layout(self) -> tuple[tuple[str, ...], int]:
        """The stale table's columns and the room for held by: the table's width less the
        other columns' (their longest cell, and two columns of padding each).  Held by gets
        the width before size and count do."""
        table = self.query_one("#stale", DataTable)
        total = table.size.width or (self.size.width * 2 // 3)
        names = list(view.SORT_KEYS)
        widths = {
            k: max([len(k), *(len(view.stale_row(s)[i]) for s in self.rows)])
            for i, k in enumerate(names)
        }
        longest = widths.pop("held by")
        columns = list(names)
        scrollbar = 2  # kept free: the held-by panel below may take the table's height

        def room() -> int:
            others = sum(widths[k] for k in columns if k != "held by")
            return total - others - 2 * len(columns) - scrollbar

        for k in self.NARROW_DROPS:
            if room() >= min(longest, self.HELD_BY_ROOM):
                break
            columns.remove(k)
        return tuple(columns), max(room(), 16)

    def on_resize(self, event: events.Resize) -> None:
        if self.report is not None:
            self.call_after_refresh(self._refit)

    def _refit(self) -> None:
        row = self.query_one("#stale", DataTable).cursor_row
        self._fill_modules()
        self._fill_stale()
        if self.rows:
            self.query_one("#stale", DataTable).move_cursor(row=min(row, len(self.rows) - 1))

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

    def _cannot_rescan_why(self) -> str:
        if self.ended:
            return f"process {getattr(self.source, 'pid', '?')} has ended: nothing to rescan"
        return "a snapshot file cannot be rescanned"

    def action_rescan(self) -> None:
        self.load(collect=False)

    def action_cannot_rescan(self) -> None:
        self.notify(self._cannot_rescan_why(), severity="warning")

    def action_collect(self) -> None:
        self.load(collect=True)

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

    def action_toggle_follow(self) -> None:  # the command palette's
        live.toggle(self)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """What the footer offers and the keys answer: live-only keys (r, g, f) are off for
        a snapshot file and for a process that has ended."""
        live_now = self.source.can_rescan and not self.ended
        if action in ("pause_follow", "resume_follow"):
            return live_now and live.check(self, action)
        if action == "toggle_follow":
            return live_now and live.state(self).followable
        if action in ("rescan", "collect"):
            return live_now
        if action == "cannot_rescan":
            return not live_now
        if action == "pick":  # only a live process has a tree to pick from
            return picker.can_pick(self.source) and not self.ended
        if action == "ending":  # only a post-mortem file knows how its process ended
            return self.report is not None and self.report.exit is not None
        return True

    # -- a live process that ends --------------------------------------------------------------
    def _check_ended(self) -> None:
        if not self.ended and getattr(self.source, "ended", False):
            self.mark_ended()

    def mark_ended(self) -> None:
        """The live process exited while attached: the header says so, the last scan stays
        on screen, and the live-only keys are off (r says why instead of a broken pipe)."""
        if self.ended:
            return
        self.ended = True
        live.stop(self)
        live.ended(self)
        pid = getattr(self.source, "pid", "?")
        if self.report is not None:
            self.sub_title = view.title(
                self.report, self.source.kind, self.source.description, ended=True
            )
            self._status(f"process {pid} has ended: its last scan is shown (s saves it)")
        else:
            self.sub_title = f"process ended | pid {pid}"
            self._status(f"process {pid} has ended before its first scan")
        self.refresh_bindings()

    # -- quitting ------------------------------------------------------------------------------
    def lost_on_quit(self) -> str | None:
        """What quitting loses, said before it does: the history an agent this attach
        injected recorded (its reloads), which leaves with it.  None when nothing is lost (its
        own agent stays; nothing was reloaded since; the process has ended)."""
        if self.ended or self.report is None or not getattr(self.source, "injected", False):
            return None
        reloads = [
            (m.name, g.number)
            for m in self.report.modules
            for g in m.generations
            if g.kind == "reload"
        ]
        if not reloads:
            return None
        modules = sorted({name for name, _ in reloads})
        pid = getattr(self.source, "pid", "?")
        named = ", ".join(modules[:3]) + (
            f" and {len(modules) - 3} more" if len(modules) > 3 else ""
        )
        return inert(
            f"The agent in process {pid} was injected by this attach: quitting detaches it, and "
            f"the history it recorded goes with it ({len(reloads)} "
            f"{'reload' if len(reloads) == 1 else 'reloads'} of {named}: which generation made "
            "each object, and the sources the diff shows). The next attach starts over: what "
            "exists then shows gen ?.\n\n"
            "q quits, s saves a snapshot first and quits, escape stays.\n"
            "(Started under 'reloadscope run' or with reloadscope.install(), a process keeps "
            "its own agent and its history.)"
        )

    async def action_quit(self) -> None:
        text = None if self._quit_asked else self.lost_on_quit()
        if text is None:
            self.exit()
            return
        self._quit_asked = True

        def chosen(answer: str | None) -> None:
            if answer == "save":
                self.action_save()
            if answer in ("quit", "save"):
                self.exit()
            else:
                self._quit_asked = False

        self.push_screen(QuitScreen(text), chosen)

    # -- the command palette -------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's commands, and on the main screen reloadscope's own: each key's action,
        by name, when it can run now."""
        yield from super().get_system_commands(screen)
        if screen is not self.screen_stack[0]:
            return
        for key, action, title, text in KEYS:
            if action is None or not self.check_action(action, ()):
                continue
            what = text.split(";")[0]
            head, _, tail = what.partition(": ")
            if tail and " " not in head:  # "holders: what keeps..." -> "what keeps..."
                what = tail
            yield SystemCommand(f"{title} ({key})", what, getattr(self, f"action_{action}"))

    def action_ending(self) -> None:
        if self.report is not None and self.report.exit is not None:
            self.push_screen(TextScreen(view.ending_text(self.report), "how it ended"))

    def action_pick(self) -> None:
        picker.pick(self)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())


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
