"""``reloadscope fix TARGET [--apply]``: the repair plan, reviewed before anything is written."""

from __future__ import annotations

import argparse
import json
import sys

from .errors import UserError
from .progress import Progress

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def add_parser(sub: Any, summary: str) -> None:
    p = sub.add_parser(
        "fix",
        help=summary,
        description=(
            "Print the repair plan of a process: for each stale object, the change that makes "
            "its holder point at the current object of the same name (a module attribute, a "
            "list item, a dict value, an instance's or class's attribute; an instance's "
            "__class__; a subclass's __bases__; a bound method rebuilt on the current "
            "function), and for each holder it cannot change, why and what to do instead. "
            "Nothing is changed unless --apply is given: then the process makes the plan "
            "again, carries out each change whose holder still holds the stale object where "
            "the plan saw it, scans again and says what is gone and what remains. No code of "
            "the program runs during either (no __setattr__, __eq__, __hash__ or metaclass "
            "hook). A snapshot file gets the plan its recorded paths give, and is never "
            "fixed. Exit status 0 when the plan was printed or carried out (even if some "
            "stale objects remain: the output says which and why); 2 for errors."
        ),
        epilog="Examples: reloadscope fix 4242 (review); reloadscope fix 4242 --apply; "
        "reloadscope fix 4242 --json | jq '.changes[].code'",
    )
    p.add_argument(
        "target",
        metavar="TARGET",
        help="a process ID, or a .rsnap snapshot file (plan only)",
    )
    p.add_argument(
        "--apply",
        action="store_true",
        help="carry the plan out in the process, then scan again (for a PID only)",
    )
    p.add_argument(
        "--remove-leftovers",
        action="store_true",
        help="also delete names a module no longer defines that still hold old functions "
        "(off by default: old code may still read them)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the plan (or, with --apply, the result) as one JSON document",
    )
    p.add_argument(
        "--no-collect",
        dest="collect",
        action="store_false",
        help="for a PID: skip the gc.collect() the process runs before scanning (garbage "
        "cycles then show up as held by nothing)",
    )


def run(args: argparse.Namespace) -> int:
    result = plan_or_apply(args)
    if args.json:
        json.dump(result.to_json(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(result.text())
    return 0


def plan_or_apply(args: argparse.Namespace) -> Any:
    target = args.target
    if not target.isdigit():
        if args.apply:
            raise UserError(
                f"{target} is a snapshot: it holds no objects and cannot be fixed; fix the live "
                "process instead (reloadscope fix PID --apply)"
            )
        from ..fixplan import from_report
        from .target import report_of

        return from_report(report_of(target))
    from ..attach.client import AttachError
    from ..attach.session import Session
    from .target import parse_pid

    pid = parse_pid(target)
    with Progress() as progress:
        try:
            with Session(pid, progress=progress) as s:
                progress(f"{'fixing' if args.apply else 'planning a fix for'} PID {pid}")
                return s.client.fix(
                    apply=args.apply, remove_leftovers=args.remove_leftovers, collect=args.collect
                )
        except AttachError as e:
            msg = str(e)
            if "unknown op 'fix'" in msg:
                msg = (
                    f"the agent running in process {pid} is older than this reloadscope and "
                    "cannot fix: restart the process with this version to use 'fix'"
                )
            raise UserError(msg) from None
