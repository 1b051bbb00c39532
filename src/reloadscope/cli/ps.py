"""``reloadscope ps``: the Python processes this user may attach to."""

from __future__ import annotations

import argparse

from .output import dump_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def add_parser(sub: Any, summary: str) -> None:
    p = sub.add_parser(
        "ps",
        help=summary,
        description="PID, Python version, memory, whether an agent already listens, command line.",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list")


def run(args: argparse.Namespace) -> int:
    from ..attach.discovery import python_processes

    procs = python_processes()
    if args.json:
        dump_json([p.to_json() for p in procs])
        return 0
    print(f"{'PID':>7}  {'PYTHON':<6}  {'RSS':>8}  AGENT  COMMAND")
    for p in procs:
        rss = f"{p.rss / 2**20:.0f}M"
        cmd = " ".join(p.cmdline)
        print(f"{p.pid:>7}  {p.python or '?':<6}  {rss:>8}  {'yes' if p.agent else 'no':<5}  {cmd}")
    if not procs:
        print("(no Python processes of this user)")
    return 0
