"""The scan never runs a user-defined dunder (issue 21, item 6): a reloaded module whose class
has a metaclass with ``__hash__``, ``__eq__``, ``__repr__``, ``__instancecheck__``,
``__getattribute__``... and instances whose class overrides the same, each recording its call
and raising.  Scanned late (no recording: the injected agent's case) and with recording, in
process and through ``reloadscope report PID``, on every CPython: no call is recorded, the
report does not fail, and the stale objects are found."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from scenario import SRC, pythons, run_marked, version_id

HOSTILE = r"""
ARMED = False
CALLS = []
def _note(what):
    CALLS.append(what)
    raise RuntimeError("user code ran: " + what)
class Meta(type):
    def __hash__(cls): _note("Meta.__hash__")
    def __eq__(cls, other): _note("Meta.__eq__")
    def __ne__(cls, other): _note("Meta.__ne__")
    def __repr__(cls): _note("Meta.__repr__")
    def __str__(cls): _note("Meta.__str__")
    def __bool__(cls): _note("Meta.__bool__")
    def __len__(cls): _note("Meta.__len__")
    def __instancecheck__(cls, x): _note("Meta.__instancecheck__")
    def __subclasscheck__(cls, x): _note("Meta.__subclasscheck__")
    def __getattr__(cls, n): _note("Meta.__getattr__ " + n)
    def __dir__(cls): _note("Meta.__dir__")
    def __sizeof__(cls): _note("Meta.__sizeof__")
    def __getattribute__(cls, n):
        if ARMED:
            CALLS.append("Meta.__getattribute__ " + n)
        return type.__getattribute__(cls, n)
class Thing(metaclass=Meta):
    def __init__(self):
        object.__setattr__(self, "payload", [1, 2, 3])
    def __hash__(self): _note("Thing.__hash__")
    def __eq__(self, other): _note("Thing.__eq__")
    def __repr__(self): _note("Thing.__repr__")
    def __bool__(self): _note("Thing.__bool__")
    def __len__(self): _note("Thing.__len__")
    def __getattr__(self, n): _note("Thing.__getattr__ " + n)
    def __sizeof__(self): _note("Thing.__sizeof__")
    def __setattr__(self, n, v): _note("Thing.__setattr__")
    def __getattribute__(self, n):
        if ARMED:
            CALLS.append("Thing.__getattribute__ " + n)
        return object.__getattribute__(self, n)
    @property
    def prop(self): _note("Thing.prop")
    def run(self):
        return "v1"
class Sub(Thing):
    pass
def func():
    return "v1"
"""

# Keeps old objects of every kind, edits the file and reloads it; then scans in process
# ("late" or "recording"), or waits to be reported on ("wait"), printing the calls recorded.
MAIN = r"""
import importlib, json, os, sys, time
sys.path.insert(0, os.getcwd())
mode = sys.argv[1]
if mode != "wait":
    sys.path.insert(0, sys.argv[2])
if mode == "recording":
    import reloadscope
    reloadscope.install(listen=False)
import hostile
keep = [hostile.Thing(), hostile.Sub(), hostile.func, hostile.Thing, hostile.Thing().run,
        {"k": hostile.Sub()}, {hostile.func: 1}]
with open("hostile.py") as fh:
    src = fh.read()
with open("hostile.py", "w") as fh:
    fh.write(src.replace('"v1"', '"v2"'))
t = os.path.getmtime("hostile.py") + 5
os.utime("hostile.py", (t, t))
importlib.reload(hostile)
if mode == "wait":
    hostile.ARMED = True
    print("ready", flush=True)
    for _ in range(6000):
        time.sleep(0.01)
        if os.path.exists("done"):
            break
    hostile.ARMED = False
    print(json.dumps(hostile.CALLS), flush=True)
    raise SystemExit
import reloadscope
hostile.ARMED = True
try:
    doc = reloadscope.scan().to_json()
    error = None
except BaseException as e:
    doc, error = None, repr(e)
hostile.ARMED = False
print("@@" + json.dumps({"calls": hostile.CALLS, "error": error, "doc": doc}))
"""


def stale_names(doc: dict) -> set[tuple[str, str]]:
    return {
        (e["qualname"], e["kind"])
        for m in doc["modules"]
        if m["name"] == "hostile"
        for e in m["stale"]
    }


# What must be found whichever way the scan learnt of the reload.
EXPECTED = {
    ("Thing", "class"),
    ("Thing", "instance"),
    ("Thing.run", "function"),
    ("func", "function"),
}


@pytest.fixture(params=pythons(), ids=version_id)
def python(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.mark.parametrize("mode", ["late", "recording"])
def test_a_scan_in_process_runs_no_user_dunder(python, tmp_path, mode):
    (tmp_path / "hostile.py").write_text(HOSTILE)
    (tmp_path / "main.py").write_text(MAIN)
    got = run_marked(python, ["main.py", mode, SRC], tmp_path)
    assert got["error"] is None, got["error"]
    assert got["calls"] == []
    assert stale_names(got["doc"]) >= EXPECTED, stale_names(got["doc"])


@pytest.mark.skipif(
    subprocess.run(["which", "gdb"], capture_output=True).returncode != 0,
    reason="gdb is not installed",
)
def test_a_report_through_the_cli_runs_no_user_dunder(python, tmp_path):
    (tmp_path / "hostile.py").write_text(HOSTILE)
    (tmp_path / "main.py").write_text(MAIN)
    target = subprocess.Popen(
        [python, "main.py", "wait"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
    )
    try:
        assert target.stdout is not None and target.stdout.readline().strip() == "ready"
        out = subprocess.run(
            [sys.executable, "-m", "reloadscope", "report", str(target.pid), "--json"],
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, PYTHONPATH=SRC),
        )
        assert out.returncode == 0, out.stderr
        assert stale_names(json.loads(out.stdout)) >= EXPECTED
        (tmp_path / "done").write_text("")
        assert json.loads(target.stdout.readline()) == []
        assert target.wait(timeout=30) == 0
    finally:
        if target.poll() is None:
            target.kill()
            target.wait()
