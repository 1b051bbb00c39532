"""``reloadscope report TARGET``: a readable summary, or the report document as JSON."""

from __future__ import annotations

import argparse
from typing import Any

from .output import print_report
from .target import report_of


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="summarise a live process or a snapshot file (stale objects, paths, fixes)",
        description=(
            "Print what a process (by PID) or a snapshot file holds: each reloaded module "
            "with its generations, and "
            "its stale objects with the shortest path that holds each and how to fix it. "
            "Exit status 0; with --fail-on-stale, 1 when anything is stale (for CI jobs and "
            "test suites); 2 for errors."
        ),
        epilog="Examples: reloadscope report 4242 --json; reloadscope report crash.rsnap "
        "--fail-on-stale",
    )
    p.add_argument(
        "target",
        metavar="TARGET",
        help="a process ID, a .rsnap snapshot file, or - to read a snapshot from stdin",
    )
    p.add_argument(
        "--json", action="store_true", help="print the report document (JSON) and nothing else"
    )
    p.add_argument(
        "--fail-on-stale",
        action="store_true",
        help="exit with status 1 when stale objects were found",
    )


def run(args: argparse.Namespace) -> int:
    report = report_of(args.target)
    print_report(report, as_json=args.json)
    if args.fail_on_stale and report.stale_count:
        return 1
    return 0
