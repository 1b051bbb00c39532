"""Which processes are Python processes this user may attach to (psutil), and how they nest."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import psutil

from .client import agent_listens
from .elfinfo import interpreter, is_python, named_python, python_version

__all__ = [
    "ProcessNode",
    "PythonProcess",
    "is_python",
    "own_command",
    "process_parents",
    "python_processes",
    "python_tree",
    "python_version",
    "walk",
]


@dataclass(frozen=True)
class PythonProcess:
    pid: int
    python: str | None
    cmdline: tuple[str, ...]
    rss: int
    agent: bool
    ppid: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "ppid": self.ppid,
            "python": self.python,
            "cmdline": list(self.cmdline),
            "rss": self.rss,
            "agent": self.agent,
        }


@dataclass
class ProcessNode:
    """A Python process in the tree: its Python children (by PID), and the non-Python
    processes between it and its tree parent (``via``, nearest that parent first)."""

    process: PythonProcess
    children: list[ProcessNode] = field(default_factory=list)
    via: tuple[tuple[int, str], ...] = ()

    def to_json(self) -> dict[str, object]:
        doc = self.process.to_json()
        doc["via"] = [{"pid": pid, "name": name} for pid, name in self.via]
        doc["children"] = [c.to_json() for c in self.children]
        return doc


# reloadscope's own commands: never a target (``run`` is: the program runs in that process).
_OWN_COMMANDS = frozenset({"attach", "open", "report", "snapshot", "ps", "fix", "demo"})


def own_command(cmdline: tuple[str, ...] | list[str]) -> bool:
    """Whether ``cmdline`` is one of reloadscope's own commands (``python -m reloadscope ps``,
    ``reloadscope report 42``), not a program it runs."""
    args = list(cmdline)
    for i, a in enumerate(args[:4]):
        named = a == "reloadscope" and i > 0 and args[i - 1] == "-m"
        script = os.path.basename(a) == "reloadscope" and i <= 1
        if named or script:
            rest = args[i + 1 :]
            return bool(rest) and rest[0] in _OWN_COMMANDS
    return False


def process_parents() -> dict[int, int]:
    """PID -> parent PID, for every process visible now."""
    parents = {}
    for proc in psutil.process_iter(["ppid"]):
        ppid = proc.info["ppid"]
        if ppid is not None:
            parents[proc.pid] = ppid
    return parents


def _below(root: int, parents: dict[int, int]) -> set[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = {root}, [root]
    while todo:
        for c in children.get(todo.pop(), ()):
            if c not in found:
                found.add(c)
                todo.append(c)
    return found


def python_processes(
    *, under: int | None = None, parents: dict[int, int] | None = None
) -> list[PythonProcess]:
    """This user's Python processes (root: everyone's), by PID.  With ``under``: that process
    and the Python processes below it, whoever they belong to (attaching to one of another
    user then says why it cannot)."""
    me = os.getpid()
    uid = os.getuid()
    wanted = None
    if under is not None:
        wanted = _below(under, process_parents() if parents is None else parents)
    out = []
    for proc in psutil.process_iter(["pid", "ppid", "uids", "cmdline", "memory_info"]):
        try:
            if proc.pid == me or own_command(proc.info["cmdline"] or ()):
                continue
            if wanted is not None:
                if proc.pid not in wanted:
                    continue
            elif uid != 0 and proc.info["uids"].real != uid:
                continue
            found = interpreter(proc.pid)  # read once: it parses the process's ELF files
            if found is None and not named_python(proc.pid):
                continue
            rss = proc.info["memory_info"].rss if proc.info["memory_info"] else 0
            out.append(
                PythonProcess(
                    proc.pid,
                    found.label if found is not None else None,
                    tuple(proc.info["cmdline"] or ()),
                    rss,
                    # Under the target's uid: root lists other users' processes too.
                    agent_listens(proc.pid, proc.info["uids"].real),
                    proc.info["ppid"] or 0,
                )
            )
        except (psutil.Error, OSError):
            continue
    return sorted(out, key=lambda p: p.pid)


def _name(pid: int) -> str:
    try:
        return psutil.Process(pid).name()
    except psutil.Error:
        return "?"


def python_tree(
    procs: list[PythonProcess], parents: dict[int, int] | None = None
) -> list[ProcessNode]:
    """``procs`` as a forest: each one's tree parent is its nearest ancestor among ``procs``
    (non-Python processes between the two are collapsed into ``via``); roots and children
    by PID."""
    if parents is None:
        parents = process_parents()
    nodes = {p.pid: ProcessNode(p) for p in procs}
    roots = []
    for p in procs:  # by PID, so every list of children is too
        node = nodes[p.pid]
        between: list[tuple[int, str]] = []
        up = p.ppid or parents.get(p.pid, 0)
        seen = {p.pid}
        while up > 0 and up not in nodes and up not in seen:
            seen.add(up)
            between.append((up, _name(up)))
            up = parents.get(up, 0)
        if up in nodes and up != p.pid:
            node.via = tuple(between)
            nodes[up].children.append(node)
        else:
            roots.append(node)
    return roots


def walk(nodes: list[ProcessNode], depth: int = 0) -> list[tuple[int, ProcessNode]]:
    """(depth, node) for every node, depth-first, each parent before its children."""
    out = []
    for n in nodes:
        out.append((depth, n))
        out.extend(walk(n.children, depth + 1))
    return out
