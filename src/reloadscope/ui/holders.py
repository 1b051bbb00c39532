"""The holders screen (key ``h``): the root causes, one row per holder (what holds stale
objects: a container or attribute their shortest paths end in); enter on one goes back to the
main screen with the stale table showing only the entries it holds."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from ..holders import Holder
from ..inert import inert
from ..textreport import generations_text

COLUMNS = ("holder", "stale", "gens", "growing")


def holder_row(h: Holder) -> tuple[str, str, str, str]:
    """The row of one holder: its path (inert), count, generations, growing."""
    growing = "yes" if h.growing else ""
    return (inert(h.path), str(h.count), generations_text(h.generations), growing)


class HoldersScreen(ModalScreen["Holder | None"]):
    """The holders table; enter picks one (dismisses with it), escape, q or h closes."""

    BINDINGS: ClassVar = [Binding("escape,q,h", "dismiss(None)", "close")]

    def __init__(self, holders: tuple[Holder, ...]) -> None:
        super().__init__()
        self.holders = holders

    def compose(self) -> ComposeResult:
        with Vertical(id="holders"):
            yield DataTable(id="holders-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="holder-hint", markup=False)

    def on_mount(self) -> None:
        self.query_one("#holders").border_title = "holders: what keeps the stale objects alive"
        table = self.query_one("#holders-table", DataTable)
        table.add_columns(*COLUMNS)
        for i, h in enumerate(self.holders):
            table.add_row(*(Text(c) for c in holder_row(h)), key=str(i))
        if not self.holders:
            self.query_one("#holder-hint", Static).update("Nothing is stale.")
        table.focus()
        self._hint()

    def _hint(self) -> None:
        table = self.query_one("#holders-table", DataTable)
        if self.holders:
            h = self.holders[min(table.cursor_row, len(self.holders) - 1)]
            self.query_one("#holder-hint", Static).update(
                Text(f"{inert(h.hint)}\nenter: show the stale objects it holds")
            )

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._hint()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if self.holders:
            self.dismiss(self.holders[min(event.cursor_row, len(self.holders) - 1)])
