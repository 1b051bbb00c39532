"""The engine on every CPython found here (3.10-3.13): findings, evaluable paths, and no false
positives in a plain process."""

from __future__ import annotations

import pytest

from scenario import Scenario, pythons, version_id

PYTHONS = pythons()
IDS = [version_id(p) for p in PYTHONS]

PLAIN = """
    import rs
    {install}
    import asyncio, typing, dataclasses, enum, collections, json, email.message, http.client
    import logging, unittest.mock, decimal, argparse, xml.etree.ElementTree, sqlite3, functools
    import concurrent.futures, inspect, pathlib, re, socket, threading, tempfile, typing
    import plainmod
    asyncio.run(asyncio.sleep(0))
    logging.getLogger("x").warning
    import reloadscope
    rs.report()
"""

PLAINMOD = """
import collections, dataclasses, enum, functools, typing

Point = collections.namedtuple("Point", "x y")
class P3(collections.namedtuple("P3", "x y z")):
    pass

@dataclasses.dataclass
class D:
    x: int = 1

@dataclasses.dataclass(slots=True)
class S:
    y: int = 2

class Color(enum.Enum):
    RED = 1
    BLUE = 2

@typing.overload
def over(x: int) -> int: ...
@typing.overload
def over(x: str) -> str: ...
def over(x):
    return x

@functools.singledispatch
def show(x):
    return x
@show.register
def _(x: int):
    return x

@functools.lru_cache
def cached(x):
    return D(x)
cached(1)

def f():
    return 1
_orig = f
def f():
    return _orig()

class NT(typing.NamedTuple):
    a: int
"""


@pytest.mark.parametrize("python", PYTHONS, ids=IDS)
@pytest.mark.parametrize("install", [True, False], ids=["recording", "late"])
def test_plain_process_reports_nothing(tmp_path, python, install):
    s = Scenario(tmp_path, python)
    s.write("plainmod.py", PLAINMOD)
    code = "import reloadscope; reloadscope.install()" if install else ""
    r = s.run(PLAIN.format(install=code))
    assert r.all_stale() == [], r.all_stale()
    assert r.doc["modules"] == []


PLUG_V2 = """
def greet():
    return "hi"

class Widget:
    def render(self):
        return 2

def make():
    return lambda: greet()
"""

CORE_SCRIPT = f"""
    import reloadscope, rs
    reloadscope.install()
    import plug, consumer
    rs.edit(plug, {PLUG_V2!r})
    rs.report()
"""

PLUG = """
def greet():
    return "hello"

def old_helper():
    return 0

class Widget:
    def render(self):
        return 1

def make():
    return lambda: old_helper()
"""

CONSUMER = """
from plug import greet
import plug
w = plug.Widget()
REGISTRY = {"greet": plug.greet}
closure = plug.make()
"""


@pytest.mark.parametrize("python", PYTHONS, ids=IDS)
def test_core_findings_on_every_python(tmp_path, python):
    s = Scenario(tmp_path, python)
    s.write("plug.py", PLUG)
    s.write("consumer.py", CONSUMER)
    r = s.run(CORE_SCRIPT)
    greet = r.one("plug", kind="function", qualname="greet")
    assert set(r.texts(greet)) == {"consumer.greet", "consumer.REGISTRY['greet']"}
    assert r.texts(r.one("plug", kind="instance", qualname="Widget")) == ["consumer.w"]
    assert r.texts(r.one("plug", kind="class", qualname="Widget")) == ["consumer.w.__class__"]
    assert r.module("plug")["leftover_names"] == ["old_helper"]
    helper = r.one("plug", kind="function", qualname="old_helper")
    assert "plug.old_helper" in r.texts(helper)
    lam = r.one("plug", kind="function", qualname="make.<locals>.<lambda>")
    assert r.texts(lam) == ["consumer.closure"]
    assert r.module("plug")["current_generation"] == 1
    # Nothing current is reported: not the new greet, not make, not the new class.
    names = {(e["kind"], e["qualname"]) for e in r.all_stale()}
    assert ("function", "make") not in names
    r.assert_paths_evaluate()


ANNOTATED = """
class Thing:
    pass

def greet(name: str) -> str:
    return "hello " + name
"""

ANNOTATED_USER = """
import plug
from plug import greet

def typed(kind):
    def handle(x: kind) -> None:
        pass
    return handle

handler = typed(plug.Thing)
"""


