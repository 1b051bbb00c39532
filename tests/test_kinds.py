"""One real reload scenario per kind of stale object and per way of holding one."""

from __future__ import annotations

from datetime import datetime

import pytest

from scenario import Scenario


@pytest.fixture
def scenario(any_heap_scenario: Scenario) -> Scenario:
    """Every case here runs twice: as it is, and beside big unrelated containers."""
    return any_heap_scenario


def ver(template, n):
    """A module's source text at version ``n``."""
    return template.replace("@V@", str(n))


def names_of(r, module):
    return sorted((s["kind"], s["qualname"], s["generation"]) for s in r.stale(module))


# 1 ---------------------------------------------------------------------------------------------
def test_from_import_copy(scenario):
    scenario.write("plug.py", "def greet(): return 'hello'\ndef other(): return 1\n")
    scenario.write("consumer.py", "from plug import greet\n")
    r = scenario.run("""
        import reloadscope, rs
        reloadscope.install()
        import plug, consumer
        rs.edit(plug, "def greet(): return 'hi'\\ndef other(): return 2\\n")
        rs.report()
    """)
    entry = r.one("plug", kind="function", qualname="greet")
    assert entry["generation"] == 0
    assert entry["count"] == 1
    assert entry["type"] == "function"
    (path,) = entry["paths"]
    assert path["root"] == "module"
    assert path["text"] == "consumer.greet"
    assert path["depth"] == 1
    assert "from plug import greet" in path["hint"]
    assert "consumer" in path["hint"]
    r.assert_paths_evaluate()
    # Only the copied old function: neither the current greet nor the unreferenced old other.
    assert names_of(r, "plug") == [("function", "greet", 0)]
    assert "consumer" not in [m["name"] for m in r.doc["modules"]]


# 2 ---------------------------------------------------------------------------------------------
def test_instance_keeps_old_class(scenario):
    scenario.write("shapes.py", "class Widget:\n    def area(self): return 1\n")
    scenario.write("consumer.py", "import shapes\nw = shapes.Widget()\n")
    r = scenario.run("""
        import reloadscope, rs
        reloadscope.install()
        import shapes, consumer
        rs.edit(shapes, "class Widget:\\n    def area(self): return 2\\n")
        consumer.fresh = shapes.Widget()
        rs.report()
    """)
    inst = r.one("shapes", kind="instance", qualname="Widget")
    assert inst["generation"] == 0
    assert inst["count"] == 1  # the instance made after the reload is not stale
    assert r.texts(inst) == ["consumer.w"]
    assert "obj.__class__ = shapes.Widget" in inst["paths"][0]["hint"]
    cls = r.one("shapes", kind="class", qualname="Widget")
    assert cls["generation"] == 0
    assert cls["count"] == 1
    assert r.texts(cls)[0] == "consumer.w.__class__"
    assert "keeps its old class" in cls["paths"][0]["hint"]
    r.assert_paths_evaluate()
    # The old method travels with its class; it is not a separate entry.
    assert names_of(r, "shapes") == [("class", "Widget", 0), ("instance", "Widget", 0)]


# 3 ---------------------------------------------------------------------------------------------
def test_subclass_in_other_module_keeps_old_base(scenario):
    scenario.write("base.py", "class Base:\n    def hello(self): return 'v0'\n")
    scenario.write("derived.py", "import base\nclass Derived(base.Base):\n    pass\n")
    r = scenario.run("""
        import reloadscope, rs
        reloadscope.install()
        import base, derived
        rs.edit(base, "class Base:\\n    def hello(self): return 'v1'\\n")
        assert derived.Derived().hello() == 'v0'
        rs.report()
    """)
    entry = r.one("base", kind="class", qualname="Base")
    assert entry["generation"] == 0
    texts = r.texts(entry)
    assert "derived.Derived.__bases__[0]" in texts
    p = entry["paths"][texts.index("derived.Derived.__bases__[0]")]
    assert "derived from the old class" in p["hint"]
    assert "reload the module that defines the subclass" in p["hint"]
    r.assert_paths_evaluate()
    assert names_of(r, "base") == [("class", "Base", 0)]
    # Derived is current code of a module that was not reloaded.
    assert "derived" not in [m["name"] for m in r.doc["modules"]]


