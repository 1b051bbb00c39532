"""``reloadscope report TARGET``: a readable summary, or the report document as JSON."""

from __future__ import annotations

import argparse

from .errors import UserError
from .output import print_report
from .progress import Progress
from .target import report_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def add_parser(sub: Any, summary: str) -> None:
    p = sub.add_parser(
        "report",
        help=summary,
        description=(
            "Print what a process (by PID) or a snapshot file holds: each reloaded module "
            "with its generations, and "
            "its stale objects with the shortest path that holds each and how to fix it. "
            "Exit status 0; with --fail-on-stale, 1 when anything is stale (for CI jobs and "
            "test suites); 2 for errors. With --watch (a PID only), it stays attached and "
            "prints one line per reload (module, generation, stale objects and the change), "
            "or with --json one report document per line, until Ctrl-C (exit 0) or until "
            "the process ends (one line on stderr, exit 0)."
        ),
        epilog="Examples: reloadscope report 4242 --json; reloadscope report crash.rsnap "
        "--fail-on-stale; reloadscope report 4242 --watch (prints e.g. "
        "'12:00:03 gen 3 of plugins.greeter: +2 stale, -1 gone (4 now)' after each reload)",
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
    p.add_argument(
        "--watch",
        action="store_true",
        help="for a PID: stay attached and report after each reload, until Ctrl-C or the "
        "process ends",
    )
    p.add_argument(
        "--no-collect",
        dest="collect",
        action="store_false",
        help="for a PID: by default the process runs gc.collect() before the scan, so garbage "
        "cycles are not reported; this skips it (a full collection pauses the process; "
        "cycles then show up as held by nothing)",
    )
    p.add_argument(
        "--children",
        action="store_true",
        help="for a PID: also every Python process below it (a pre-fork server's workers), "
        "one after the other, the parent first; with --json one document per line (JSON "
        "Lines), and an error record for one that cannot be reached",
    )


def run(args: argparse.Namespace) -> int:
    if args.children and args.watch:
        raise UserError("--watch follows one process: give it without --children")
    if args.children:
        from .children import run as run_children

        return run_children(args)
    if args.watch:
        from .watch import watch

        return watch(args)
    with Progress() as progress:  # erased before the report is printed
        report = report_of(args.target, progress, collect=args.collect)
    print_report(report, as_json=args.json)
    if args.fail_on_stale and report.stale_count:
        return 1
    return 0
