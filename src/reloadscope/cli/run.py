"""``reloadscope run [-m MODULE | SCRIPT] [ARGS...]``: a program with recording from line one."""

from __future__ import annotations

import argparse
import os
import runpy
import sys
from typing import Any

from .errors import UserError


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="run a program with reload recording on from its first line",
        description=(
            "Runs SCRIPT (or -m MODULE) like python would, with every generation recorded and an "
            "agent listening, so 'reloadscope attach/report/snapshot PID' work later without "
            "injection. RELOADSCOPE_SNAPSHOT_ON_EXIT=FILE writes a post-mortem snapshot."
        ),
        epilog="Examples: reloadscope run serve.py --port 8000; reloadscope run -m mybot",
    )
    p.add_argument("-m", dest="module", metavar="MODULE", help="run a library module as a script")
    p.add_argument(
        "args",
        nargs=argparse.REMAINDER,
        metavar="[SCRIPT] ARGS",
        help="the script and its arguments",
    )


def run(args: argparse.Namespace) -> int:
    import reloadscope

    rest = list(args.args)
    if args.module is None and not rest:
        raise UserError("give a SCRIPT or -m MODULE to run")
    if args.module is None and not os.path.exists(rest[0]):
        raise UserError(f"no such script: {rest[0]}")
    reloadscope.install()
    if args.module is not None:
        sys.argv = [args.module, *rest]
        runpy.run_module(args.module, run_name="__main__", alter_sys=True)
    else:
        sys.argv = rest
        sys.path.insert(0, os.path.dirname(os.path.abspath(rest[0])))
        runpy.run_path(rest[0], run_name="__main__")
    return 0
