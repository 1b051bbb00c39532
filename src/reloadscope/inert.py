"""Making text from targets, snapshot files and agents safe to print.

Names, keys, paths, hints, file names and argv come from processes and files we do not
control: a terminal would obey the control characters in them (ESC sequences move the cursor
or clear the screen; OSC 52 writes the clipboard).  ``inert`` shows every C0 and C1 control
character, DEL, lone surrogate and bidirectional control as a Python escape instead, so the
text prints as it reads.
"""

from __future__ import annotations

import re

# C0, DEL, C1, lone surrogates, and the bidirectional controls that reorder what a terminal
# shows (a name could otherwise display as something it is not).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def inert(text: object) -> str:
    """``text`` with control characters and lone surrogates escaped (``\\x1b``, ``\\ud800``);
    anything that is not a string is shown as ``?``."""
    if type(text) is not str:
        return "?"
    return _CONTROL.sub(_escape, text)


def inert_lines(text: str) -> str:
    """``inert`` for each line of a text of many lines (source code keeps its tabs)."""
    return "\n".join(_CONTROL.sub(_keep_tab, line) for line in text.split("\n"))


def _keep_tab(m: re.Match[str]) -> str:
    return m.group() if m.group() == "\t" else _escape(m)
