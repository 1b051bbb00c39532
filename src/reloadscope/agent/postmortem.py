"""The post-mortem snapshot: written when the process ends, normally or by an exception.

Two hooks, both removed again by ``disarm()``: an ``atexit`` handler that scans and writes the
file, and a ``sys.excepthook`` wrapper that notes the unhandled exception (then calls the
previous hook) so the file says how the process died.
"""

from __future__ import annotations

import atexit
import gc
import sys
from types import CodeType, FunctionType, MethodType, TracebackType

from . import snapfile

TYPE_CHECKING = False  # typing is not imported at run time: loading must stay cheap
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_state: dict[str, Any] = {}


def arm(path: str, scan: Callable[[], tuple[dict[str, Any], dict[str, dict[int, str]]]]) -> None:
    """Write a snapshot to ``path`` at exit (replaces an earlier arm)."""
    disarm()
    _state.update(path=path, scan=scan, exit=None, previous=sys.excepthook)
    sys.excepthook = _excepthook
    atexit.register(_at_exit)


def disarm() -> None:
    if not _state:
        return
    atexit.unregister(_at_exit)
    if sys.excepthook is _excepthook:
        sys.excepthook = _state["previous"]
    _state.clear()


def armed_path() -> str | None:
    return _state.get("path")


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    previous = _state.get("previous", sys.__excepthook__)
    if _state:
        try:
            import traceback

            _state["tb"] = tb  # the process is ending: its frames may stay alive until the scan
            _state["exit"] = {
                "how": "exception",
                "exception": traceback.format_exception_only(exc_type, exc)[-1].strip(),
                "traceback": [
                    line.rstrip("\n") for line in traceback.format_exception(exc_type, exc, tb)
                ],
            }
        except Exception:
            _state["exit"] = {"how": "exception", "exception": exc_type.__name__}
    previous(exc_type, exc, tb)


def _at_exit() -> None:
    if not _state:
        return
    try:
        report, sources = _state["scan"]()
        info = _state.get("exit") or {"how": "normal"}
        tb = _state.get("tb")
        if tb is not None:
            mark_traceback(report, tb)
        written = snapfile.write(_state["path"], snapfile.document(report, sources, info))
        sys.stderr.write(f"reloadscope: post-mortem snapshot written to {written}\n")
    except Exception as e:  # never raise into the exiting process
        try:
            sys.stderr.write(f"reloadscope: could not write the post-mortem snapshot: {e}\n")
        except Exception:
            pass


def mark_traceback(report: dict[str, Any], tb: TracebackType) -> None:
    """Mark the stale entries the crash touched (``"in_traceback": true``): a frame of the
    traceback ran its code, or held it in a local variable.  Objects are matched by the ids
    the entries' paths carry; nothing of the objects is called."""
    codes: set[int] = set()
    held: set[int] = set()
    t: TracebackType | None = tb
    while t is not None:
        frame = t.tb_frame
        codes.add(id(frame.f_code))
        held.add(id(frame))
        held.update(map(id, gc.get_referents(frame)))
        t = t.tb_next
    ids = {
        p.get("object_id")
        for m in report.get("modules", [])
        for e in m.get("stale", [])
        for p in e.get("paths", [])
    }
    ran: set[int] = set()
    for obj in gc.get_objects():
        if id(obj) in ids:
            fn = obj.__func__ if type(obj) is MethodType else obj
            code = fn.__code__ if type(fn) is FunctionType else obj
            if type(code) is CodeType and id(code) in codes:
                ran.add(id(obj))
    for m in report.get("modules", []):
        for e in m.get("stale", []):
            mine = {p.get("object_id") for p in e.get("paths", [])}
            if mine & ran or mine & held:
                e["in_traceback"] = True