# 4 ---------------------------------------------------------------------------------------------
def test_leftover_name_but_not_submodule(scenario):
    scenario.write("pkg/__init__.py", "def old_helper(): return 0\ndef keep(): return 0\n")
    scenario.write("pkg/sub.py", "def f(): return 0\n")
    r = scenario.run("""
        import reloadscope, rs
        reloadscope.install()
        import pkg.sub
        rs.edit(pkg, "def keep(): return 1\\n")
        assert pkg.sub.f() == 0 and pkg.old_helper() == 0
        rs.report()
    """)
    mod = r.module("pkg")
    assert mod["leftover_names"] == ["old_helper"]
    assert mod["current_generation"] == 1
    entry = r.one("pkg", kind="function", qualname="old_helper")
    assert entry["generation"] == 0
    assert r.texts(entry) == ["pkg.old_helper"]
    assert "leftover name" in entry["paths"][0]["hint"]
    assert "del pkg.old_helper" in entry["paths"][0]["hint"]
    r.assert_paths_evaluate()
    assert names_of(r, "pkg") == [("function", "old_helper", 0)]
    assert "pkg.sub" not in [m["name"] for m in r.doc["modules"]]


# 5 ---------------------------------------------------------------------------------------------
CACHE_V = """
try:
    HANDLERS
except NameError:
    HANDLERS = []
try:
    TABLE
except NameError:
    TABLE = {}
def handler():
    return @V@
HANDLERS.append(handler)
TABLE[len(TABLE)] = handler
"""


def test_try_except_nameerror_container_is_kept_but_its_old_items_are_stale(scenario):
    scenario.write("cache.py", ver(CACHE_V, 0))
    r = scenario.run(f"""
        import reloadscope, rs
        reloadscope.install()
        import cache
        kept_list, kept_table = cache.HANDLERS, cache.TABLE
        rs.edit(cache, {ver(CACHE_V, 1)!r})
        assert cache.HANDLERS is kept_list and cache.TABLE is kept_table
        assert len(kept_list) == 2
        del kept_list, kept_table
        rs.report()
    """)
    entry = r.one("cache", kind="function", qualname="handler")
    assert entry["generation"] == 0
    assert entry["count"] == 1
    texts = r.texts(entry)
    assert set(texts) == {"cache.HANDLERS[0]", "cache.TABLE[0]"}
    for p in entry["paths"]:
        assert "try/except NameError" in p["hint"]
    r.assert_paths_evaluate()
    # The kept containers themselves and the current handler are not stale.
    assert names_of(r, "cache") == [("function", "handler", 0)]
    assert r.module("cache")["leftover_names"] == []


KEPT_V = """
try:
    Session
except NameError:
    class Session:
        def token(self):
            return 0
def api():
    return @V@
"""


def test_class_kept_by_try_except_nameerror_is_not_stale(scenario):
    scenario.write("kept.py", ver(KEPT_V, 0))
    scenario.write("holder.py", "import kept\ns = kept.Session()\n")
    r = scenario.run(f"""
        import reloadscope, rs
        reloadscope.install()
        import kept, holder
        old = kept.Session
        rs.edit(kept, {ver(KEPT_V, 1)!r})
        assert kept.Session is old and type(holder.s) is kept.Session
        del old
        rs.report()
    """)
    # Neither the kept class, nor its methods, nor its instances are stale.
    assert r.stale("kept") == []
    assert r.module("kept")["leftover_names"] == []


# 6 ---------------------------------------------------------------------------------------------
def test_module_replaced_in_sys_modules(scenario):
    scenario.write("plug.py", "def greet(): return 'v0'\n")
    scenario.write("holder.py", "import plug\n")
    r = scenario.run("""
        import sys, reloadscope, rs
        reloadscope.install()
        import plug, holder
        rs.write("plug.py", "def greet(): return 'v1'\\n")
        del sys.modules["plug"]
        del plug
        import plug
        assert holder.plug is not plug and holder.plug.greet() == 'v0'
        rs.report()
    """)
    mod = r.one("plug", kind="module", qualname="plug")
    assert mod["generation"] == 0
    assert mod["count"] == 1
    assert r.texts(mod) == ["holder.plug"]
    assert "import plug" in mod["paths"][0]["hint"]
    fn = r.one("plug", kind="function", qualname="greet")
    assert fn["generation"] == 0
    assert r.texts(fn) == ["holder.plug.greet"]
    r.assert_paths_evaluate()
    gens = r.module("plug")["generations"]
    assert [g["kind"] for g in gens] == ["import", "reimport"]
    assert r.module("plug")["current_generation"] == 1
    # The new module object and its function are current.
    assert names_of(r, "plug") == [("function", "greet", 0), ("module", "plug", 0)]


def test_function_of_replaced_module_hint_names_the_old_module(scenario):
    scenario.write("plug.py", "def greet(): return 'v0'\n")
    scenario.write("holder.py", "import plug\n")
    r = scenario.run("""
        import sys, reloadscope, rs
        reloadscope.install()
        import plug, holder
        del sys.modules["plug"], plug
        import plug
        rs.report()
    """)
    fn = r.one("plug", kind="function", qualname="greet")
    assert r.texts(fn) == ["holder.plug.greet"]
    # As without recording (test_late_scan_without_install_finds_old_module).
    assert "old module object of plug" in fn["paths"][0]["hint"]


