"""``reloadscope snapshot PID [-o FILE]``: attach, scan, write a snapshot file, detach."""

from __future__ import annotations

import argparse
import sys

from .errors import UserError
from .progress import Progress
from .target import parse_pid, scan_pid

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def add_parser(sub: Any, summary: str) -> None:
    p = sub.add_parser(
        "snapshot",
        help=summary,
        description=(
            "Attach to the process, scan it, write a .rsnap file and detach; the process runs "
            "on as before. The last line printed is the path written. Open it later with "
            "'reloadscope report FILE' or 'reloadscope open FILE'."
        ),
        epilog="Example: reloadscope snapshot 4242 -o before-fix.rsnap",
    )
    p.add_argument("pid", metavar="PID", help="the process to snapshot (see 'reloadscope ps')")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where to write (default: reloadscope-PID-TIME.rsnap here); - writes the "
        "snapshot to standard output (not a terminal), e.g. to pipe it to 'reloadscope report -'",
    )
    p.add_argument(
        "--no-collect",
        dest="collect",
        action="store_false",
        help="by default the process runs gc.collect() before the scan, so garbage "
        "cycles are not reported; this skips it (a full collection pauses the process; "
        "cycles then show up as held by nothing)",
    )


def run(args: argparse.Namespace) -> int:
    pid = parse_pid(args.pid)
    to_stdout = args.output == "-"
    if to_stdout and sys.stdout.isatty():
        raise UserError(
            "-o - writes binary data to standard output, which is a terminal: redirect it "
            "(> FILE, | reloadscope report -) or give -o FILE"
        )
    with Progress() as progress:
        report = scan_pid(pid, progress, collect=args.collect)
    n = report.stale_count
    if to_stdout:
        from ..snapshot import dump

        dump(report, sys.stdout.buffer)
        print(f"{n} stale object{'' if n == 1 else 's'} in process {report.pid}", file=sys.stderr)
        return 0
    from ..snapshot import write

    try:
        path = write(report, args.output)
    except OSError as e:
        raise UserError(
            f"cannot write {args.output or 'the snapshot'}: {e.strerror or e}"
        ) from None
    print(f"{n} stale object{'' if n == 1 else 's'} in process {report.pid}", file=sys.stderr)
    print(path)
    return 0
