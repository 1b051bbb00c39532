"""TARGET arguments: a PID (a live process) or a snapshot file."""

from __future__ import annotations

from .errors import UserError

TYPE_CHECKING = False  # typing is not imported at run time: starting must stay cheap
if TYPE_CHECKING:
    from collections.abc import Callable

    from ..model import Report


def parse_pid(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise UserError(f"'{text}' is not a process ID (see 'reloadscope ps')")
    return int(text)


def scan_pid(
    pid: int, progress: Callable[[str], None] | None = None, *, collect: bool = True
) -> Report:
    """Attach to ``pid``, scan it (after ``gc.collect()`` there unless ``collect`` is false),
    detach; ``progress`` hears each step waited for."""
    from ..attach.client import AttachError
    from ..attach.session import Session

    try:
        with Session(pid, progress=progress) as s:
            return s.client.scan(collect=collect, progress=progress)
    except AttachError as e:
        raise UserError(str(e)) from None


def report_of(
    target: str, progress: Callable[[str], None] | None = None, *, collect: bool = True
) -> Report:
    """A PID's live report, a snapshot file's, or (``-``) the snapshot on standard input."""
    if target.isdigit():
        return scan_pid(parse_pid(target), progress, collect=collect)
    from ..snapshot import SnapshotError, load

    try:
        if target == "-":
            import sys

            return load("<stdin>", stream=sys.stdin.buffer)
        return load(target)
    except SnapshotError as e:
        raise UserError(str(e)) from None
