"""``%load_ext reloadscope`` for real (SPEC: "IPython and Jupyter").

A real kernel (ipykernel over jupyter_client, ``kernel_driver.Kernel``) on every CPython found
here whose test-extras venv has IPython and ipykernel (``targets.python_with``): real
``%autoreload 2`` reloads a real module file that the test edits. IPython 9 (3.11+) patches a
body-only edit in place (deduperreload: no import at all); IPython 8, all 3.10 has, reloads it
(superreload). One kernel session per version runs every behaviour in order, to keep the time
small. Then real terminal IPython in tmux: the warning, and ``%reloadscope --ui`` opening the
UI and quitting back to the prompt. Also: a Report as a cell's value (text and HTML, escaped),
and the extension's after-cell signal (the recorder tells reloads and in-place patches apart
from nothing, cheaply).

The multi-version test is deselected in .ci/run's reruns on 3.14/3.15 (the first run already
ran every version as a child), like test_reloaders.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import reloadscope
from scenario import SRC, Scenario, python_versions, pythons, version_id
from targets import RUNNING, python_with
from test_safety import HOSTILE

VERSIONS = list(python_versions())

MOD_V1 = """\
def f():
    return "f v1"

def old_helper():
    return "old_helper v1"

HANDLERS = {"a": lambda: "handler v1"}

class Widget:
    def render(self):
        return "render v1"
"""

# Bodies changed, old_helper removed: IPython 9's deduperreload patches this in place.
MOD_V2 = """\
def f():
    return "f v2"

HANDLERS = {"a": lambda: "handler v2"}

class Widget:
    def render(self):
        return "render v2"
"""

MOD_V3 = MOD_V2.replace("v2", "v3")
CLEAN_V1 = "def g():\n    return 1\n"
CLEAN_V2 = "def g():\n    return 2\n"

# Counts the scans the extension makes: it calls reloadscope.scan, looked up when it scans.
COUNT_SCANS = """\
import os, threading, reloadscope, reloadscope.agent as agent
SCANS = []
_real_scan = reloadscope.scan
def _counted_scan(**kw):
    SCANS.append(1)
    return _real_scan(**kw)
reloadscope.scan = _counted_scan
print(json.dumps({"pid": os.getpid(), "socket": agent._server.path}))
"""

STATE = """\
import json, threading
print(json.dumps({
    "scans": len(SCANS),
    "recording": agent.recorder() is not None,
    "listening": agent.listening(),
    "socket": os.path.exists(SOCKET),
    "threads": sorted(t.name for t in threading.enumerate() if t.name.startswith("reloadscope")),
    "hooks": [c.__qualname__ for cs in get_ipython().events.callbacks.values() for c in cs
              if "reloadscope" in (getattr(c, "__module__", "") or "")],
    "magic": "reloadscope" in get_ipython().magics_manager.magics["line"],
}))
"""


def write_future(path: Path, text: str, bump: float = 10) -> None:
    """Rewrite a module file with an mtime clearly after the one autoreload remembered."""
    path.write_text(text)
    t = time.time() + bump
    os.utime(path, (t, t))


def listening_pids() -> set[int]:
    """PIDs that ``reloadscope ps`` says have an agent listening (what attach would find)."""
    out = subprocess.run(
        [sys.executable, "-m", "reloadscope", "ps", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=SRC),
    )
    assert out.returncode == 0, out.stderr
    return {p["pid"] for p in json.loads(out.stdout) if p["agent"]}


FIXTURE = Path(__file__).parent / "fixtures" / "snapshot-v1.rsnap"


def test_report_renders_as_a_cell_value_escaped():
    pretty = pytest.importorskip("IPython.lib.pretty")
    doc = reloadscope.load(FIXTURE).to_json()
    m = doc["modules"][0]
    m["name"] = "app<script>\x1b]52;c;eA==\x07"
    m["stale"][0]["qualname"] = "<b>greet</b>\x9b2J"
    m["stale"][0]["paths"][0]["text"] = "app.main.REG['<i>&\\'\u202e']"
    m["stale"][0]["paths"][0]["hint"] = "drop it & <reload>"
    report = reloadscope.Report.from_json(doc)

    assert pretty.pretty(report) == report.text().rstrip("\n")
    assert "app<script>\\x1b]52;c;eA==\\x07" in pretty.pretty(report)  # inert, as text() is

    page = report._repr_html_()
    assert page.startswith('<div class="reloadscope-report">') and "<table>" in page
    assert "<b>app&lt;script&gt;\\x1b]52;c;eA==\\x07</b>" in page, page
    assert "<code>&lt;b&gt;greet&lt;/b&gt;\\x9b2J</code>" in page, page
    assert "<code>app.main.REG[&#x27;&lt;i&gt;&amp;\\&#x27;\\u202e&#x27;]</code>" in page, page
    assert "drop it &amp; &lt;reload&gt;" in page, page
    assert not any(c in page for c in "\x1b\x07\x9b\u202e"), page
    for tag in ("<script", "<i>", "<b>greet", "<reload"):
        assert tag not in page, tag


SIGNAL = r'''
import importlib, sys, rs
import reloadscope.agent as agent
from reloadscope.agent.recorder import patched_modules
rs.write("sig_a.py", """
def f():
    return 1
