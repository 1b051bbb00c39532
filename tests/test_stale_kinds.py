"""Every kind of holder the engine must find, each with a real reload in a fresh interpreter."""

from __future__ import annotations

PLUG = """
import dataclasses, enum, functools, threading

def greet():
    return "v1"

class Base:
    def hello(self):
        return "v1"

class Widget(Base):
    def render(self):
        return "v1"

    class Inner:
        def deep(self):
            return "v1"

def helper():
    return "v1"

def make():
    def inner():
        return helper()
    return inner

def logged(fn):
    @functools.wraps(fn)
    def wrapper(*a):
        return fn(*a)
    return wrapper

@logged
def decorated():
    return "v1"

@dataclasses.dataclass
class Point:
    x: int = 0

class Color(enum.Enum):
    RED = 1
    GREEN = 2
    BLUE = 3

@functools.lru_cache(maxsize=None)
def cached(n):
    return Point(n)

@functools.singledispatch
def show(obj):
    return "any"

@show.register(Point)
def _show_point(obj):
    return "point"

def counter():
    yield 1
    yield 2

def fail():
    raise ValueError("v1")

LOCAL = threading.local()
"""

PLUG_V2 = PLUG.replace('"v1"', '"v2"')

CONSUMER = """
import functools, sys
import plug
from plug import greet, Widget

class Sub(plug.Base):
    pass

callbacks = [plug.Widget().render]
partial = functools.partial(plug.helper)
closure = plug.make()
decorated = plug.decorated
point = plug.Point(1)
red = plug.Color.RED
cached_value = plug.cached(5)
inner = plug.Widget.Inner()
gen = plug.counter()
next(gen)
try:
    plug.fail()
except ValueError:
    saved = sys.exc_info()
plug.LOCAL.value = plug.Point(7)
local = plug.LOCAL
show = plug.show
cached = plug.cached
plug.cached(9)
"""


def _run(scenario):
    scenario.write("plug.py", PLUG)
    scenario.write("consumer.py", CONSUMER)
    return scenario.run(f"""
        import reloadscope, rs
        reloadscope.install()
        import plug, consumer
        rs.edit(plug, {PLUG_V2!r})
        rs.report()
    """)


def test_many_holders_in_one_process(scenario):
    r = _run(scenario)
    r.assert_paths_evaluate()
    texts = {(e["kind"], e["qualname"]): r.texts(e) for e in r.stale("plug")}
    hint = {(e["kind"], e["qualname"]): e["paths"][0]["hint"] for e in r.stale("plug")}
    # from-import copies
    assert "consumer.greet" in texts[("function", "greet")]
    assert "from plug import greet" in hint[("function", "greet")]
    assert "consumer.Widget" in texts[("class", "Widget")]
    # a subclass defined elsewhere keeps the old base
    assert "consumer.Sub.__bases__[0]" in texts[("class", "Base")]
    assert "derived" in hint[("class", "Base")]
    # bound method in a callback list
    assert texts[("function", "Widget.render")] == ["consumer.callbacks[0].__func__"]
    assert "bound method" in hint[("function", "Widget.render")]
    # functools.partial and a closure over the old helper
    helper = texts[("function", "helper")]
    assert "consumer.partial.func" in helper
    assert texts[("function", "make.<locals>.inner")] == ["consumer.closure"]
    # functools.wraps: the wrapper copies the qualname, so wrapper and original share one entry
    decorated = r.one("plug", kind="function", qualname="decorated")
    assert decorated["count"] == 2
    assert {"consumer.decorated", "consumer.decorated.__wrapped__"} <= set(r.texts(decorated))
    # dataclass and enum instances keep their old classes
    # point, the cached results (5, 9) and the one in the thread-local
    assert r.one("plug", kind="instance", qualname="Point")["count"] == 4
    assert r.one("plug", kind="instance", qualname="Color")["count"] == 3  # every member
    assert "consumer.red" in texts[("instance", "Color")]
    # nested class
    assert texts[("instance", "Widget.Inner")] == ["consumer.inner"]
    # old code still running: a suspended generator and a frame kept by a traceback
    gen = r.one("plug", kind="code", qualname="counter", type="generator")
    assert r.texts(gen) == ["consumer.gen"]
    frame = r.one("plug", kind="code", qualname="fail", type="frame")
    assert r.texts(frame) == ["consumer.saved[2].tb_next.tb_frame"]
    # Only what something still holds is reported: the old make() is held by nothing.
    reported = {(e["kind"], e["qualname"]) for e in r.stale("plug")}
    assert ("function", "make") not in reported
    assert all(e["generation"] == 0 for e in r.stale("plug"))