# 7 ---------------------------------------------------------------------------------------------
def test_registries_in_a_third_module(scenario):
    scenario.write("plug.py", "def greet(): return 0\ndef on_event(e): return 0\n")
    scenario.write("app.py", "REGISTRY = {}\nLISTENERS = []\n")
    r = scenario.run("""
        import reloadscope, rs
        reloadscope.install()
        import plug, app
        app.REGISTRY['greet'] = plug.greet
        app.LISTENERS.append(plug.on_event)
        rs.edit(plug, "def greet(): return 1\\ndef on_event(e): return 1\\n")
        app.LISTENERS.append(plug.on_event)
        app.REGISTRY['new'] = plug.greet
        rs.report()
    """)
    greet = r.one("plug", kind="function", qualname="greet")
    assert greet["generation"] == 0 and greet["count"] == 1
    assert r.texts(greet) == ["app.REGISTRY['greet']"]
    assert "registered in a container" in greet["paths"][0]["hint"]
    ev = r.one("plug", kind="function", qualname="on_event")
    assert ev["generation"] == 0 and ev["count"] == 1
    assert r.texts(ev) == ["app.LISTENERS[0]"]
    assert "register again" in ev["paths"][0]["hint"]
    r.assert_paths_evaluate()
    assert names_of(r, "plug") == [("function", "greet", 0), ("function", "on_event", 0)]
    assert "app" not in [m["name"] for m in r.doc["modules"]]


# 8 ---------------------------------------------------------------------------------------------
CLOSURE_V = """
def helper(x):
    return x + @V@
def make():
    h = helper
    def run():
        return h(1)
    return run
"""


def test_closure_over_old_helper(scenario):
    scenario.write("plug.py", ver(CLOSURE_V, 0))
    scenario.write("consumer.py", "import plug\nrun = plug.make()\n")
    r = scenario.run(f"""
        import reloadscope, rs
        reloadscope.install()
        import plug, consumer
        rs.edit(plug, {ver(CLOSURE_V, 10)!r})
        assert consumer.run() == 1 and plug.make()() == 11
        rs.report()
    """)
    helper = r.one("plug", kind="function", qualname="helper")
    assert helper["generation"] == 0
    assert r.texts(helper) == ["consumer.run.__closure__[0].cell_contents"]
    assert "closure" in helper["paths"][0]["hint"]
    assert "factory" in helper["paths"][0]["hint"]
    run = r.one("plug", kind="function", qualname="make.<locals>.run")
    assert run["generation"] == 0
    assert r.texts(run) == ["consumer.run"]
    r.assert_paths_evaluate()
    # The old factory itself is gone; nothing current is reported.
    assert names_of(r, "plug") == [("function", "helper", 0), ("function", "make.<locals>.run", 0)]


# 9 ---------------------------------------------------------------------------------------------
def test_bound_method_in_callback_list(scenario):
    scenario.write("plug.py", "class Greeter:\n    def hello(self): return 0\n")
    scenario.write("app.py", "CALLBACKS = []\n")
    r = scenario.run("""
        import reloadscope, rs
        reloadscope.install()
        import plug, app
        app.CALLBACKS.append(plug.Greeter().hello)
        rs.edit(plug, "class Greeter:\\n    def hello(self): return 1\\n")
        app.CALLBACKS.append(plug.Greeter().hello)
        rs.report()
    """)
    fn = r.one("plug", kind="function", qualname="Greeter.hello")
    assert fn["generation"] == 0
    assert r.texts(fn) == ["app.CALLBACKS[0].__func__"]
    assert "bound method" in fn["paths"][0]["hint"]
    inst = r.one("plug", kind="instance", qualname="Greeter")
    assert inst["count"] == 1
    assert r.texts(inst) == ["app.CALLBACKS[0].__self__"]
    cls = r.one("plug", kind="class", qualname="Greeter")
    assert cls["generation"] == 0
    assert r.texts(cls)[0] == "app.CALLBACKS[0].__self__.__class__"
    r.assert_paths_evaluate()
    assert len(r.stale("plug")) == 3


# 10 --------------------------------------------------------------------------------------------
def test_functools_partial(scenario):
    scenario.write("plug.py", "def work(n, scale=1): return n * scale\n")
    scenario.write(
        "jobs.py", "import functools, plug\njob = functools.partial(plug.work, 2, scale=3)\n"
    )
    r = scenario.run("""
        import reloadscope, rs
        reloadscope.install()
        import plug, jobs
        rs.edit(plug, "def work(n, scale=1): return -n\\n")
        assert jobs.job() == 6
        rs.report()
    """)
    fn = r.one("plug", kind="function", qualname="work")
    assert fn["generation"] == 0
    assert r.texts(fn) == ["jobs.job.func"]
    assert "functools.partial" in fn["paths"][0]["hint"]
    r.assert_paths_evaluate()
    assert names_of(r, "plug") == [("function", "work", 0)]


