"""reloadscope: find what ``importlib.reload`` left behind, and what holds it.

``import reloadscope`` loads no third-party package; the terminal UI's dependencies load only
when the UI does.
"""

from __future__ import annotations

from . import agent as _agent
from .model import Report, ReportError

__all__ = ["Report", "ReportError", "install", "scan", "uninstall"]
__version__ = "0.1.0"


def install(*, listen: bool = True, snapshot_on_exit: str | None = None) -> None:
    """Start recording reload generations in this process; calling it again changes nothing.

    ``listen`` and ``snapshot_on_exit`` are accepted for the attach and post-mortem features.
    """
    _agent.install()


def uninstall() -> None:
    """Stop recording; no thread, socket, file or import hook of reloadscope stays behind."""
    _agent.uninstall()


def scan(*, collect: bool = True, max_depth: int = 100, time_budget: float = 120.0) -> Report:
    """Analyse this process now (``collect=True`` runs ``gc.collect()`` first).

    The heap walk stops at ``max_depth`` steps from the roots or after ``time_budget`` seconds;
    the report then says ``scan.complete: false`` and what was not searched.
    """
    doc, sources = _agent.scan(collect=collect, max_depth=max_depth, time_budget=time_budget)
    return Report.from_json(doc, sources)