def test_lru_cache_singledispatch_and_thread_local(scenario):
    r = _run(scenario)
    r.assert_paths_evaluate()
    # The old singledispatch function keeps its registry, and the old implementation in it.
    impl = r.one("plug", kind="function", qualname="_show_point")
    assert any(t.startswith("consumer.show.registry") for t in r.texts(impl))
    # Four old Points: consumer.point, two lru_cache results (one held only by the cache),
    # and the one in the old thread-local.
    points = r.one("plug", kind="instance", qualname="Point")
    assert points["count"] == 4
    assert any("get_referents(consumer.cached)" in t for t in r.texts(points))


def test_try_except_idiom_keeps_the_container_not_its_old_contents(scenario):
    src = """
try:
    REGISTRY
except NameError:
    REGISTRY = {}

try:
    Kept
except NameError:
    class Kept:
        def m(self):
            return 1

def handler():
    return "%s"

REGISTRY.setdefault("handlers", []).append(handler)
"""
    scenario.write("plug.py", src % "v1")
    r = scenario.run(f"""
        import reloadscope, rs
        reloadscope.install()
        import plug
        k = plug.Kept()
        rs.edit(plug, {src % "v2"!r})
        rs.report()
    """)
    old = r.one("plug", kind="function", qualname="handler")
    assert r.texts(old) == ["plug.REGISTRY['handlers'][0]"]
    assert "try/except NameError" in old["paths"][0]["hint"]
    assert not r.stale("plug", kind="class", qualname="Kept")  # kept on purpose: current
    assert not r.stale("plug", kind="instance", qualname="Kept")
    assert r.module("plug")["leftover_names"] == []
    r.assert_paths_evaluate()


def test_module_replaced_in_sys_modules(scenario):
    scenario.write("plug.py", "def f():\n    return 1\n")
    scenario.write("consumer.py", "import plug\nfrom plug import f\n")
    r = scenario.run("""
        import sys, importlib, reloadscope, rs
        reloadscope.install()
        import plug, consumer
        del sys.modules["plug"]
        import plug
        rs.report()
    """)
    mod = r.one("plug", kind="module")
    assert r.texts(mod) == ["consumer.plug"]
    assert "sys.modules" in mod["paths"][0]["hint"]
    assert mod["generation"] == 0
    assert r.one("plug", kind="function", qualname="f")["generation"] == 0
    gens = r.module("plug")["generations"]
    assert [g["kind"] for g in gens] == ["import", "reimport"]
    r.assert_paths_evaluate()


def test_package_init_reload_and_submodules_are_not_leftovers(scenario):
    scenario.write("pkg/__init__.py", "def api():\n    return 1\n\ndef gone():\n    return 0\n")
    scenario.write("pkg/sub.py", "X = 1\n")
    r = scenario.run("""
        import reloadscope, rs
        reloadscope.install()
        import pkg, pkg.sub
        keep = pkg.api
        rs.edit(pkg, "def api():\\n    return 2\\n")
        rs.report()
    """)
    assert r.module("pkg")["leftover_names"] == ["gone"]
    assert r.texts(r.one("pkg", kind="function", qualname="api")) == ["__main__.keep"]
    r.assert_paths_evaluate()


