"""What the screens show, computed from a Report: no widgets here, so it is testable alone."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from ..inert import inert, inert_lines
from ..model import Module, Path, Report, StaleObject
from ..textreport import plural


def modules_in_order(report: Report) -> list[Module]:
    """Most stale first: the app opens on the first."""
    return sorted(report.modules, key=lambda m: (-m.stale_count, m.name))


def module_row(m: Module) -> tuple[str, str, str]:
    return (inert(m.name), str(len(m.generations)), str(m.stale_count))


def held_by(s: StaleObject) -> str:
    return inert(s.paths[0].text) if s.paths else "?"


def stale_row(s: StaleObject, width: int | None = None) -> tuple[str, str, str, str, str, str]:
    """A row of the stale table; ``width`` shortens the path in the middle to fit."""
    gen = "?" if s.generation is None else str(s.generation)
    held = held_by(s) if width is None else shorten(held_by(s), width)
    return (inert(s.kind), inert(s.qualname), gen, str(s.count), str(s.size), held)


def shorten(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, cut in the middle, never at its end: a thread
    path keeps its thread and its local variable with what follows (``thread 'MainThread' > …
    > local 'handler'.__func__``), a module path its head and its last steps."""
    if len(text) <= width:
        return text
    parts = text.split(" > ")
    if len(parts) > 2:
        last = parts[-1]
        whole = f"{parts[0]} > … > {last}"
        room = width - len(last) - 4  # what "… > " leaves of the thread's name
        if len(whole) <= width:
            return whole
        if room >= 1:
            return f"{parts[0][:room]}… > {last}"
        return "…" + last[max(len(last) - width + 1, 0) :]
    keep = max(width - 1, 2)
    head = keep // 3
    return text[:head] + "…" + text[len(text) - (keep - head) :]


def steps(p: Path) -> int:
    """The labelled steps of a path (``.attr``, ``[key]``, a thread's frame and local), the
    same on every CPython; documents from before the count give the object depth."""
    return p.steps if p.steps is not None else p.depth


SORT_KEYS = {
    "kind": lambda s: (s.kind, s.qualname),
    "qualname": lambda s: s.qualname,
    "gen": lambda s: -1 if s.generation is None else s.generation,
    "count": lambda s: -s.count,
    "size": lambda s: -s.size,
    "held by": held_by,
}


def visible_stale(
    stale: Iterable[StaleObject], text: str = "", sort: str = "kind"
) -> list[StaleObject]:
    """Stale objects matching ``text`` (in kind, name, type or any path), sorted by a column."""
    needle = text.lower().strip()
    rows = [s for s in stale if not needle or needle in _haystack(s)]
    return sorted(rows, key=SORT_KEYS.get(sort, SORT_KEYS["kind"]))


def _haystack(s: StaleObject) -> str:
    return " ".join([s.kind, s.qualname, s.type, *(p.text for p in s.paths)]).lower()


def paths_text(s: StaleObject | None, blind_spots: Iterable[str] = ()) -> str:
    blind = [f"could not see: {b}" for b in blind_spots]
    if s is None:
        return "\n".join(["No stale objects here.", *blind])
    gen = (
        "an earlier execution (number unknown)"
        if s.generation is None
        else f"generation {s.generation}"
    )
    lines = [
        f"{s.kind} {s.qualname} ({s.type}), made by {gen}; {s.count} alive, "
        f"{plural(s.size, 'byte')}"
    ]
    if s.in_traceback:
        lines.append("in the crash's traceback: a frame of it ran or held this (e: traceback)")
    if s.evidence is not None:  # one line first: the panel may be too small for all
        lines.append(f"why stale [{s.evidence.kind}]: {s.evidence.text}")
    for i, p in enumerate(s.paths, 1):
        lines += ["", f"path {i} (root: {p.root}, {plural(steps(p), 'step')})", f"  {p.text}"]
        if p.hint:
            lines.append(f"  fix: {p.hint}")
    if not s.paths:
        lines.append("no path was found")
    if blind:
        lines += ["", *blind]
    return "\n".join(map(inert, lines))


