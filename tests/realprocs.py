"""Shared by the tests that drive real hot-reload systems in long-running processes
(tests/test_streamlit.py, tests/test_watchdog.py): the CLI from this worktree, bounded waits,
and a report's stale entries by module."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scenario import SRC


def env(*path: str, **extra: str) -> dict[str, str]:
    """The environment of the CLI and the targets: reloadscope from this worktree's src (then
    ``path``)."""
    e = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", **extra)
    e["PYTHONPATH"] = os.pathsep.join([SRC, *path])
    e.pop("PYTHONBREAKPOINT", None)
    return e


def report(pid: int, timeout: float = 240) -> dict[str, Any]:
    """``reloadscope report PID --json`` from this interpreter (gdb injects the agent, unless one
    already listens there)."""
    out = subprocess.run(
        [sys.executable, "-m", "reloadscope", "report", str(pid), "--json"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(),
    )
    assert out.returncode == 0, f"report {pid} failed ({out.returncode}):\n{out.stderr}"
    doc = json.loads(out.stdout)
    assert doc["process"]["pid"] == pid, doc["process"]
    return doc


def wait_for(what: str, cond: Callable[[], Any], timeout: float, alive: Callable[[], str]) -> Any:
    """Poll ``cond`` until it gives something true; ``alive`` returns "" while the target runs,
    else why it does not (then fail at once)."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        dead = alive()
        assert not dead, f"waiting for {what}: {dead}"
        assert time.monotonic() < deadline, f"gave up waiting for {what} after {timeout} s"
        time.sleep(0.05)


def read_json(path: Path) -> Any:
    """The JSON a target wrote atomically at ``path``, or None while there is none."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def stop(p: subprocess.Popen[Any]) -> None:
    """Kill a target started with ``start_new_session=True`` and everything in its group."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    p.wait(timeout=60)


def module(doc: dict[str, Any], name: str) -> dict[str, Any] | None:
    for m in doc["modules"]:
        if m["name"] == name:
            return m
    return None


def stale(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    m = module(doc, name)
    return list(m["stale"]) if m else []


def entries_by_id(doc: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """object id -> the stale entry whose paths lead to it."""
    return {
        p["object_id"]: s
        for m in doc["modules"]
        for s in m["stale"]
        for p in s["paths"]
        if p.get("object_id") is not None
    }


def summary(doc: dict[str, Any]) -> str:
    """A short text of what a report found, for assertion messages."""
    lines = [
        f"{m['name']}: {s['kind']} {s['qualname']} gen={s['generation']} "
        f"ev={(s.get('evidence') or {}).get('kind')} paths={[p['text'] for p in s['paths']]}"
        for m in doc["modules"]
        for s in m["stale"]
    ]
    lines += [f"blind spot: {b}" for b in doc["scan"].get("blind_spots", [])]
    return "\n".join(lines) or "(nothing stale)"


def assert_evidence(entry: dict[str, Any], mode: str) -> None:
    ev = entry.get("evidence")
    assert isinstance(ev, dict) and ev.get("kind") and ev.get("text"), entry
    if mode == "late":
        assert entry["generation"] is None, f"late, yet a generation is claimed: {entry}"
        assert ev["kind"] != "recorded", f"nothing was recorded, yet evidence says so: {entry}"
    else:
        assert entry["generation"] == 0, f"recorded from the start: generation 0 expected: {entry}"