@pytest.mark.parametrize("python", PYTHONS, ids=IDS)
def test_annotated_functions_are_one_entry_each(tmp_path, python):
    # PEP 649 (3.14+): every annotated function carries an ``__annotate__`` function of its
    # own, compiled with it.  It belongs to its owner: never an entry of its own, and a path
    # through it reads ``.__annotate__``.
    s = Scenario(tmp_path, python)
    s.write("plug.py", ANNOTATED)
    s.write("app.py", ANNOTATED_USER)
    r = s.run(
        f"""
        import sys, reloadscope, rs
        reloadscope.install()
        import plug, app
        rs.edit(plug, {ANNOTATED!r} + "\\n# edited\\n")
        rs.report(lazy=sys.version_info >= (3, 14))
        """
    )
    entries = sorted((e["kind"], e["qualname"]) for e in r.all_stale())
    assert entries == [("class", "Thing"), ("function", "greet")], entries
    assert r.texts(r.one("plug", kind="function", qualname="greet")) == ["app.greet"]
    if r.extra["lazy"]:
        thing = r.texts(r.one("plug", kind="class", qualname="Thing"))
        assert "app.handler.__annotate__.__closure__[0].cell_contents" in thing, thing
    r.assert_paths_evaluate()


PLUGIN_HOST = """
import importlib.machinery, importlib.util, sys, reloadscope, rs
reloadscope.install()
importlib.util.find_spec("other")  # probed, never executed: no generation
def load(name):
    spec = importlib.util.find_spec(name)
    kinds = isinstance(spec.loader, importlib.machinery.SourceFileLoader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module, kinds, type(module.__loader__) is importlib.machinery.SourceFileLoader
ext, kinds1, real1 = load("ext")
keep = ext.hello
del sys.modules["ext"]
rs.write("ext.py", "def hello():\\n    return 2\\n")
ext, kinds2, real2 = load("ext")
rs.report(checks=[kinds1, real1, kinds2, real2, ext.hello()])
"""


@pytest.mark.parametrize("python", PYTHONS, ids=IDS)
def test_plugin_loaders_record_generations(tmp_path, python):
    # discord.py's extensions and most plugin hosts: find_spec + module_from_spec +
    # exec_module after del sys.modules[name], never importlib.reload.
    s = Scenario(tmp_path, python)
    s.write("ext.py", "def hello():\n    return 1\n")
    s.write("other.py", "X = 1\n")
    r = s.run(PLUGIN_HOST)
    # The loader the host sees behaves as the real one; the real one is back on the module.
    assert r.extra["checks"] == [True, True, True, True, 2]
    m = r.module("ext")
    assert m["current_generation"] == 1
    assert [g["kind"] for g in m["generations"]] == ["import", "reimport"]
    assert all(g["source_sha256"] and g["status"] == "finished" for g in m["generations"])
    hello = r.one("ext", kind="function", qualname="hello")
    assert hello["generation"] == 0 and hello["evidence"]["kind"] == "recorded"
    assert r.texts(hello) == ["__main__.keep"]
    assert "other" not in {mod["name"] for mod in r.doc["modules"]}
    r.assert_paths_evaluate()


HINT_PLUG = """
HANDLERS = {"a": lambda: 1}

class Handler:
    pass
"""

HINT_APP = """
import plug
copy = plug.HANDLERS

class Server:
    pass

srv = Server()
srv.handler_class = plug.Handler
"""


@pytest.mark.parametrize("python", PYTHONS, ids=IDS)
def test_hints_name_the_holder(tmp_path, python):
    s = Scenario(tmp_path, python)
    s.write("plug.py", HINT_PLUG)
    s.write("app.py", HINT_APP)
    r = s.run(
        f"""
        import rs, plug, app
        rs.edit(plug, {HINT_PLUG.replace("1", "2")!r})
        rs.report()
        """
    )
    lam = r.one("plug", kind="function", qualname="<lambda>")
    (path,) = lam["paths"]
    assert path["text"] == "app.copy['a']"
    # An old module dict kept under another name, not "registered in a container".
    assert "plug.HANDLERS" in path["hint"] and "registered" not in path["hint"], path["hint"]
    cls = r.one("plug", kind="class", qualname="Handler")
    (path,) = cls["paths"]
    assert path["text"] == "app.srv.handler_class"
    assert "`app.srv.handler_class = plug.Handler`" in path["hint"], path["hint"]
    r.assert_paths_evaluate()
