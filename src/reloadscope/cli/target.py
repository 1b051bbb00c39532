"""TARGET arguments: a PID (a live process) or a snapshot file."""

from __future__ import annotations

from ..model import Report
from ..snapshot import SnapshotError, load
from .errors import UserError


def parse_pid(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise UserError(f"'{text}' is not a process ID (see 'reloadscope ps')")
    return int(text)


def scan_pid(pid: int) -> Report:
    from ..attach.client import AttachError
    from ..attach.session import Session

    try:
        with Session(pid) as s:
            return s.client.scan()
    except AttachError as e:
        raise UserError(str(e)) from None


def report_of(target: str) -> Report:
    """A PID's live report, a snapshot file's, or (``-``) the snapshot on standard input."""
    if target.isdigit():
        return scan_pid(parse_pid(target))
    try:
        if target == "-":
            import sys

            return load("<stdin>", stream=sys.stdin.buffer)
        return load(target)
    except SnapshotError as e:
        raise UserError(str(e)) from None