def test_thread_local_and_running_thread(scenario):
    scenario.write(
        "plug.py",
        """
        import threading, time
        class Job:
            pass
        def loop(stop):
            job = Job()
            while not stop.is_set():
                time.sleep(0.005)
    """,
    )
    r = scenario.run("""
        import threading, reloadscope, rs
        reloadscope.install()
        import plug
        stop = threading.Event()
        t = threading.Thread(target=plug.loop, args=(stop,), name="worker")
        t.start()
        rs.edit(plug, "def loop(stop):\\n    pass\\n")
        rs.report()
        stop.set(); t.join()
    """)
    running = r.one("plug", kind="code", qualname="loop", type="frame")
    assert running["paths"][0]["root"] == "thread"
    assert running["paths"][0]["text"].startswith("thread 'worker' > loop() ")
    job = r.one("plug", kind="instance", qualname="Job")
    assert job["paths"][0]["root"] == "thread"
    assert job["paths"][0]["text"].endswith("> local 'job'")


def test_generations_over_three_reloads(scenario):
    scenario.write("plug.py", "def f():\n    return 0\n")
    r = scenario.run("""
        import reloadscope, rs
        reloadscope.install()
        import plug
        keep = []
        for n in (1, 2, 3):
            keep.append(plug.f)
            rs.edit(plug, f"def f():\\n    return {n}\\n")
        rs.report()
    """)
    m = r.module("plug")
    assert m["current_generation"] == 3
    gens = m["generations"]
    assert [g["number"] for g in gens] == [0, 1, 2, 3]
    assert [g["kind"] for g in gens] == ["import", "reload", "reload", "reload"]
    assert all(g["status"] == "finished" for g in gens)
    assert len({g["source_sha256"] for g in gens}) == 4
    assert gens[1]["trigger"].endswith("rs.py:" + gens[1]["trigger"].rsplit(":", 1)[1])
    starts = [g["started_at"] for g in gens]
    assert starts == sorted(starts)
    by_gen = sorted(e["generation"] for e in r.stale("plug", kind="function", qualname="f"))
    assert by_gen == [0, 1, 2]
    r.assert_paths_evaluate()


def test_failed_reload_reports_what_it_left_behind(scenario):
    scenario.write("plug.py", "def a():\n    return 1\n\ndef b():\n    return 1\n")
    r = scenario.run("""
        import reloadscope, rs
        reloadscope.install()
        import plug
        try:
            rs.edit(plug, "def a():\\n    return 2\\n\\n1 / 0\\n\\ndef b():\\n    return 2\\n")
        except ZeroDivisionError:
            pass
        rs.report()
    """)
    gen = r.module("plug")["generations"][-1]
    assert gen["status"] == "failed" and gen["error"] == "ZeroDivisionError: division by zero"
    b = r.one("plug", kind="function", qualname="b")
    assert r.texts(b) == ["plug.b"]
    assert "failed" in b["paths"][0]["hint"]
    assert not r.stale("plug", kind="function", qualname="a")  # a was redefined


def test_late_recording(scenario):
    scenario.write("plug.py", "def f():\n    return 1\n")
    scenario.write("consumer.py", "import plug\n")
    r = scenario.run("""
        import sys, importlib, rs
        import plug, consumer
        del sys.modules["plug"]
        import plug
        import reloadscope
        rs.report()
    """)
    mod = r.one("plug", kind="module")
    assert mod["generation"] is None
    assert r.texts(mod) == ["consumer.plug"]
    assert r.module("plug")["generations"][0]["kind"] == "arrival"


def test_install_after_reloads_starts_at_arrival(scenario):
    scenario.write("plug.py", "def f():\n    return 1\n")
    r = scenario.run("""
        import rs
        import plug
        rs.edit(plug, "def f():\\n    return 2\\n")
        import reloadscope
        reloadscope.install()
        keep = plug.f
        rs.edit(plug, "def f():\\n    return 3\\n")
        rs.report()
    """)
    gens = r.module("plug")["generations"]
    assert [g["kind"] for g in gens] == ["arrival", "reload"]
    assert r.one("plug", kind="function", qualname="f")["generation"] == 0
    assert r.texts(r.one("plug", kind="function", qualname="f")) == ["__main__.keep"]


def test_uninstall_then_scan_still_works(scenario):
    scenario.write("plug.py", "def f():\n    return 1\n")
    r = scenario.run("""
        import sys, reloadscope, rs
        reloadscope.install()
        import plug
        keep = plug
        reloadscope.uninstall()
        del sys.modules["plug"]
        import plug
        rs.report()
    """)
    assert r.one("plug", kind="module")["generation"] is None
