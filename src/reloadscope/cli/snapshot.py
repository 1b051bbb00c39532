"""``reloadscope snapshot PID [-o FILE]``: attach, scan, write a snapshot file, detach."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..snapshot import write
from .errors import UserError
from .target import parse_pid, scan_pid


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "snapshot",
        help="write a snapshot file of a live process (no UI)",
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
        help="where to write (default: reloadscope-PID-TIME.rsnap here)",
    )


def run(args: argparse.Namespace) -> int:
    report = scan_pid(parse_pid(args.pid))
    try:
        path = write(report, args.output)
    except OSError as e:
        raise UserError(
            f"cannot write {args.output or 'the snapshot'}: {e.strerror or e}"
        ) from None
    n = report.stale_count
    print(f"{n} stale object{'' if n == 1 else 's'} in process {report.pid}", file=sys.stderr)
    print(path)
    return 0
