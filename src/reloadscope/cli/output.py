"""Writing results: colour only on a terminal, JSON on request."""

from __future__ import annotations

import io
import os
import sys

TYPE_CHECKING = False  # typing is not imported at run time: starting must stay cheap
if TYPE_CHECKING:
    from typing import Any, TextIO

    from ..model import Report


def tolerant_streams() -> None:
    """Text the terminal's encoding cannot show (a lone surrogate from a snapshot, any non-ASCII
    character in a C locale) is written as a backslash escape instead of raising."""
    for stream in (sys.stdout, sys.stderr):
        # strict, or surrogateescape (a C locale), raise on a character the encoding lacks
        if isinstance(stream, io.TextIOWrapper) and stream.errors in ("strict", "surrogateescape"):
            stream.reconfigure(errors="backslashreplace")


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def use_color(stream: TextIO) -> bool:
    """As CPython's own colour rules: NO_COLOR (any value) turns colour off, else FORCE_COLOR
    turns it on, else TERM=dumb turns it off; otherwise colour only on a terminal."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    return _isatty(stream)


def text_width(stream: TextIO) -> int | None:
    """The width to wrap the readable report to: COLUMNS when set, else the terminal's; None
    (no wrapping: one finding per line, for grep) on a pipe."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if not _isatty(stream):
        return None
    try:
        return os.get_terminal_size(stream.fileno()).columns or None
    except (AttributeError, ValueError, OSError):
        return None


def print_report(report: Report, *, as_json: bool, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    if as_json:
        doc = report.document  # what to_json() gives, without copying it first
        if report.exit is not None and "exit" not in doc:
            doc = {**doc, "exit": report.exit}  # a post-mortem file's: how it ended
        dump_json(doc, out)
    else:
        from ..textreport import render

        out.write(render(report, color=use_color(out), width=text_width(out)))


def dump_json(doc: Any, stream: TextIO | None = None) -> None:
    import json

    out = stream or sys.stdout
    # One write: json.dump would write each of its many small pieces to the stream.
    out.write(json.dumps(doc, indent=2))
    out.write("\n")
