"""User errors: one line on stderr, exit status 2, never a traceback."""

from __future__ import annotations

import sys


class UserError(Exception):
    """Something the user can fix; the message says what and how."""


def fail(message: str) -> int:
    print(f"reloadscope: error: {message}", file=sys.stderr)
    return 2


def need_terminal(command: str, instead: str) -> None:
    """The UI commands need a terminal (SPEC): without one, say what to run instead."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError(
            f"'reloadscope {command}' needs a terminal (stdin and stdout); without one, "
            f"run '{instead}'"
        )