def title(report: Report, kind: str, description: str, *, ended: bool = False) -> str:
    """The header's subtitle, the one place that names the process: the source, pid, Python
    and command line.  A live process that has exited since says so first (an 80-column
    header cuts the end)."""
    argv = " ".join(report.argv) or "?"
    where = {"live": "live process", "process": "this process"}.get(kind, description)
    if ended:
        where = "process ended (was live)"
    # A process of a tree (ui/picker.py) says whose child it is.
    parent = description.partition(", child of ")[2]
    whose = f" | child of {parent}" if parent else ""
    ending = report.ending()
    how = f" | {ending}" if ending else ""
    return inert(f"{where} | pid {report.pid}{whose} | Python {report.python}{how} | {argv}")


def ending_text(report: Report) -> str:
    """A post-mortem file's account of how the process ended: the line, then the traceback."""
    info = report.exit if isinstance(report.exit, dict) else {}
    lines = [report.ending() or "no record of how the process ended"]
    tb = info.get("traceback")
    if isinstance(tb, list) and tb:
        lines += ["", *(str(x) for x in tb)]
    marked = [s.qualname for m in report.modules for s in m.stale if s.in_traceback]
    if marked:
        lines += ["", "stale objects the crash ran or held: " + ", ".join(marked)]
    return inert("\n".join(lines))


def summary(report: Report, description: str = "") -> str:
    """The scan: when, how long, how much, what it found (the header names the process)."""
    state = "" if report.complete else " (incomplete)"
    text = (
        f"scan {report.taken_at}, {report.duration_s:.2f} s, {report.objects:,} objects"
        f"{state} | {plural(report.stale_count, 'stale object')} in "
        f"{plural(len(report.modules), 'module')}"
    )
    return inert(text)


def generations_text(m: Module) -> str:
    lines = [
        f"{m.name}: {plural(len(m.generations), 'generation')}, current {m.current_generation}"
    ]
    for g in m.generations:
        sha = (g.source_sha256 or "?")[:12]
        where = f" from {g.trigger}" if g.trigger else ""
        err = f" ({g.error})" if g.error else ""
        lines.append(f"  {g.number}: {g.kind} {g.started_at} {g.status}{err}{where} sha {sha}")
    if m.leftover_names:
        lines.append("leftover names: " + ", ".join(m.leftover_names))
    return "\n".join(map(inert, lines))


def diff_text(report: Report, module: str, old: int | None = None, new: int | None = None) -> str:
    """Unified diff between two generations' sources (default: the last two recorded)."""
    texts = report.sources.get(module, {})
    if not texts:
        return f"No source text was recorded for {module}."
    numbers = sorted(texts)
    if len(numbers) == 1:
        n = numbers[0]
        return f"Only generation {n} of {module} has its source recorded:\n\n{texts[n]}"
    new = numbers[-1] if new is None else new
    old = numbers[-2] if old is None else old
    diff = difflib.unified_diff(
        texts[old].splitlines(),
        texts[new].splitlines(),
        f"{module} generation {old}",
        f"{module} generation {new}",
        lineterm="",
    )
    text = "\n".join(diff) or f"Generations {old} and {new} of {module} have the same source."
    return inert_lines(text)


def paths_dot(s: StaleObject) -> str:
    """The reported paths of ``s`` as a Graphviz graph (root to object, one node per step)."""
    lines = ["digraph reloadscope {", "  rankdir=LR;", '  node [shape=box, fontname="monospace"];']
    target = f"{s.kind} {s.qualname}"
    lines.append(f"  target [label={_dot(target)}, style=filled, fillcolor=salmon];")
    for i, p in enumerate(s.paths):
        lines.append(f"  root{i} [label={_dot(p.root + ': ' + p.text)}];")
        lines.append(f"  root{i} -> target [label={_dot(p.hint[:60])}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
