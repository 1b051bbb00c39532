"""``reloadscope open FILE``: the terminal UI on a snapshot file."""

from __future__ import annotations

import argparse

from ..snapshot import SnapshotError, load
from .errors import UserError, need_terminal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def add_parser(sub: Any, summary: str) -> None:
    p = sub.add_parser(
        "open",
        help=summary,
        description="Browse a .rsnap file: modules, stale objects, the paths that hold them, "
        "and the source diff between generations.",
        epilog="Example: reloadscope open crash.rsnap",
    )
    p.add_argument("file", metavar="FILE", help="a .rsnap snapshot file")


def run(args: argparse.Namespace) -> int:
    try:
        load(args.file)  # fail here, with one line, rather than inside the UI
    except SnapshotError as e:
        raise UserError(str(e)) from None
    need_terminal("open", f"reloadscope report {args.file}")
    from ..ui.app import ReloadScopeApp
    from ..ui.source import FileSource

    ReloadScopeApp(FileSource(args.file)).run()
    return 0