# 11 --------------------------------------------------------------------------------------------
WRAPS_V = """
import functools
def logged(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)
    return wrapper
@logged
def greet():
    return @V@
"""


def test_functools_wraps_wrapper_and_wrapped(scenario):
    scenario.write("plug.py", ver(WRAPS_V, 0))
    scenario.write("consumer.py", "from plug import greet\n")
    r = scenario.run(f"""
        import reloadscope, rs
        reloadscope.install()
        import plug, consumer
        rs.edit(plug, {ver(WRAPS_V, 1)!r})
        assert consumer.greet() == 0
        rs.report()
    """)
    entries = r.stale("plug", kind="function")
    assert all(e["generation"] == 0 for e in entries)
    # Two old functions: the wrapper and the original (wraps copies the qualname, so they may
    # share one entry named greet).
    assert sum(e["count"] for e in entries) == 2
    paths = {p["text"]: p for e in entries for p in e["paths"]}
    wrapper, inner = paths["consumer.greet"], paths["consumer.greet.__wrapped__"]
    assert wrapper["object_id"] != inner["object_id"]
    assert "from plug import greet" in wrapper["hint"]
    assert "functools.wraps" in inner["hint"] and "decorator again" in inner["hint"]
    # Shortest path to the original first: __wrapped__ before the closure cell.
    inner_paths = [p["text"] for p in paths.values() if p["object_id"] == inner["object_id"]]
    assert inner_paths[0] == "consumer.greet.__wrapped__"
    assert "consumer.greet.__closure__[0].cell_contents" in inner_paths
    r.assert_paths_evaluate()
    assert {e["kind"] for e in r.stale("plug")} == {"function"}  # nothing current reported


# 12 --------------------------------------------------------------------------------------------
LRU_FACTORY = """
import functools, plug
@functools.lru_cache(maxsize=None)
def make_point(x):
    return plug.Point(x)
"""


def _lru_result(scenario):
    scenario.write("plug.py", "class Point:\n    def __init__(self, x): self.x = x\n")
    scenario.write("factory.py", LRU_FACTORY)
    return scenario.run("""
        import reloadscope, rs
        reloadscope.install()
        import plug, factory
        factory.make_point(1), factory.make_point(2)
        rs.edit(plug, "class Point:\\n    def __init__(self, x): self.x = -x\\n")
        assert factory.make_point(1).x == 1  # still the cached old instance
        factory.make_point(3)  # a new instance of the new class
        rs.report()
    """)


def test_lru_cache_keeps_instances_of_old_class(scenario):
    r = _lru_result(scenario)
    inst = r.one("plug", kind="instance", qualname="Point")
    assert inst["generation"] == 0
    assert inst["count"] == 2
    assert len(inst["paths"]) == 2
    for p in inst["paths"]:
        assert p["root"] == "module"
        assert p["text"].startswith("__import__('gc').get_referents(factory.make_point)")
    cls = r.one("plug", kind="class", qualname="Point")
    assert cls["count"] == 1
    assert all(t.endswith(".__class__") for t in r.texts(cls))
    r.assert_paths_evaluate()
    assert names_of(r, "plug") == [("class", "Point", 0), ("instance", "Point", 0)]


def test_lru_cache_hint_says_cache_clear(scenario):
    r = _lru_result(scenario)
    inst = r.one("plug", kind="instance", qualname="Point")
    for p in inst["paths"]:
        assert "cache_clear()" in p["hint"]


# 13 --------------------------------------------------------------------------------------------
DISPATCH_PLUG_V = """
import dispatch
class Cat:
    pass
@dispatch.describe.register(Cat)
def _(obj):
    return 'cat @V@'
"""


def test_singledispatch_registry_keeps_old_class(scenario):
    scenario.write(
        "dispatch.py",
        "import functools\n@functools.singledispatch\ndef describe(obj): return 'thing'\n",
    )
    scenario.write("plug.py", ver(DISPATCH_PLUG_V, 0))
    r = scenario.run(f"""
        import reloadscope, rs
        reloadscope.install()
        import plug, dispatch
        assert dispatch.describe(plug.Cat()) == 'cat 0'
        rs.edit(plug, {ver(DISPATCH_PLUG_V, 1)!r})
        assert dispatch.describe(plug.Cat()) == 'cat 1'
        assert len(dispatch.describe.registry) == 3  # object, old Cat, new Cat
        rs.report()
    """)
    cls = r.one("plug", kind="class", qualname="Cat")
    assert cls["generation"] == 0 and cls["count"] == 1
    assert r.texts(cls)[0].startswith("dispatch.describe.registry")
    assert "register again" in cls["paths"][0]["hint"]
    fn = r.one("plug", kind="function", qualname="_")
    assert fn["generation"] == 0 and fn["count"] == 1
    assert r.texts(fn)[0].startswith("dispatch.describe.registry")
    r.assert_paths_evaluate()
    assert names_of(r, "plug") == [("class", "Cat", 0), ("function", "_", 0)]
    assert "dispatch" not in [m["name"] for m in r.doc["modules"]]


