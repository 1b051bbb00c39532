"""Repeated scans of one process take the cheap paths, and find what a first scan finds.

A scan judges one by one only the functions and classes that can be stale (the others are
passed over in bulk), and with recording on it keeps what it learnt about the libraries' code
for the next scan, which then looks only at code it has not seen.  These tests count what the
scans did (``Scan.functions_judged``, ``codes_indexed``, ``index_rebuilt``...), never how long
they took, and compare each rescan's report with that of a scan that kept nothing.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from scenario import Scenario


@pytest.fixture(params=["native", "python"])
def scenario(request: pytest.FixtureRequest, tmp_path: Path) -> Scenario:
    """A reload scenario whose scans use the native helper (when built), or the Python code
    (``RELOADSCOPE_NATIVE=0``): the index each keeps between scans is its own."""
    s = Scenario(tmp_path)
    if request.param == "python":
        s.run = functools.partial(s.run, env={"RELOADSCOPE_NATIVE": "0"})  # type: ignore[method-assign]
    return s


# The child's scans: the engine's Scan, whose counters say what each did.  ``same`` compares a
# rescan's report with a scan's that starts from nothing (``evidence.forget_index``).
SCANS = """
import json, reloadscope, rs
from reloadscope import agent
from reloadscope.agent import evidence
from reloadscope.agent.scan import Scan

def scan():
    s = Scan(agent.recorder(), collect=True)
    doc = s.run()[0]
    counts = {k: getattr(s, k) for k in (
        "functions_seen", "functions_judged", "codes_indexed", "index_rebuilt",
        "classes_seen", "classes_judged")}
    return doc, counts

def same_as_first(doc):
    evidence.forget_index()
    first, counts = scan()
    key = lambda d: json.dumps([d["modules"], d["scan"].get("blind_spots")], sort_keys=True)
    return key(doc) == key(first), counts
"""


def test_rescan_after_a_reload_looks_only_at_new_code(scenario: Scenario) -> None:
    scenario.write(
        "plug.py", "def greet(): return 'hello'\nclass Box:\n    def get(self): return 1\n"
    )
    scenario.write("consumer.py", "from plug import greet\nimport plug\nbox = plug.Box()\n")
    r = scenario.run(
        SCANS
        + """
agent.install()  # recording only: no listener thread importing modules meanwhile
import email.mime.text, decimal, json.decoder, xml.dom.minidom, argparse, logging
import plug, consumer
_, one = scan()
# The first reload in a process loads what recording a reload needs (dis, hashlib...):
# libraries loaded, so the scan after it starts the index over.  The next one does not.
rs.edit(plug, "def greet(): return 'hey'\\nclass Box:\\n    def get(self): return 3\\n")
scan()
rs.edit(plug, "def greet(): return 'hi'\\nclass Box:\\n    def get(self): return 2\\n")
doc, two = scan()
equal, three = same_as_first(doc)
rs.report(doc, one=one, two=two, three=three, equal=equal)
"""
    )
    one, two, three = (r.doc["_extra"][k] for k in ("one", "two", "three"))
    assert r.doc["_extra"]["equal"], "the rescan's report differs from a first scan's"
    assert {(s["kind"], s["qualname"]) for s in r.stale("plug")} >= {
        ("function", "greet"),
        ("class", "Box"),
        ("instance", "Box"),
    }
    # The first scan and the one that kept nothing index every code object; the rescan only
    # what it had not seen (the reloaded module's, and code of no library module).
    assert one["index_rebuilt"] == 1 and three["index_rebuilt"] == 1
    assert two["index_rebuilt"] == 0
    assert one["codes_indexed"] > 2000
    assert two["codes_indexed"] < one["codes_indexed"] // 10
    for counts in (one, two, three):
        # Library functions at places compiled once are passed over in bulk, and so are the
        # functions no evidence can apply to (``Classifier.functions_worth_judging``): what
        # is judged one by one is the program's own (plug, consumer, this script's).
        assert 0 < counts["functions_judged"] < 40, counts
        # So are the classes of library modules, when no class dict holds a stale object.
        assert counts["classes_judged"] < counts["classes_seen"] // 4, counts


def test_a_library_loaded_since_starts_the_index_over(scenario: Scenario) -> None:
    scenario.write("plug.py", "def greet(): return 'hello'\n")
    r = scenario.run(
        SCANS
        + """
import sys
assert "xml.dom.minidom" not in sys.modules
agent.install()  # recording only: no listener thread importing modules meanwhile
import plug
_, one = scan()
import xml.dom.minidom
_, two = scan()
_, three = scan()
rs.report(None, one=one, two=two, three=three)
"""
    )
    one, two, three = (r.doc["_extra"][k] for k in ("one", "two", "three"))
    assert (one["index_rebuilt"], two["index_rebuilt"], three["index_rebuilt"]) == (1, 1, 0)


def test_a_library_compiled_again_is_found_by_a_rescan(scenario: Scenario) -> None:
    """A library module's file run again in its own namespace without the import system (no
    library load to see): its old function, still held, is found as an older compilation
    by the rescan, which sees a place compiled once before compiled again and starts over."""
    scenario.write("site-packages/libmod.py", "def helper():\n    return 1\n")
    scenario.write("consumer.py", "import libmod\nkept = libmod.helper\n")
    r = scenario.run(
        SCANS
        + """
