"""``reloadscope report TARGET``: a readable summary, or the report document as JSON."""

from __future__ import annotations

import argparse
from typing import Any

from ..snapshot import SnapshotError, load
from .errors import UserError
from .output import print_report


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="summarise a snapshot file (stale objects, paths, fixes)",
        description=(
            "Print what a snapshot file holds: each reloaded module with its generations, and "
            "its stale objects with the shortest path that holds each and how to fix it. "
            "Exit status 0; with --fail-on-stale, 1 when anything is stale (for CI jobs and "
            "test suites); 2 for errors."
        ),
        epilog="Example: reloadscope report crash.rsnap --fail-on-stale",
    )
    p.add_argument("target", metavar="TARGET", help="a .rsnap snapshot file")
    p.add_argument(
        "--json", action="store_true", help="print the report document (JSON) and nothing else"
    )
    p.add_argument(
        "--fail-on-stale",
        action="store_true",
        help="exit with status 1 when stale objects were found",
    )


def run(args: argparse.Namespace) -> int:
    target: str = args.target
    if target.isdigit():
        raise UserError(
            f"'{target}' looks like a PID: reporting on a live process needs 'reloadscope "
            "attach' support, which this version lacks; write a snapshot from inside the "
            "process with reloadscope.snapshot() and pass its file"
        )
    try:
        report = load(target)
    except SnapshotError as e:
        raise UserError(str(e)) from None
    print_report(report, as_json=args.json)
    if args.fail_on_stale and report.stale_count:
        return 1
    return 0