# 14 --------------------------------------------------------------------------------------------
DATACLASS_V = """
from dataclasses import dataclass, field
@dataclass
class Item:
    name: str
    tags: list = field(default_factory=list)
    def label(self):
        return self.name + '@V@'
"""


def test_dataclass_instances(scenario):
    scenario.write("plug.py", ver(DATACLASS_V, 0))
    scenario.write("store.py", "import plug\nITEMS = [plug.Item('a'), plug.Item('b')]\n")
    r = scenario.run(f"""
        import reloadscope, rs
        reloadscope.install()
        import plug, store
        rs.edit(plug, {ver(DATACLASS_V, 1)!r})
        store.ITEMS.append(plug.Item('c'))
        assert [i.label() for i in store.ITEMS] == ['a0', 'b0', 'c1']
        rs.report()
    """)
    inst = r.one("plug", kind="instance", qualname="Item")
    assert inst["generation"] == 0
    assert inst["count"] == 2
    assert sorted(r.texts(inst)) == ["store.ITEMS[0]", "store.ITEMS[1]"]
    cls = r.one("plug", kind="class", qualname="Item")
    assert cls["generation"] == 0
    assert r.texts(cls)[0] in ("store.ITEMS[0].__class__", "store.ITEMS[1].__class__")
    r.assert_paths_evaluate()
    # The methods dataclass generated with exec, and label, travel with the class.
    assert names_of(r, "plug") == [("class", "Item", 0), ("instance", "Item", 0)]


# 15 --------------------------------------------------------------------------------------------
def test_enum_members_are_instances_of_old_enum(scenario):
    scenario.write("plug.py", "import enum\nclass Color(enum.Enum):\n    RED = 1\n    GREEN = 2\n")
    scenario.write("holder.py", "import plug\nfavourite = plug.Color.RED\n")
    r = scenario.run("""
        import reloadscope, rs
        reloadscope.install()
        import plug, holder
        rs.edit(plug, "import enum\\nclass Color(enum.Enum):\\n    RED = 1\\n    GREEN = 2\\n"
                      "    BLUE = 3\\n")
        assert holder.favourite is not plug.Color.RED
        rs.report()
    """)
    cls = r.one("plug", kind="class", qualname="Color")
    assert cls["generation"] == 0
    assert cls["type"] in ("EnumType", "EnumMeta")
    assert r.texts(cls) == ["holder.favourite.__class__"]
    members = r.one("plug", kind="instance", qualname="Color")
    assert members["generation"] == 0
    assert members["count"] == 2  # RED and GREEN of the old enum; not the three new members
    texts = r.texts(members)
    assert texts[0] == "holder.favourite"
    assert all(t.startswith("holder.favourite.__class__") for t in texts[1:])
    assert len({p["object_id"] for p in members["paths"]}) == 2  # both members have a path
    r.assert_paths_evaluate()
    assert names_of(r, "plug") == [("class", "Color", 0), ("instance", "Color", 0)]


# 16 --------------------------------------------------------------------------------------------
NESTED_V = """
class Outer:
    class Inner:
        def value(self):
            return @V@
"""


def test_nested_class(scenario):
    scenario.write("plug.py", ver(NESTED_V, 0))
    scenario.write("holder.py", "import plug\nobj = plug.Outer.Inner()\n")
    r = scenario.run(f"""
        import reloadscope, rs
        reloadscope.install()
        import plug, holder
        rs.edit(plug, {ver(NESTED_V, 1)!r})
        assert holder.obj.value() == 0
        rs.report()
    """)
    inst = r.one("plug", kind="instance", qualname="Outer.Inner")
    assert inst["generation"] == 0 and inst["count"] == 1
    assert r.texts(inst) == ["holder.obj"]
    assert "obj.__class__ = plug.Outer.Inner" in inst["paths"][0]["hint"]
    cls = r.one("plug", kind="class", qualname="Outer.Inner")
    assert cls["generation"] == 0
    assert r.texts(cls) == ["holder.obj.__class__"]
    r.assert_paths_evaluate()
    # Nothing holds the old Outer, and the old method travels with Inner.
    assert names_of(r, "plug") == [("class", "Outer.Inner", 0), ("instance", "Outer.Inner", 0)]


# 17 --------------------------------------------------------------------------------------------
PKG_V = """
from . import sub
def api():
    return @V@
class Client:
    pass
"""