class C:
    def m(self):
        return 1
    @staticmethod
    def s():
        return 1
    @property
    def p(self):
        return 1
""")
rs.write("sig_b.py", "def g():\n    return 1\n")
rs.write("sig_hostile.py", HOSTILE)
rec = agent.install()
import sig_a, sig_hostile
got = {}
def step(name, change):
    before, reloads = rec.code_state(), rec.reloads
    change()
    got[name] = [patched_modules(before, rec.code_state()), rec.reloads - reloads]
new_code = (lambda: 2).__code__
calls = list(sig_hostile.CALLS)
step("nothing", lambda: None)
got["hostile_calls"] = sig_hostile.CALLS[len(calls):]
got["watched"] = sorted(n for n in rec.code_state() if n.startswith(("sig_", "json", "reload")))
step("function code", lambda: setattr(sig_a.f, "__code__", new_code))
step("method code", lambda: setattr(sig_a.C.m, "__code__", new_code))
step("staticmethod code", lambda: setattr(sig_a.C.__dict__["s"].__func__, "__code__", new_code))
step("property code", lambda: setattr(sig_a.C.p.fget, "__code__", new_code))
step("removed", lambda: delattr(sig_a, "f"))
step("imported", lambda: importlib.import_module("sig_b"))
step("reloaded", lambda: importlib.reload(sys.modules["sig_b"]))
def reimport():
    del sys.modules["sig_b"]
    importlib.import_module("sig_b")
step("reimported", reimport)
step("not a module in sys.modules", lambda: sys.modules.__setitem__("odd", sig_hostile.Hostile()))
rs.report({"modules": []}, **got)
'''


@pytest.mark.parametrize("python", pythons(), ids=version_id)
def test_recorder_tells_reloads_and_in_place_patches(tmp_path, python):
    """The extension's cheap after-cell signal: ``Recorder.reloads`` counts reloads and
    re-imports; ``code_state`` changes when code is patched in place (no import at all), and
    reads a hostile module without calling it."""
    r = Scenario(tmp_path, python).run(SIGNAL.replace("HOSTILE", repr(HOSTILE)))
    got = r.extra
    assert got.pop("hostile_calls") == [], got
    # The user's modules, not the standard library's nor reloadscope's own.
    assert got.pop("watched") == ["sig_a", "sig_hostile"], got
    assert got == {
        "nothing": [[], 0],
        "function code": [["sig_a"], 0],
        "method code": [["sig_a"], 0],
        "staticmethod code": [["sig_a"], 0],
        "property code": [["sig_a"], 0],
        "removed": [["sig_a"], 0],
        "imported": [[], 0],
        "reloaded": [["sig_b"], 1],
        "reimported": [["sig_b"], 1],
        "not a module in sys.modules": [[], 0],
    }, got


@pytest.mark.parametrize("version", VERSIONS)
def test_kernel_extension(tmp_path, version):
    pytest.importorskip("jupyter_client")  # the client, in this process
    python = python_with(version, "ipython", "ipykernel")
    from kernel_driver import Kernel

    mod, clean = tmp_path / "mod.py", tmp_path / "clean.py"
    mod.write_text(MOD_V1)
    clean.write_text(CLEAN_V1)
    with Kernel(tmp_path, python) as k:
        ipython_major = int(
            k.run("import IPython; print(IPython.__version__)").stdout.split(".")[0]
        )

        def state() -> dict:
            cell = k.run(STATE)
            assert not cell.stderr, cell.stderr
            return cell.json()

        k.run("%load_ext autoreload\n%autoreload 2")
        loaded = k.run("%load_ext reloadscope")
        assert loaded.stdout == loaded.stderr == "", loaded.stderr
        k.run("%load_ext reloadscope")  # again: changes nothing
        started = k.run("import json\n" + COUNT_SCANS).json()
        pid = started["pid"]
        k.run(f"SOCKET = {started['socket']!r}")
        s = state()
        assert s["recording"] and s["listening"] and s["socket"], s
        assert s["threads"] == ["reloadscope-agent"], s
        assert s["hooks"] == ["_Extension.post_run_cell"] and s["magic"], s
        assert pid in listening_pids()  # `reloadscope attach PID` finds the kernel

        quiet = k.run("import mod, clean\nkeep = [mod.old_helper]\nold = mod.HANDLERS")
        assert quiet.stdout == quiet.stderr == ""
        k.run("pass")  # autoreload learns the modules' sources at the check after the import

        # A reload that leaves nothing stale: scanned, nothing printed.
        write_future(clean, CLEAN_V2)
        cell = k.run("clean.g()")
        assert cell.result == "2" and cell.stdout == cell.stderr == "", cell.stderr
        assert state()["scans"] == 1

        # A cell with no reload (defining functions is none): no scan, nothing printed.
        cell = k.run("def h():\n    return 2\nclass K:\n    pass\nh()")
        assert cell.result == "2" and cell.stdout == cell.stderr == ""
        assert state()["scans"] == 1

        # %autoreload reloads mod (IPython 9: patches it in place): one warning in that cell.
        write_future(mod, MOD_V2)
        cell = k.run("print(mod.f())")
        assert cell.stdout == "f v2\n"
        lines = cell.stderr.splitlines()
        assert lines[0] == "reloadscope: 2 stale objects after this cell's reload:", cell.stderr
        assert sorted(lines[1:3]) == [
            "  function <lambda> (mod), held by __main__.old['a']",
            "  function old_helper (mod), held by __main__.keep[0]",
        ], cell.stderr
        assert lines[3:] == [], cell.stderr  # all named: no "%reloadscope for the rest"
        doc = json.loads(k.run("%reloadscope --json").stdout)
        (m,) = [m for m in doc["modules"] if m["name"] == "mod"]
        # IPython 9 patched in place (no generation began); IPython 8 reloaded (generation 1).
        assert m["current_generation"] == (0 if ipython_major >= 9 else 1), m
        assert state()["scans"] == 3

        # Any other reload in a cell, here importlib.reload: only the new stale objects (an
        # instance of the old class, whose qualified name needs escaping) are warned about.
        cell = k.run(
            "import importlib\n"
            "w = mod.Widget()\n"
            "mod.Widget.__qualname__ = 'Widget<b>\\x1b[31m'\n"
            "importlib.reload(mod)\n"
            "None"
        )
        lines = cell.stderr.splitlines()
        assert re.fullmatch(
            r"reloadscope: (\d+) new stale objects? after this cell's reload \((\d+) in all\):",
            lines[0],
        ), cell.stderr
        assert "  instance Widget<b>\\x1b[31m (mod), held by __main__.w" in lines, cell.stderr
        assert "old_helper" not in cell.stderr and "\x1b" not in cell.stderr, cell.stderr
        assert lines[-1] == "%reloadscope for the rest", cell.stderr

        # %reloadscope: the readable report; --json: the report document and nothing else.
        cell = k.run("%reloadscope")
        assert cell.stdout.startswith(f"reloadscope report: pid {pid}, Python "), cell.stdout
        assert "held by __main__.keep[0]" in cell.stdout and "__main__.w" in cell.stdout
        assert cell.stderr == "" and cell.result is None
        cell = k.run("%reloadscope --json")
        assert cell.stderr == "" and cell.result is None  # printed once, not shown again
        doc = json.loads(cell.stdout)
        got = k.run("d = %reloadscope --json\nprint(isinstance(d, dict), d['format'])")
        assert got.stdout.splitlines()[-1] == "True reloadscope-report", got.stdout
        assert doc["format"] == "reloadscope-report" and doc["process"]["pid"] == pid
        texts = {p["text"] for m in doc["modules"] for s in m["stale"] for p in s["paths"]}
        assert {"__main__.keep[0]", "__main__.old['a']", "__main__.w"} <= texts, texts

        # Bad arguments: one line, no traceback.  --ui without a terminal: one line, the PID.
        cell = k.run("%reloadscope --bogus")
        assert cell.error is None and cell.stdout == "", cell.stdout
        assert len(cell.stderr.splitlines()) == 1, cell.stderr
        assert cell.stderr.startswith("reloadscope: error:") and "--bogus" in cell.stderr
        cell = k.run("%reloadscope --ui")
        assert cell.stdout.splitlines() == [
            f"reloadscope: no terminal in this kernel; run `reloadscope attach {pid}` from a "
            "terminal"
        ], cell.stdout

        # A Report as a cell's value: text (the readable summary) and HTML, escaped.
        cell = k.run("reloadscope.scan()")
        assert cell.result is not None and cell.result.startswith("reloadscope report: pid")
        assert "held by __main__.keep[0]" in cell.result, cell.result
        page = cell.data["text/html"]
        assert "<table>" in page and "<code>__main__.keep[0]</code>" in page, page
        assert "<code>__main__.old[&#x27;a&#x27;]</code>" in page, page
        assert "<code>Widget&lt;b&gt;\\x1b[31m</code>" in page, page
        assert "<b>\x1b" not in page and "\x1b" not in page, page

        # %unload_ext: no hook, no magic, no agent (no thread, no socket); reloads pass quietly.
        unloaded = k.run("%unload_ext reloadscope")
        assert unloaded.stdout == unloaded.stderr == ""
        s = state()
        assert not (s["recording"] or s["listening"] or s["socket"]), s
        assert s["threads"] == [] and s["hooks"] == [] and not s["magic"], s
        assert pid not in listening_pids()
        write_future(mod, MOD_V3, bump=20)
        cell = k.run("keep.append(mod.f)\nprint(mod.f())")
        assert cell.stdout == "f v3\n" and cell.stderr == "", cell.stderr
        assert state()["scans"] == s["scans"]
        gone = k.run("%reloadscope", check=False)
        assert "UsageError: Line magic function `%reloadscope` not found" in gone.stderr + str(
            gone.error
        ), (gone.stderr, gone.error)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_terminal_ipython(tmp_path):
    pytest.importorskip("IPython")
    from test_terminal import Tmux

    (tmp_path / "mod.py").write_text(MOD_V1)
    ipython = f"env IPYTHONDIR={tmp_path / '.ipython'} {sys.executable} -m IPython"
    t = Tmux(f"rs-{os.getpid()}-ipython", f"{ipython} --no-banner --colors=nocolor", tmp_path)
    try:

        def cell(line: str) -> None:
            t.keys("-l", line)
            t.keys("Enter")

        t.wait_for("In [1]:")
        cell("%load_ext autoreload")
        cell("%autoreload 2")
        cell("%load_ext reloadscope")
        cell("import mod; keep = [mod.old_helper]")
        cell("pass")
        t.wait_for("In [6]:")
        write_future(tmp_path / "mod.py", MOD_V2)
        cell("mod.f()")
        screen = t.wait_for("function old_helper (mod), held by __main__.keep[0]")
        assert "reloadscope: 2 stale objects after this cell's reload:" in screen, screen
        assert "for the rest" not in screen, screen  # both are named: there is no rest
        cell("%reloadscope --ui")
        # The UI, on the whole screen: its header says "this process (pid N)" while the first
        # scan loads, then "this process | pid N | ..." (a fast scan shows only the second).
        t.wait_for("reloadscope — this process | pid ")  # the UI's screen, not IPython's
        screen = t.wait_for("─ modules ─")
        assert "In [7]" not in screen, screen
        t.wait_for("old_helper")
        t.keys("q")
        t.wait_for("In [8]:")
        cell("print('BACK', 6 * 7)")
        t.wait_for("BACK 42")
    finally:
        t.close()


FIX_V1 = """\
import functools

