"""Many kinds of holder at once in one process (one case each: test_kinds.py)."""

from __future__ import annotations

import pytest

from scenario import Scenario


@pytest.fixture
def scenario(any_heap_scenario: Scenario) -> Scenario:
    """Every case here runs twice: as it is, and beside big unrelated containers."""
    return any_heap_scenario


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