def test_package_init_reload(scenario):
    scenario.write("pkg/__init__.py", ver(PKG_V, 0))
    scenario.write("pkg/sub.py", "def helper(): return 0\n")
    scenario.write("consumer.py", "import pkg\nfrom pkg import api\nclient = pkg.Client()\n")
    r = scenario.run(f"""
        import reloadscope, rs
        reloadscope.install()
        import pkg, consumer
        sub = pkg.sub
        rs.edit(pkg, {ver(PKG_V, 1)!r})
        assert pkg.sub is sub and consumer.api() == 0
        del sub
        rs.report()
    """)
    mod = r.module("pkg")
    assert mod["current_generation"] == 1
    assert mod["file"].endswith("pkg/__init__.py")
    assert [g["kind"] for g in mod["generations"]] == ["import", "reload"]
    assert mod["leftover_names"] == []
    fn = r.one("pkg", kind="function", qualname="api")
    assert fn["generation"] == 0
    assert r.texts(fn) == ["consumer.api"]
    assert "from pkg import api" in fn["paths"][0]["hint"]
    inst = r.one("pkg", kind="instance", qualname="Client")
    assert r.texts(inst) == ["consumer.client"]
    cls = r.one("pkg", kind="class", qualname="Client")
    assert r.texts(cls) == ["consumer.client.__class__"]
    r.assert_paths_evaluate()
    assert len(r.stale("pkg")) == 3
    # The submodule was not reloaded and is not stale.
    assert "pkg.sub" not in [m["name"] for m in r.doc["modules"]]


# 18 --------------------------------------------------------------------------------------------
def test_threading_local_holds_old_function(scenario):
    scenario.write("plug.py", "def handle(): return 0\n")
    scenario.write("holder.py", "import threading\nstate = threading.local()\n")
    r = scenario.run("""
        import reloadscope, rs
        reloadscope.install()
        import plug, holder
        holder.state.handler = plug.handle
        rs.edit(plug, "def handle(): return 1\\n")
        holder.state.fresh = plug.handle
        rs.report()
    """)
    fn = r.one("plug", kind="function", qualname="handle")
    assert fn["generation"] == 0 and fn["count"] == 1
    (path,) = fn["paths"]
    assert path["root"] == "module"
    assert path["text"].startswith("__import__('gc').get_referents(holder.state)")
    assert path["text"].endswith("['handler']")
    r.assert_paths_evaluate()
    assert names_of(r, "plug") == [("function", "handle", 0)]


# 19 --------------------------------------------------------------------------------------------
GEN_V = """
def ticks():
    n = 0
    while True:
        yield n
        n += @V@
"""


def test_suspended_generator_runs_old_code(scenario):
    scenario.write("plug.py", ver(GEN_V, 1))
    scenario.write("holder.py", "import plug\ngen = plug.ticks()\nnext(gen)\n")
    r = scenario.run(f"""
        import reloadscope, rs
        reloadscope.install()
        import plug, holder
        rs.edit(plug, {ver(GEN_V, 2)!r})
        assert next(holder.gen) == 1  # the old code still runs
        fresh = plug.ticks(); next(fresh)  # a generator of the new code: not stale
        rs.report()
    """)
    code = r.one("plug", kind="code", qualname="ticks")
    assert code["type"] == "generator"
    assert code["generation"] == 0
    assert code["count"] == 1
    assert r.texts(code)[0] == "holder.gen"
    hint = code["paths"][0]["hint"]
    assert "generator" in hint and "create it again" in hint
    r.assert_paths_evaluate()
    assert [s for s in r.stale("plug") if s["kind"] == "code"] == [code]


# 20 --------------------------------------------------------------------------------------------
def test_traceback_keeps_frame_of_old_code(scenario):
    scenario.write("plug.py", "def boom():\n    marker = 'old'\n    raise ValueError(marker)\n")
    scenario.write("holder.py", "saved = None\n")
    r = scenario.run("""
        import sys, reloadscope, rs
        reloadscope.install()
        import plug, holder
        try:
            plug.boom()
        except ValueError:
            holder.saved = sys.exc_info()
        rs.edit(plug, "def boom():\\n    raise KeyError('new')\\n")
        rs.report()
    """)
    frame = r.one("plug", kind="code", qualname="boom")
    assert frame["type"] == "frame"
    assert frame["generation"] == 0
    assert frame["count"] == 1
    texts = r.texts(frame)
    assert texts[0] == "holder.saved[2].tb_next.tb_frame"
    assert frame["paths"][0]["root"] == "module"
    r.assert_paths_evaluate()
    # Every reported path leads into the saved traceback; no current code is reported.
    assert all(s["generation"] == 0 for s in r.stale("plug"))
    assert all("holder.saved" in t for s in r.stale("plug") for t in r.texts(s))