RELEASE = (functools.__name__, 1)  # not a constant: autoreload reloads the whole module

class Base:
    def hello(self):
        return "hello"

class Greeter(Base):
    def hello(self):
        return "hello v1"

def greet():
    return "greet v1"
"""

# Greeter.hello now calls super(): its code needs a __class__ cell the old function has not,
# so autoreload's in-place update of the old class fails there (and leaves the rest undone).
FIX_V2 = (
    FIX_V1.replace(", 1)", ", 2)")
    .replace('"hello v1"', 'super().hello() + " v2"')
    .replace("greet v1", "greet v2")
)

SHOW = """\
def show():
    results = []
    for f in (greet, hello, g.hello, fixmod.greet, fixmod.Greeter().hello):
        try:
            results.append(f())
        except Exception as e:
            results.append(repr(e))
    print(json.dumps([os.getpid(), id(g), hello.__self__ is g, results]))
"""


def test_kernel_fix_after_autoreload(tmp_path):
    """``%autoreload 2`` reloads the module but cannot update its old objects (it stops at a
    method that now calls super()): an instance made before the edit, its bound method and a
    ``from mod import func`` copy run the old code.  ``%reloadscope --fix`` lists the changes
    and changes nothing; ``--fix --apply`` makes them run the new code, in the same kernel."""
    pytest.importorskip("jupyter_client")
    python = python_with(RUNNING, "ipython", "ipykernel")
    from kernel_driver import Kernel

    mod = tmp_path / "fixmod.py"
    mod.write_text(FIX_V1)
    with Kernel(tmp_path, python) as k:
        k.run("%load_ext autoreload\n%autoreload 2")
        k.run("%load_ext reloadscope")
        k.run("import json, os\n" + SHOW)
        k.run("import fixmod\nfrom fixmod import greet\ng = fixmod.Greeter()\nhello = g.hello")
        k.run("pass")  # autoreload learns the module's source at the check after the import
        pid, g_id, bound_to_g, results = k.run("show()").json()
        assert bound_to_g and results == [
            "greet v1",
            "hello v1",
            "hello v1",
            "greet v1",
            "hello v1",
        ]

        write_future(mod, FIX_V2)
        cell = k.run("show()")
        assert "fixmod" in cell.stderr  # autoreload's failure, and reloadscope's warning
        old = [pid, g_id, True, ["greet v1", "hello v1", "hello v1", "greet v2", "hello v2"]]
        assert cell.json() == old, cell.stderr  # reloaded, yet the old objects run old code

        cell = k.run("%reloadscope --fix")
        assert cell.result is None and cell.stderr == "", cell.stderr
        plan = cell.stdout
        for line in (
            "__main__.greet = fixmod.greet",
            "__main__.g.__class__ = fixmod.Greeter",
            "__main__.hello = MethodType(fixmod.Greeter.hello, __main__.hello.__self__)",
            "%reloadscope --fix --apply carries them out",
        ):
            assert line in plan, plan
        assert k.run("show()").json() == old  # the plan changed nothing

        cell = k.run("%reloadscope --fix --apply")
        assert cell.result is None and cell.stderr == "", cell.stderr  # no reload warning
        assert cell.stdout.startswith("Applied "), cell.stdout
        assert "Nothing stale remains." in cell.stdout, cell.stdout
        new = [pid, g_id, True, ["greet v2", "hello v2", "hello v2", "greet v2", "hello v2"]]
        assert k.run("show()").json() == new  # same kernel, same instance, new code

        got = k.run("d = %reloadscope --fix --json\nprint(d['format'], d['changes'])")
        assert got.stdout.splitlines()[-1] == "reloadscope-fix []", got.stdout
        got = k.run(
            "r = %reloadscope --fix --apply --json\nprint(r['format'], r['result']['remains'])"
        )
        assert got.stdout.splitlines()[-1] == "reloadscope-fix []", got.stdout

        for bad in ("--apply", "--fix --ui", "--fix --fix", "--json --remove-leftovers"):
            cell = k.run(f"%reloadscope {bad}")
            assert cell.error is None and cell.stdout == "", (bad, cell.stdout)
            assert cell.stderr.startswith("reloadscope: error:"), (bad, cell.stderr)
            assert len(cell.stderr.splitlines()) == 1, (bad, cell.stderr)
