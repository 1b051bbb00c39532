"""User errors: one line on stderr, exit status 2, never a traceback."""

from __future__ import annotations

import sys


class UserError(Exception):
    """Something the user can fix; the message says what and how."""


def fail(message: str) -> int:
    print(f"reloadscope: error: {message}", file=sys.stderr)
    return 2