# 21 --------------------------------------------------------------------------------------------
THREAD_PLUG = """
def loop(stop, started):
    started.set()
    while not stop.is_set():
        stop.wait(0.01)
def handle():
    return 0
"""
THREAD_HOLDER = """
import threading
stop = threading.Event()
threads = []
def run(started):
    import plug
    cb = plug.handle
    started.set()
    while not stop.is_set():
        stop.wait(0.01)
"""


def test_thread_running_old_code_and_frame_local(scenario):
    scenario.write("plug.py", THREAD_PLUG)
    scenario.write("holder.py", THREAD_HOLDER)
    r = scenario.run("""
        import threading, reloadscope, rs
        reloadscope.install()
        import plug, holder
        s1, s2 = threading.Event(), threading.Event()
        holder.threads[:] = [
            threading.Thread(target=plug.loop, args=(holder.stop, s1), name='worker'),
            threading.Thread(target=holder.run, args=(s2,), name='holder-worker'),
        ]
        for t in holder.threads:
            t.start()
        s1.wait(); s2.wait()
        del s1, s2, t
        rs.edit(plug, "def loop(stop, started):\\n    pass\\ndef handle():\\n    return 1\\n")
        try:
            rs.report()
        finally:
            holder.stop.set()
            for t in holder.threads:
                t.join()
    """)
    code = r.one("plug", kind="code", qualname="loop")
    assert code["type"] == "frame"
    assert code["generation"] == 0
    (path,) = code["paths"]
    assert path["root"] == "thread"
    assert path["text"].startswith("thread 'worker' > loop() ")
    assert "plug.py:" in path["text"]
    assert "restart that loop or thread" in path["hint"]
    # The old function is the thread's target.
    target = r.one("plug", kind="function", qualname="loop")
    assert any(t.endswith("._target") for t in r.texts(target))
    # The old handle is held only by a local variable of the running holder.run frame.
    handle = r.one("plug", kind="function", qualname="handle")
    assert handle["generation"] == 0
    (hp,) = handle["paths"]
    assert hp["root"] == "thread"
    assert hp["text"].startswith("thread 'holder-worker' > run() ")
    assert "holder.py:" in hp["text"]
    assert hp["text"].endswith("> local 'cb'")
    assert "local variable of a running frame" in hp["hint"]
    r.assert_paths_evaluate()
    # holder.run is current code of a module that was not reloaded.
    assert "holder" not in [m["name"] for m in r.doc["modules"]]


# 22 --------------------------------------------------------------------------------------------
DRIVER = """
import importlib, rs
import plug
keep = []
def go():
    keep.append(plug.f)
    rs.write("plug.py", "def f(): return 1\\n")
    importlib.reload(plug)
    keep.append(plug.f)
    rs.write("plug.py", "def f(): return 2\\n")
    importlib.reload(plug)
    keep.append(plug.f)
    rs.write("plug.py", "def f(): return 3\\n")
    importlib.reload(plug)
    keep.append(plug.f)
"""


def test_generation_numbering_over_three_reloads(scenario):
    scenario.write("plug.py", "def f(): return 0\n")
    driver = scenario.write("driver.py", DRIVER)
    reload_lines = [
        i for i, line in enumerate(driver.read_text().splitlines(), 1) if "reload(plug)" in line
    ]
    r = scenario.run("""
        import reloadscope, rs
        reloadscope.install()
        import driver
        driver.go()
        assert [f() for f in driver.keep] == [0, 1, 2, 3]
        rs.report()
    """)
    mod = r.module("plug")
    assert mod["current_generation"] == 3
    gens = mod["generations"]
    assert [g["number"] for g in gens] == [0, 1, 2, 3]
    assert [g["kind"] for g in gens] == ["import", "reload", "reload", "reload"]
    assert [g["status"] for g in gens] == ["finished"] * 4
    assert [g["error"] for g in gens] == [None] * 4
    assert gens[0]["trigger"] is None
    assert [g["trigger"] for g in gens[1:]] == [f"{driver}:{n}" for n in reload_lines]
    started = [datetime.fromisoformat(g["started_at"]) for g in gens]
    assert started == sorted(started)
    assert len({g["source_sha256"] for g in gens}) == 4
    # One entry per old generation, each with the path to its own item of driver.keep.
    entries = r.stale("plug", kind="function", qualname="f")
    assert sorted((e["generation"], tuple(r.texts(e))) for e in entries) == [
        (0, ("driver.keep[0]",)),
        (1, ("driver.keep[1]",)),
        (2, ("driver.keep[2]",)),
    ]
    r.assert_paths_evaluate()
    assert len(r.stale("plug")) == 3  # the generation-3 f is current


