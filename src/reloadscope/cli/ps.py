"""``reloadscope ps [--tree]``: the Python processes this user may attach to."""

from __future__ import annotations

import argparse

from .output import dump_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..attach.discovery import ProcessNode, PythonProcess


def add_parser(sub: Any, summary: str) -> None:
    p = sub.add_parser(
        "ps",
        help=summary,
        description="PID, Python version (3.13t: a free-threaded build), memory, whether an "
        "agent already listens, command line (cut to the terminal's width; whole on a pipe or "
        "with --json). reloadscope's own commands are left out; a program started with "
        "'reloadscope run' is listed.",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.add_argument(
        "--tree",
        action="store_true",
        help="as a tree: each Python process under its nearest Python ancestor (a pre-fork "
        "server with its workers); with --json, each object has its 'children'",
    )


def _line(p: PythonProcess, prefix: str = "") -> str:
    from ..inert import inert

    rss = f"{p.rss / 2**20:.0f}M"
    cmd = inert(" ".join(p.cmdline))
    agent = "yes" if p.agent else "no"
    return f"{p.pid:>7}  {p.python or '?':<6}  {rss:>8}  {agent:<5}  {prefix}{cmd}"


def tree_lines(roots: list[ProcessNode]) -> list[str]:
    """The rows of ``ps --tree``: ``ps f``'s drawing in the COMMAND column; a non-Python
    process between a child and its Python parent is named in brackets before the child's
    command (``[via sh 123]``)."""
    from ..inert import inert

    out: list[str] = []

    def add(node: ProcessNode, indent: str, last: bool, top: bool) -> None:
        via = "".join(f"[via {inert(name)} {pid}] " for pid, name in reversed(node.via))
        prefix = "" if top else indent + " \\_ "
        out.append(_line(node.process, prefix + via))
        deeper = "" if top else indent + ("    " if last else " |  ")
        for i, child in enumerate(node.children):
            add(child, deeper, i == len(node.children) - 1, False)

    for root in roots:
        add(root, "", True, True)
    return out


def run(args: argparse.Namespace) -> int:
    from ..attach.discovery import process_parents, python_processes, python_tree

    parents = process_parents() if args.tree else None
    procs = python_processes()
    if args.tree:
        roots = python_tree(procs, parents)
        if args.json:
            dump_json([r.to_json() for r in roots])
            return 0
        lines = tree_lines(roots)
    else:
        if args.json:
            dump_json([p.to_json() for p in procs])
            return 0
        lines = [_line(p) for p in procs]
    import sys

    from .output import text_width

    width = text_width(sys.stdout)
    print(f"{'PID':>7}  {'PYTHON':<6}  {'RSS':>8}  AGENT  COMMAND")
    for line in lines:
        print(line if width is None or len(line) <= width else line[: max(width - 3, 0)] + "...")
    if not procs:
        print("(no Python processes of this user)")
    return 0
