"""The readable summary of a report (plain text; ANSI colours only when asked)."""

from __future__ import annotations

import re

from .inert import inert
from .model import Figures, Module, Report, StaleObject

_BOLD, _DIM, _RED, _YELLOW, _CYAN, _RESET = (
    "\x1b[1m",
    "\x1b[2m",
    "\x1b[31m",
    "\x1b[33m",
    "\x1b[36m",
    "\x1b[0m",
)


class _Style:
    def __init__(self, color: bool, width: int | None = None) -> None:
        self.color = color
        self.width = width

    def __call__(self, code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if self.color else text

    def wrap(self, prefix: str, text: str, code: str = "", *, path: bool = False) -> list[str]:
        """``prefix + text`` in lines of at most ``width`` (continuations indented under the
        text), ``text`` in colour ``code``.  A path breaks before a ``.`` or ``[`` or at a
        space, prose at spaces; a piece longer than a line is cut."""
        room = None if self.width is None else max(self.width - len(prefix), 20)
        if room is None or len(text) <= room:
            return [prefix + (self(code, text) if code else text)]
        lines: list[str] = []
        line = ""
        for piece in (_PATH_PIECES if path else _WORDS).findall(text):
            if line and len(line) + len(piece.rstrip()) > room:
                lines.append(line.rstrip())
                line = piece.lstrip()
            else:
                line += piece
            while len(line) > room:
                lines.append(line[:room])
                line = line[room:]
        if line.strip():
            lines.append(line.rstrip())
        indent = " " * len(prefix)
        return [
            (prefix if i == 0 else indent) + (self(code, ln) if code else ln)
            for i, ln in enumerate(lines)
        ]


_WORDS = re.compile(r"\s*\S+")
_PATH_PIECES = re.compile(r"\s*[.\[]?[^.\[\s]*")


def _gen(n: int | None) -> str:
    return "an earlier execution" if n is None else f"gen {n}"


def _entry(s: StaleObject, st: _Style) -> list[str]:
    count = f" x{s.count}" if s.count > 1 else ""
    where = f"({_gen(s.generation)}, {s.size} B)"
    head = f"  {st(_RED, inert(s.kind)):<10} {st(_BOLD, inert(s.qualname))}{count}  {where}"
    if s.in_traceback:
        head += "  " + st(_YELLOW, "in the crash's traceback")
    lines = [head]
    if s.evidence is not None:
        why = f"{inert(s.evidence.text)} [{inert(s.evidence.kind)}]"
        lines += st.wrap("      why: ", why)
    if s.paths:
        p = s.paths[0]
        lines += st.wrap("      held by ", inert(p.text), _CYAN, path=True)
        if p.hint:
            lines += st.wrap("      fix: ", inert(p.hint))
        for other in s.paths[1:]:
            lines += st.wrap("      also    ", inert(other.text), _CYAN, path=True)
    return lines


def plural(n: int, word: str) -> str:
    """``1 module``, ``2 modules`` (``word`` ends in ``y``: ``1 entry``, ``2 entries``)."""
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


def retained_text(f: Figures) -> str:
    """``retained 2998 B`` (``>=`` when the scan's bound stopped it; ``?`` when not measured)."""
    if f.retained_bytes is None:
        return "retained not measured"
    return f"retained {'>=' if f.retained_capped else ''}{f.retained_bytes} B"


def timeline_lines(m: Module) -> list[str]:
    """One line per generation that still has stale objects alive (the timeline)."""
    out = []
    for g in m.generations:
        f = g.figures
        if f.stale:
            when = inert(g.started_at.replace("+00:00", ""))
            out.append(
                f"  gen {g.number} ({inert(g.kind)} {when}): {plural(f.stale, 'stale object')}, "
                f"{f.stale_bytes} B, {retained_text(f)}"
            )
    u = m.unknown_generation
    if u is not None and u.stale:
        out.append(
            f"  gen ? (before recording): {plural(u.stale, 'stale object')}, "
            f"{u.stale_bytes} B, {retained_text(u)}"
        )
    return out


TOP_HOLDERS = 5


def generations_text(gens: tuple[int | None, ...]) -> str:
    """``gens 0-5``, ``gens 0, 2``, ``gen 3``, ``gens 1, ?``; ``earlier executions`` when
    none is known."""
    known = [g for g in gens if g is not None]
    if not known:
        return "earlier executions"
    if len(known) > 2 and known == list(range(known[0], known[-1] + 1)):
        shown = f"{known[0]}-{known[-1]}"
    else:
        shown = ", ".join(map(str, known))
    return ("gen " if len(gens) == 1 else "gens ") + shown + (", ?" if None in gens else "")


def holder_lines(report: Report, st: _Style, top: int = TOP_HOLDERS) -> list[str]:
    """The root causes: the ``top`` holders with their counts, generations and hint."""
    holders = report.holders
    if not holders:
        return []
    lines = ["Holders (root causes), most stale objects first:"]
    for h in holders[:top]:
        facts = [generations_text(h.generations)]
        if h.growing:
            facts.append(st(_RED, "growing"))
        facts.append(f"{h.bytes} B")
        tail = f": {h.count} stale ({', '.join(facts)})"
        lines += st.wrap("  ", inert(h.path), _CYAN, path=True)
        lines[-1] += tail
        if h.hint:
            lines += st.wrap("      ", inert(h.hint))
    if len(holders) > top:
        lines.append(f"  ... and {plural(len(holders) - top, 'more holder')}")
    return lines


def _module(m: Module, st: _Style) -> list[str]:
    gens = len(m.generations)
    failed = [g.number for g in m.generations if g.status == "failed"]
    if m.generations_known:
        which = f"generation {m.current_generation} of {gens}"
    else:
        which = "current; earlier executions found by evidence, numbers unknown"
    head = f"{st(_BOLD, inert(m.name))}  {which}  {m.stale_count} stale"
    lines = [head]
    if m.file:
        lines.append(f"  {st(_DIM, inert(m.file))}")
    if failed:
        lines.append(f"  {st(_YELLOW, 'failed reloads:')} " + ", ".join(f"gen {n}" for n in failed))
    if m.leftover_names:
        names = ", ".join(map(inert, m.leftover_names))
        lines.append(f"  {st(_YELLOW, 'leftover names:')} {names}")
    for w in m.warnings:
        lines.append(f"  {st(_YELLOW, 'warning:')} {inert(w)}")
    lines.extend(timeline_lines(m))
    for s in m.stale:
        lines.extend(_entry(s, st))
    return lines


def render(report: Report, *, color: bool = False, width: int | None = None) -> str:
    """The readable report; with ``width``, long findings wrap to that many columns."""
    st = _Style(color, width)
    argv = inert(" ".join(report.argv)) or "?"
    lines = [
        f"reloadscope report: pid {report.pid}, Python {inert(report.python)}, {argv}",
        f"taken {inert(report.taken_at)}; scanned {report.objects:,} objects in "
        f"{report.duration_s:.2f} s" + ("" if report.complete else " (incomplete)"),
    ]
    ending = report.ending()
    if ending is not None:
        lines.append(
            st(_RED if report.exit and report.exit.get("exception") else _BOLD, inert(ending))
        )
    total = report.stale_count
    blind = [f"  {st(_YELLOW, 'could not see:')} {inert(b)}" for b in report.blind_spots]
    if not report.modules:
        if blind:
            lines.append(
                "No stale objects found where the scan could judge; see what it could not:"
            )
            return "\n".join(lines + blind) + "\n"
        lines.append("No reloads recorded and no stale objects found.")
        return "\n".join(lines) + "\n"
    lines.extend(blind)
    lines.append(f"{plural(total, 'stale object')} in {plural(len(report.modules), 'module')}")
    held = holder_lines(report, st)
    if held:
        lines.append("")
        lines.extend(held)
    for m in sorted(report.modules, key=lambda m: (-m.stale_count, m.name)):
        lines.append("")
        lines.extend(_module(m, st))
    return "\n".join(lines) + "\n"


def _h(text: object) -> str:
    """``inert`` text, HTML-escaped (quotes too): safe in an element and in an attribute."""
    import html

    return html.escape(inert(text), quote=True)


def _module_html(m: Module) -> list[str]:
    if m.generations_known:
        which = f"generation {m.current_generation} of {len(m.generations)}"
    else:
        which = "earlier executions found by evidence, numbers unknown"
    notes = [f"<b>{_h(m.name)}</b>", _h(which), f"{m.stale_count} stale"]
    if m.file:
        notes.append(f"<code>{_h(m.file)}</code>")
    if m.leftover_names:
        notes.append(
            "leftover names: " + ", ".join(f"<code>{_h(n)}</code>" for n in m.leftover_names)
        )
    notes.extend(f"warning: {_h(w)}" for w in m.warnings)
    rows = [f'<tr><th colspan="6" style="text-align:left">{" &middot; ".join(notes)}</th></tr>']
    for s in m.stale:
        count = f" &times;{s.count}" if s.count > 1 else ""
        held = "<br>".join(f"<code>{_h(p.text)}</code>" for p in s.paths) or "nothing found"
        fixes = "<br>".join(_h(p.hint) for p in s.paths if p.hint)
        why = _h(s.evidence.text) if s.evidence is not None else ""
        rows.append(
            "<tr>"
            f"<td>{_h(s.kind)}</td>"
            f"<td><code>{_h(s.qualname)}</code>{count}</td>"
            f"<td>{_h(_gen(s.generation))}</td>"
            f"<td>{held}</td>"
            f"<td>{fixes}</td>"
            f"<td>{why}</td>"
            "</tr>"
        )
    return rows


def render_html(report: Report) -> str:
    """The summary as an HTML fragment (a notebook's display): a table of the modules, their
    stale objects, the paths that hold each, the fixes and the evidence.  Everything from the
    report is escaped, control characters as ``inert`` shows them."""
    argv = " ".join(report.argv) or "?"
    head = (
        f"<p><b>reloadscope report</b>: pid {report.pid}, Python {_h(report.python)}, "
        f"<code>{_h(argv)}</code>; taken {_h(report.taken_at)}; scanned "
        f"{report.objects:,} objects in {report.duration_s:.2f} s"
        + ("" if report.complete else " (incomplete)")
        + "</p>"
    )
    parts = ['<div class="reloadscope-report">', head]
    parts.extend(f"<p>could not see: {_h(b)}</p>" for b in report.blind_spots)
    if not report.modules:
        what = (
            "No stale objects found where the scan could judge."
            if report.blind_spots
            else "No reloads recorded and no stale objects found."
        )
        parts += [f"<p>{what}</p>", "</div>"]
        return "\n".join(parts)
    total, n = report.stale_count, len(report.modules)
    parts.append(
        f"<p>{total} stale object{'s' if total != 1 else ''} in {n} module{'s' if n != 1 else ''}"
        "</p>"
    )
    parts.append("<table>")
    parts.append(
        "<thead><tr><th>kind</th><th>object</th><th>made by</th><th>held by</th><th>fix</th>"
        "<th>why</th></tr></thead>"
    )
    parts.append("<tbody>")
    for m in sorted(report.modules, key=lambda m: (-m.stale_count, m.name)):
        parts.extend(_module_html(m))
    parts += ["</tbody>", "</table>", "</div>"]
    return "\n".join(parts)
