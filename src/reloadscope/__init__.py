"""reloadscope: find what ``importlib.reload`` left behind, and what holds it.

``import reloadscope`` loads no third-party package; the terminal UI's dependencies load only
when the UI does.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing is not imported at run time: importing must stay cheap
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from .fixplan import FixPlan, FixResult
    from .model import Report, ReportError
    from .snapshot import SnapshotError

__all__ = [
    "FixPlan",
    "FixResult",
    "Report",
    "ReportError",
    "SnapshotError",
    "breakpoint",
    "fix",
    "install",
    "load",
    "load_ipython_extension",
    "scan",
    "snapshot",
    "uninstall",
    "unload_ipython_extension",
]
__version__ = "0.1.0"

ENV_SNAPSHOT_ON_EXIT = "RELOADSCOPE_SNAPSHOT_ON_EXIT"

# Loaded when first used, not by ``import reloadscope``: the command line starts without the
# agent, the model or the snapshot code (benchmarks/cli_start.py).
_LAZY = {
    "FixPlan": ("fixplan", "FixPlan"),
    "FixResult": ("fixplan", "FixResult"),
    "Report": ("model", "Report"),
    "ReportError": ("model", "ReportError"),
    "SnapshotError": ("snapshot", "SnapshotError"),
    "agent": ("agent", None),
    "model": ("model", None),
}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module_name, attribute = _LAZY[name]
    module = importlib.import_module(f"{__name__}.{module_name}")
    if attribute is None:
        return module
    value = getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


class _Package(type(sys)):  # type: ignore[misc]
    """This package's module.  Importing the submodule ``reloadscope.snapshot`` binds it as
    an attribute of its package, which would hide the function ``snapshot()`` below: it was
    always imported before that function was defined, now it comes when first used."""

    def __setattr__(self, name: str, value: object) -> None:
        if name == "snapshot" and isinstance(value, type(sys)):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def install(*, listen: bool = True, snapshot_on_exit: str | os.PathLike[str] | None = None) -> None:
    """Start recording reload generations in this process; calling it again changes nothing.

    With ``listen`` (the default), an agent thread answers ``reloadscope attach/report/snapshot
    PID`` from the same user over a Unix socket, with no injection needed.
    With ``snapshot_on_exit`` (or the environment variable ``RELOADSCOPE_SNAPSHOT_ON_EXIT``), a
    snapshot is written there when the process ends, normally or by an unhandled exception.
    """
    from . import agent as _agent
    from .agent import postmortem as _postmortem

    _agent.install()
    if listen:
        try:
            _agent.listen()
        except OSError as e:  # no usable runtime directory: recording still works
            import warnings

            warnings.warn(f"reloadscope: not listening for attach: {e}", stacklevel=2)
    target = (
        snapshot_on_exit if snapshot_on_exit is not None else os.environ.get(ENV_SNAPSHOT_ON_EXIT)
    )
    if target and _postmortem.armed_path() is None:
        _postmortem.arm(os.path.abspath(os.fspath(target)), _agent.scan)


def uninstall() -> None:
    """Stop recording; no thread, socket, file or hook of reloadscope stays behind."""
    from . import agent as _agent
    from .agent import postmortem as _postmortem

    _postmortem.disarm()
    _agent.uninstall()


def scan(*, collect: bool = True, max_depth: int = 100, time_budget: float = 120.0) -> Report:
    """Analyse this process now (``collect=True`` runs ``gc.collect()`` first).

    The heap walk stops at ``max_depth`` steps from the roots or after ``time_budget`` seconds;
    the report then says ``scan.complete: false`` and what was not searched.
    """
    from . import agent as _agent
    from .model import Report

    doc, sources = _agent.scan(collect=collect, max_depth=max_depth, time_budget=time_budget)
    return Report.from_json(doc, sources, own=True)


def fix(
    *,
    apply: bool = False,
    remove_leftovers: bool = False,
    dry_run: bool | None = None,
    only: list[str] | None = None,
) -> FixPlan:
    """The repair plan of this process: for each stale object, the change that makes its
    holder point at the current object, or why it cannot (nothing is changed).  With
    ``apply=True`` (or ``dry_run=False``) the plan is carried out and the process scanned
    again: the result (a ``FixResult``, itself a plan) says what was applied and what was not,
    and why, and what is gone and what remains.  ``only``: the keys (``Change.key``) of the
    changes to carry out, those reviewed in an earlier plan.  Printable; ``.to_json()`` gives
    the plan document.  No code of the program runs while planning or applying.
    """
    from .agent import repair
    from .fixplan import FixPlan, FixResult

    if dry_run is not None:
        apply = not dry_run
    rec = _recorder()
    if not apply:
        return FixPlan.from_json(repair.plan(rec, remove_leftovers=remove_leftovers))
    doc = repair.apply(rec, remove_leftovers=remove_leftovers, only=only)
    return FixResult.from_json(doc)


def _recorder() -> Any:
    from . import agent as _agent

    return _agent.recorder()


def snapshot(path: str | os.PathLike[str] | None = None) -> Path:
    """Scan this process and write a snapshot file (default: ``reloadscope-PID-TIME.rsnap`` in
    the current directory); returns its path."""
    from .snapshot import write

    return write(scan(), path)


def load(path: str | os.PathLike[str]) -> Report:
    """Read a snapshot file; anything else raises ``SnapshotError``."""
    from .snapshot import load as _load

    return _load(path)


def breakpoint(*args: object, **kwargs: object) -> None:
    """The terminal UI on this process, right here; returns when the user quits.

    ``PYTHONBREAKPOINT=reloadscope.breakpoint`` makes the builtin ``breakpoint()`` do this.
    Without a terminal it writes a snapshot and says where, instead of waiting for keys.
    """
    import asyncio
    import subprocess
    import sys
    import threading
    from pathlib import Path

    from . import agent as _agent

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        path = snapshot()
        print(f"reloadscope: no terminal here; snapshot written to {path}", file=sys.stderr)
        return
    try:
        asyncio.get_running_loop()
        loop_running = True
    except RuntimeError:
        loop_running = False
    if threading.current_thread() is threading.main_thread() and not loop_running:
        from .ui.app import ReloadScopeApp
        from .ui.source import ProcessSource

        ReloadScopeApp(ProcessSource()).run()
        return
    # Textual needs the main thread and its own event loop: run the UI as a child process on
    # this terminal, talking to this process's agent (its thread answers while we wait).
    was_listening = _agent.listening()
    _agent.install()
    _agent.listen()
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    env.pop("PYTHONBREAKPOINT", None)
    try:
        subprocess.call([sys.executable, "-m", "reloadscope", "attach", str(os.getpid())], env=env)
    finally:
        if not was_listening:
            _agent.stop_listening()


def load_ipython_extension(ip: object) -> None:
    """``%load_ext reloadscope`` in IPython or Jupyter: ``install()``, a warning after each cell
    whose reload left stale objects, and the ``%reloadscope`` magic."""
    from .integrations.ipython import load_ipython_extension as load

    load(ip)


def unload_ipython_extension(ip: object) -> None:
    """``%unload_ext reloadscope``: the magic and the warning go, then ``uninstall()``."""
    from .integrations.ipython import unload_ipython_extension as unload

    unload(ip)