# 23 --------------------------------------------------------------------------------------------
FAILING_V1 = """
def a():
    return 1
raise RuntimeError("boom while reloading")
def b():
    return 1
"""


def test_reload_that_raises_midway(scenario):
    scenario.write("plug.py", "def a():\n    return 0\ndef b():\n    return 0\n")
    r = scenario.run(f"""
        import reloadscope, rs
        reloadscope.install()
        import plug
        try:
            rs.edit(plug, {FAILING_V1!r})
        except RuntimeError:
            pass
        else:
            raise AssertionError("the reload should have raised")
        assert plug.a() == 1 and plug.b() == 0
        rs.report()
    """)
    mod = r.module("plug")
    assert mod["current_generation"] == 1
    g1 = mod["generations"][1]
    assert g1["kind"] == "reload"
    assert g1["status"] == "failed"
    assert g1["error"] == "RuntimeError: boom while reloading"
    assert mod["generations"][0]["status"] == "finished"
    b = r.one("plug", kind="function", qualname="b")
    assert b["generation"] == 0
    assert r.texts(b) == ["plug.b"]
    hint = b["paths"][0]["hint"]
    assert "failed" in hint and "reload again" in hint
    r.assert_paths_evaluate()
    # a was redefined before the error: the current a is not stale.
    assert names_of(r, "plug") == [("function", "b", 0)]


# 24 --------------------------------------------------------------------------------------------
def test_late_scan_without_install_finds_old_module(scenario):
    scenario.write("plug.py", "def greet(): return 0\n")
    scenario.write("holder.py", "import plug\n")
    r = scenario.run("""
        import sys, reloadscope, rs
        import plug, holder
        del sys.modules["plug"], plug
        import plug
        assert holder.plug is not plug
        rs.report()
    """)
    mod = r.one("plug", kind="module", qualname="plug")
    assert mod["generation"] is None
    assert r.texts(mod) == ["holder.plug"]
    fn = r.one("plug", kind="function", qualname="greet")
    assert fn["generation"] is None
    assert r.texts(fn) == ["holder.plug.greet"]
    assert "old module object of plug" in fn["paths"][0]["hint"]
    r.assert_paths_evaluate()
    assert names_of(r, "plug") == [("function", "greet", None), ("module", "plug", None)]
    # Nothing was recorded: no other module appears.
    assert [m["name"] for m in r.doc["modules"]] == ["plug"]


def test_install_after_first_reload_records_arrival(scenario):
    scenario.write("plug.py", "def greet(): return 0\n")
    scenario.write("holder.py", "from plug import greet\n")
    r = scenario.run("""
        import reloadscope, rs
        import plug, holder
        rs.edit(plug, "def greet(): return 1\\n")
        holder.later = plug.greet
        reloadscope.install()
        rs.edit(plug, "def greet(): return 2\\n")
        assert (holder.greet(), holder.later(), plug.greet()) == (0, 1, 2)
        rs.report()
    """)
    mod = r.module("plug")
    gens = mod["generations"]
    assert [g["number"] for g in gens] == [0, 1]
    assert gens[0]["kind"] == "arrival"
    assert gens[0]["trigger"] is None
    assert gens[1]["kind"] == "reload" and gens[1]["status"] == "finished"
    assert mod["current_generation"] == 1
    before = r.one("plug", kind="function", qualname="greet", generation=None)
    assert r.texts(before) == ["holder.greet"]
    arrival = r.one("plug", kind="function", qualname="greet", generation=0)
    assert r.texts(arrival) == ["holder.later"]
    r.assert_paths_evaluate()
    assert len(r.stale("plug")) == 2


# 25 --------------------------------------------------------------------------------------------
def test_uninstall_then_scan_still_works(scenario):
    scenario.write("plug.py", "def greet(): return 0\n")
    scenario.write("holder.py", "import plug\n")
    r = scenario.run("""
        import sys, threading, reloadscope, rs
        reloadscope.install()
        import plug, holder
        rs.edit(plug, "def greet(): return 1\\n")
        del sys.modules["plug"], plug
        import plug
        reloadscope.uninstall()
        finders = [type(f).__module__ for f in sys.meta_path]
        names = [t.name for t in threading.enumerate()]
        report = reloadscope.scan()
        rs.report(report.to_json(), finders=finders, threads=names)
    """)
    assert not any(f.startswith("reloadscope") for f in r.extra["finders"])
    assert r.extra["threads"] == ["MainThread"]
    assert r.doc["format"] == "reloadscope-report" and r.doc["version"] == 1
    assert r.doc["scan"]["complete"] is True
    # The module object sys.modules dropped is still found from the evidence alone.
    mod = r.one("plug", kind="module", qualname="plug")
    assert r.texts(mod) == ["holder.plug"]
    r.assert_paths_evaluate()
