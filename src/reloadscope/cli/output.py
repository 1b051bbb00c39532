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


def use_color(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    return hasattr(stream, "isatty") and stream.isatty()


def print_report(report: Report, *, as_json: bool, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    if as_json:
        dump_json(report.document, out)  # what to_json() gives, without copying it first
    else:
        from ..textreport import render

        out.write(render(report, color=use_color(out)))


def dump_json(doc: Any, stream: TextIO | None = None) -> None:
    import json

    out = stream or sys.stdout
    # One write: json.dump would write each of its many small pieces to the stream.
    out.write(json.dumps(doc, indent=2))
    out.write("\n")
