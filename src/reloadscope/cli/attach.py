"""``reloadscope attach PID``: the terminal UI on a live process."""

from __future__ import annotations

import argparse

from .errors import UserError, need_terminal
from .progress import Progress
from .target import parse_pid

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def add_parser(sub: Any, summary: str) -> None:
    p = sub.add_parser(
        "attach",
        help=summary,
        description="Attach to a running Python process and browse what its reloads left behind. "
        "Quitting detaches; the process runs on as before.",
        epilog="Example: reloadscope attach 4242 (find PIDs with 'reloadscope ps')",
    )
    p.add_argument("pid", metavar="PID", help="the process to attach to")


def run(args: argparse.Namespace) -> int:
    pid = parse_pid(args.pid)
    need_terminal("attach", f"reloadscope report {pid}")
    from ..attach.client import AttachError
    from ..ui.app import ReloadScopeApp
    from ..ui.picker import LiveTree
    from ..ui.source import LiveSource

    try:
        with Progress() as progress:  # erased before the UI takes the terminal
            source = LiveSource(pid, progress=progress)
    except AttachError as e:
        raise UserError(str(e)) from None
    ReloadScopeApp(LiveTree(source)).run()  # p moves to the processes below it
    return 0
