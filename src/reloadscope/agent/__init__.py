"""The part of reloadscope that runs inside the target process.

Standard library only, CPython 3.10+ syntax, and no import of the rest of reloadscope: it may be
loaded from reloadscope's files into an interpreter where reloadscope is not installed.
"""

from __future__ import annotations

import threading
from typing import Any

from .recorder import Recorder
from .scan import scan as _scan

__all__ = ["install", "recorder", "scan", "uninstall"]

_lock = threading.Lock()
_recorder: Recorder | None = None


def install() -> Recorder:
    """Start recording generations (idempotent); returns the recorder."""
    global _recorder
    with _lock:
        if _recorder is None:
            _recorder = Recorder()
        _recorder.install()
        return _recorder


def uninstall() -> None:
    """Stop recording; the finder leaves ``sys.meta_path`` and the records are dropped."""
    global _recorder
    with _lock:
        if _recorder is not None:
            _recorder.uninstall()
            _recorder = None


def recorder() -> Recorder | None:
    return _recorder


def scan(
    *, collect: bool = True, **budget: Any
) -> tuple[dict[str, Any], dict[str, dict[int, str]]]:
    """The report document of this process, and the recorded source texts."""
    return _scan(_recorder, collect=collect, **budget)
