"""``%load_ext reloadscope`` for real (SPEC: "IPython and Jupyter").

A Report as a cell's value (text and HTML, escaped). The extension's after-cell signal: the
recorder tells reloads and in-place patches apart from nothing, cheaply.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import reloadscope
from scenario import Scenario, pythons, version_id
from test_safety import HOSTILE

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
