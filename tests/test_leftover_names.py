"""A function deleted from the file but still bound under its old name (plain
``importlib.reload`` always leaves it): found late when the module provably ran again, said as
a blind spot when nothing shows it did, never a false positive for a def deleted from a file
that never ran again (issue 21, item 1).  Every CPython, late and recording."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scenario import SRC, Scenario, pythons, version_id

V1 = 'def func():\n    return "v1"\n\ndef removed():\n    return "v1"\n'
V2 = 'def func():\n    return "v2"\n'


@pytest.fixture(params=pythons(), ids=version_id)
def scenario(request: pytest.FixtureRequest, tmp_path: Path) -> Scenario:
    return Scenario(tmp_path, request.param)


def run(scenario: Scenario, *, recording: bool, keep_func: bool, reload: bool = True):
    scenario.write("m3.py", V1)
    return scenario.run(f"""
        import importlib, reloadscope, rs
        if {recording}:
            reloadscope.install(listen=False)
        import m3
        keep = [m3.removed]
        if {keep_func}:
            keep.append(m3.func)
        if {reload}:
            rs.edit(m3, {V2!r})
        else:
            rs.write("m3.py", {V2.replace("v2", "v1")!r})
        rs.report()
    """)


def stale_in(r, module: str) -> list[dict]:
    """The module's stale entries; none when the report does not list the module at all."""
    return r.stale(module) if module in [m["name"] for m in r.doc["modules"]] else []


@pytest.mark.parametrize("recording", [False, True], ids=["late", "recording"])
def test_a_deleted_function_is_found_when_the_module_provably_ran_again(scenario, recording):
    r = run(scenario, recording=recording, keep_func=True)
    entry = r.one("m3", kind="function", qualname="removed")
    assert sorted(r.texts(entry)) == ["__main__.keep[0]", "m3.removed"]
    assert entry["evidence"]["kind"] == ("recorded" if recording else "leftover-name")
    assert r.module("m3")["leftover_names"] == ["removed"]
    r.one("m3", kind="function", qualname="func")  # the old one, kept in keep[1]
    r.assert_paths_evaluate()


def test_a_deleted_function_with_nothing_else_old_is_a_blind_spot_late(scenario):
    # The same namespace and file result from deleting a def that never ran again: without
    # another old object of the module, a late scan cannot tell which, and says so.
    r = run(scenario, recording=False, keep_func=False)
    assert stale_in(r, "m3") == []
    spots = [s for s in r.doc["scan"].get("blind_spots", []) if s.startswith("m3:")]
    assert len(spots) == 1 and "(removed)" in spots[0], r.doc["scan"].get("blind_spots")


def test_recording_finds_it_alone(scenario):
    r = run(scenario, recording=True, keep_func=False)
    entry = r.one("m3", kind="function", qualname="removed")
    assert entry["generation"] == 0
    r.assert_paths_evaluate()


def test_a_def_deleted_from_a_file_that_never_ran_again_is_not_stale(scenario):
    # The file lost 'removed' (and nothing else changed) but was never reloaded: 'removed' is
    # the current execution's function.
    r = run(scenario, recording=False, keep_func=True, reload=False)
    assert stale_in(r, "m3") == []


LATE_TARGET = r"""
import importlib, os, signal, sys, time
sys.path.insert(0, os.getcwd())
def write(text, bump):
    with open("m3.py", "w") as fh:
        fh.write(text)
    t = time.time() + bump
    os.utime("m3.py", (t, t))
    importlib.invalidate_caches()
write(%(v1)r, 10)
import m3
keep = [m3.removed, m3.func]
write(%(v2)r, 20)
importlib.reload(m3)  # before any agent: 'removed' is a leftover, keep[1] an old func
n = [2]
def again(signum, frame):
    n[0] += 1
    write('def func():\n    return "v%%d"\n' %% n[0], 10 * n[0])
    importlib.reload(m3)
signal.signal(signal.SIGUSR1, again)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


@pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed")
def test_a_late_watch_does_not_call_a_leftover_new_when_recording_sees_the_next_reload(
    tmp_path,
):
    # The first scan of a late agent finds 'removed' by evidence (generation unknown); after
    # the next reload recording calls it generation 0 (the module as the agent found it).
    # It is the same object: not new, not gone.
    (tmp_path / "target.py").write_text(LATE_TARGET % {"v1": V1, "v2": V2})
    t = subprocess.Popen(
        [sys.executable, "target.py"], cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    w = None
    try:
        assert t.stdout is not None and t.stdout.readline().strip() == "ready"
        w = subprocess.Popen(
            [sys.executable, "-m", "reloadscope", "report", str(t.pid), "--watch", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONPATH=SRC),
        )
        assert w.stderr is not None
        header = w.stderr.readline()
        assert header.startswith("reloadscope: watching") and " 1 modules" not in header, header
        time.sleep(1)
        t.send_signal(signal.SIGUSR1)
        assert w.stdout is not None
        doc = json.loads(w.stdout.readline())
        (m3,) = [m for m in doc["modules"] if m["name"] == "m3"]
        removed = [s for s in m3["stale"] if s["qualname"] == "removed"]
        assert len(removed) == 1
        (change,) = [c for c in doc["changes"] if c["module"] == "m3"]
        assert change["new"] == 0 and change["gone"] == 0, change
    finally:
        for p in (w, t):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