import os, sys
sys.path.insert(0, os.path.abspath("site-packages"))
agent.install()  # recording only: no listener thread importing modules meanwhile
import libmod, consumer
doc, one = scan()
assert not doc["modules"], doc["modules"]
with open(libmod.__file__) as fh:
    exec(compile(fh.read(), libmod.__file__, "exec"), vars(libmod))
doc, two = scan()
equal, three = same_as_first(doc)
rs.report(doc, one=one, two=two, equal=equal)
"""
    )
    one, two = r.doc["_extra"]["one"], r.doc["_extra"]["two"]
    assert r.doc["_extra"]["equal"], "the rescan's report differs from a first scan's"
    assert (one["index_rebuilt"], two["index_rebuilt"]) == (1, 1)
    entry = r.one("libmod", kind="function", qualname="helper")
    assert entry["evidence"]["kind"] == "older-compilation"
    assert [p["text"] for p in entry["paths"]] == ["consumer.kept"]


def test_what_a_scan_keeps_goes_with_the_recording(scenario: Scenario) -> None:
    """What scans keep for the next one (the index, the files' compilations, which file names
    are a library's) is the recording's: uninstall() drops it (a removed agent keeps nothing
    in the process), and a forked child gets the index's lock free."""
    scenario.write("plug.py", "def greet(): return 'hello'\n")
    r = scenario.run(
        SCANS
        + """
import os, threading
reloadscope.install()
import plug
rs.edit(plug, "def greet(): return 'hi'\\n")
scan()
kept = evidence._INDEX[0] is not None and bool(evidence._COMPILED) and bool(evidence._LIBRARY_FILES)
with evidence._INDEX_LOCK:  # as a scan of the parent's holds it
    pid = os.fork()
    if pid == 0:
        os._exit(0 if evidence._INDEX_LOCK.acquire(False) else 1)
_, status = os.waitpid(pid, 0)
reloadscope.uninstall()
rs.report(kept=kept, child_lock_free=os.waitstatus_to_exitcode(status) == 0,
          after=evidence._INDEX[0] is None and not evidence._COMPILED
          and not evidence._LIBRARY_FILES)
"""
    )
    assert r.doc["_extra"] == {"kept": True, "child_lock_free": True, "after": True}


def test_a_file_edited_to_the_same_length_is_compiled_again_by_a_rescan(scenario: Scenario) -> None:
    """While recording, a scan keeps what each file's text compiles to for the next one, told
    by the text's length and hash (``ModuleSource.compiled``): an edit that keeps the length
    is compiled again.  What is kept adds a few objects a file to the heap, not one per code
    object."""
    scenario.write("plug.py", "def greet():\n    return 'one'\n")
    r = scenario.run(
        SCANS
        + """
import gc
agent.install()
import plug

def told():
    with open(plug.__file__) as fh:
        text = fh.read()
    return evidence._COMPILED[plug.__file__][0] == (len(text), hash(text))

scan()
first = told()
rs.write("plug.py", "def greet():\\n    return 'two'\\n")  # the same length, not reloaded
scan()
again = told()
kept, todo = set(), [evidence._COMPILED]
while todo:
    o = todo.pop()
    if gc.is_tracked(o) and id(o) not in kept and not isinstance(o, type):
        kept.add(id(o))
        todo.extend(gc.get_referents(o))
rs.report(None, first=first, again=again, kept=len(kept), files=len(evidence._COMPILED))
"""
    )
    extra = r.doc["_extra"]
    assert extra["first"] and extra["again"], extra
    assert extra["files"] >= 1 and 0 < extra["kept"] <= 1 + 12 * extra["files"], extra


def test_a_function_an_edit_of_the_same_length_replaced_is_found_by_its_source(
    scenario: Scenario,
) -> None:
    """Without recording (nothing kept between scans), the same edit reloaded: the function
    it replaced is found by its source, by a rescan as by the first scan."""
    scenario.write("plug.py", "def greet():\n    return 'one'\n")
    r = scenario.run(
        SCANS
        + """
import plug
keep = plug.greet
first, _ = scan()
rs.edit(plug, "def greet():\\n    return 'two'\\n")  # the same length
doc, _ = scan()
rs.report(doc, first=sum(len(m["stale"]) for m in first["modules"]), kept=len(evidence._COMPILED))
"""
    )
    assert r.doc["_extra"]["first"] == 0 and r.doc["_extra"]["kept"] == 0
    found = r.one("plug", kind="function", qualname="greet")
    assert found["evidence"]["kind"] == "source", found
