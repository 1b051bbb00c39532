"""``reloadscope report PID --children``: PID and every Python process below it, in turn.

The tree is read once, at the start: the parent, then the Python processes below it
depth-first, children by PID.  Each is reached as ``report PID`` reaches one (its own
``Session``: lock, checks, its own agent, detach), one after the other, so at most one agent of
this command exists at a time and a killed command leaves none (an injected agent leaves with
its client).  One that cannot be reached is listed with the reason, not dropped.
"""

from __future__ import annotations

import json
import sys

from .errors import UserError
from .output import print_report
from .progress import Progress
from .target import parse_pid

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from ..attach.discovery import ProcessNode
    from ..model import Report

ERROR_FORMAT = "reloadscope-error"


def family(pid: int) -> list[tuple[int, int | None]]:
    """(PID, its tree parent's PID) of ``pid`` (parent None), then of each Python process below
    it, depth-first, children by PID; a non-Python process between two is skipped over."""
    from ..attach.discovery import process_parents, python_processes, python_tree

    parents = process_parents()
    procs = python_processes(under=pid, parents=parents)
    out: list[tuple[int, int | None]] = [(pid, None)]

    def add(node: ProcessNode, parent: int) -> None:
        if node.process.pid != pid:
            out.append((node.process.pid, parent))
        for child in node.children:
            add(child, node.process.pid)

    for root in python_tree(procs, parents):
        add(root, pid)
    return out


def error_record(pid: int, parent: int | None, error: str) -> dict[str, object]:
    """The JSON line of a process that could not be reported (never a report document)."""
    return {"format": ERROR_FORMAT, "pid": pid, "parent": parent, "error": error}


def _scan(pid: int, collect: bool) -> Report:
    """``report PID``'s scan, as one process of many: AttachError when it cannot be reached."""
    from ..attach.session import Session

    with Progress() as progress, Session(pid, progress=progress) as s:
        return s.client.scan(collect=collect, progress=progress)


def _header(pid: int, parent: int | None) -> str:
    return f"### process {pid} " + ("(the parent)" if parent is None else f"(child of {parent})")


def run(args: argparse.Namespace) -> int:
    """Report the parent (exit 2 when it cannot be), then each process below it."""
    from ..attach.client import AttachError

    if not args.target.isdigit():
        raise UserError("--children needs a process ID, not a snapshot file")
    top = parse_pid(args.target)
    members = family(top)
    stale = False
    out = sys.stdout
    for i, (pid, parent) in enumerate(members):
        try:
            report = _scan(pid, args.collect)
        except AttachError as e:
            if parent is None:
                raise UserError(str(e)) from None
            if args.json:
                out.write(json.dumps(error_record(pid, parent, str(e))) + "\n")
            else:
                out.write(f"\n{_header(pid, parent)}: not reported: {e}\n")
            out.flush()
            continue
        stale = stale or bool(report.stale_count)
        if args.json:
            out.write(json.dumps(report.document) + "\n")  # JSON Lines: one per line
        else:
            out.write(("\n" if i else "") + _header(pid, parent) + "\n")
            print_report(report, as_json=False, stream=out)
        out.flush()
    return 1 if args.fail_on_stale and stale else 0
