"""Old classes that reloaders patch in place (issue 21, item 5), late and recording, every
CPython, with minimal reproducers of the reloaders FIELD-NOTES describe (neither installs
here without its GUI toolkit or is maintained):

- pyqtgraph's reloadAll: reloads, patches old functions' code, moves instances to the new
  class, gives subclasses ``(new, old)`` as bases and keeps the old class as
  ``New.__previous_reload_version__``;
- a reimport-style reloader: pops the module, imports it again, copies the new values into
  the old dict and the new class dict into the old class, and points every reference that
  ``gc.get_referrers`` shows in a dict or list at the new class, weak references included
  (it rewrote the recording's own, which then lost the old class).  An attribute that is
  no dict entry it sees (inline values on 3.11+, a slot) keeps the old class."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenario import Scenario, pythons, version_id

PYQTGRAPH_LIKE = """
import gc, importlib, types

def reload_module(mod):
    old = dict(vars(mod))
    importlib.reload(mod)
    for k, ov in old.items():
        nv = vars(mod).get(k)
        if nv is None or nv is ov:
            continue
        if type(ov) is types.FunctionType and type(nv) is types.FunctionType:
            ov.__code__ = nv.__code__
        elif isinstance(ov, type) and isinstance(nv, type):
            for a, x in list(vars(ov).items()):
                if type(x) is types.FunctionType and type(vars(nv).get(a)) is types.FunctionType:
                    x.__code__ = vars(nv)[a].__code__
            for ref in gc.get_referrers(ov):
                if type(ref) is ov:
                    ref.__class__ = nv
            for sub in type.__subclasses__(ov):
                if nv not in sub.__bases__:
                    sub.__bases__ = (nv,) + sub.__bases__
            nv.__previous_reload_version__ = ov
"""

REIMPORT_LIKE = """
import gc, importlib, sys, types, weakref

def swap(old, new):
    for ref in gc.get_referrers(old):
        if type(ref) is dict:
            for k, v in list(ref.items()):
                if v is old:
                    ref[k] = new
        elif type(ref) is list:
            for i, v in enumerate(ref):
                if v is old:
                    ref[i] = new
    for wr in weakref.getweakrefs(old):
        for holder in gc.get_referrers(wr):
            if type(holder) is dict:
                for k, v in list(holder.items()):
                    if v is wr:
                        holder[k] = weakref.ref(new)

def reimport(name):
    old = sys.modules.pop(name)
    new = importlib.import_module(name)
    old_ns, new_ns = vars(old), vars(new)
    for k, v in list(new_ns.items()):
        ov = old_ns.get(k)
        if k.startswith("__") or ov is None or ov is v:
            continue
        if type(v) is types.FunctionType and type(ov) is types.FunctionType:
            ov.__code__ = v.__code__
        elif isinstance(v, type) and isinstance(ov, type):
            for a, x in list(vars(v).items()):
                if a not in ("__dict__", "__weakref__"):
                    try:
                        setattr(ov, a, x)
                    except (AttributeError, TypeError):
                        pass
            swap(ov, v)
    old_ns.update({k: v for k, v in new_ns.items() if not k.startswith("__")})
"""

V1 = "class Widget:\n    def area(self):\n        return 1\n"
V2 = "class Widget:\n    def area(self):\n        return 2\n"


@pytest.fixture(params=pythons(), ids=version_id)
def scenario(request: pytest.FixtureRequest, tmp_path: Path) -> Scenario:
    s = Scenario(tmp_path, request.param)
    s.write("pqreload.py", PYQTGRAPH_LIKE)
    s.write("reimp.py", REIMPORT_LIKE)
    s.write("shapes.py", V1)
    return s


@pytest.mark.parametrize("recording", [False, True], ids=["late", "recording"])
def test_an_old_class_kept_as_a_second_base_and_previous_version(scenario, recording):
    scenario.write("user.py", "import shapes\nclass Special(shapes.Widget):\n    pass\n")
    r = scenario.run(f"""
        import reloadscope, rs, pqreload
        if {recording}:
            reloadscope.install(listen=False)
        import shapes, user
        w = shapes.Widget()
        rs.write("shapes.py", {V2!r})
        pqreload.reload_module(shapes)
        assert w.area() == 2 and type(w) is shapes.Widget  # the instance was moved
        rs.report()
    """)
    entry = r.one("shapes", kind="class", qualname="Widget")
    texts = r.texts(entry)
    assert "user.Special.__bases__[1]" in texts
    assert "shapes.Widget.__previous_reload_version__" in texts
    assert r.stale("shapes", kind="instance") == []  # moved to the new class
    r.assert_paths_evaluate()


@pytest.mark.parametrize("recording", [False, True], ids=["late", "recording"])
def test_an_old_class_a_reimport_patched_and_an_attribute_still_holds(scenario, recording):
    r = scenario.run(f"""
        import reloadscope, rs, reimp
        if {recording}:
            reloadscope.install(listen=False)
        import shapes
        class Holder:
            __slots__ = ("kind",)  # no dict the reloader sees, on 3.10 as on 3.11+
        h = Holder()
        h.kind = shapes.Widget
        inst = shapes.Widget()
        rs.write("shapes.py", {V2!r})
        reimp.reimport("shapes")
        import sys
        assert h.kind is not sys.modules["shapes"].Widget and inst.area() == 2
        rs.report()
    """)
    entry = r.one("shapes", kind="class", qualname="Widget")
    assert "__main__.h.kind" in r.texts(entry)
    assert r.texts(r.one("shapes", kind="instance", qualname="Widget")) == ["__main__.inst"]
    r.assert_paths_evaluate()
