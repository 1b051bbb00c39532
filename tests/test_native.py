"""The optional native helper (``src/native/_reloadscope_native.c``, ``agent/native.py``): built
by this checkout's install, loaded only when safe, and never a change in what a scan finds.

On every CPython of the matrix, a child builds heaps of the shapes the walk treats differently
(containers past the helper's limit, which the walk reads in slices; big containers a first
walk defers; objects with one holder and with many, cycles, instances looked for by class,
targets) and compares, object for object, the walks made with the helper and without; then
scans a reloaded module's stale objects, some inside a big container, both ways, and compares
the reports and what each scan counted."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from scenario import SRC, pythons, run_marked, version_id

AGENT = Path(SRC) / "reloadscope" / "agent"
BUILT = AGENT / "_reloadscope_native.abi3.so"
GIL_LINUX = sys.platform.startswith("linux") and not sysconfig.get_config_var("Py_GIL_DISABLED")

needs_helper = pytest.mark.skipif(
    not BUILT.exists() and bool(os.environ.get("RELOADSCOPE_NO_NATIVE")),
    reason="built without the native helper (RELOADSCOPE_NO_NATIVE)",
)

WALKS = r"""
import gc, json, sys, time
sys.path.insert(0, SRC)
from reloadscope.agent import graph, native

helper = native.get()
assert helper is not None, native.why_not()


class Node:
    def __init__(self, k, shared):
        self.k = k
        self.items = [k, (k, str(k)), {"k": k}]
        self.shared = shared


class Leaf:
    pass


def build():
    shared = [[i] for i in range(50)]
    big = {i: Node(i, shared[i % 50]) for i in range(70_000)}  # past the helper's 65,536
    wide = [Leaf() for _ in range(12_000)]  # deferred by a first walk (10,000)
    chain = cur = []
    for _ in range(60):
        nxt = []
        cur.append(nxt)
        cur = nxt
    ring = [None]
    ring[0] = {"self": ring, "node": big[7]}
    mod = type(sys)("native_shapes")
    mod.big, mod.wide, mod.chain, mod.ring, mod.shared = big, wide, chain, ring, shared
    sys.modules["native_shapes"] = mod
    return mod


def walk_both(mod, **kw):
    targets = [mod.big[12_345].items, mod.wide[11_000], mod.shared[3], mod.chain]
    out = []
    for off in (False, True, False):  # the first walk with the helper settles the heap
        native.disable(off)
        kinds = None
        if kw.get("kinds"):
            kinds = graph.Kinds()
            kinds.add([Leaf], 5, quota=100)
        roots = list(sys.modules.values())
        seen = set()
        args = {k: v for k, v in kw.items() if k != "kinds"}
        w = graph.walk(roots, seen, {id(t) for t in targets}, max_depth=200,
                       deadline=time.monotonic() + 300, kinds=kinds, **args)
        out.append((w, seen, kinds))
    native.disable(False)
    return out[1:]


def same(a, b):
    (wa, sa, ka), (wb, sb, kb) = a, b
    levels = len(wa.levels) == len(wb.levels) and all(
        len(x) == len(y) and all(map(lambda p, q: p is q, x, y))
        for x, y in zip(wa.levels, wb.levels)
    )
    return {
        "levels": levels,
        "objects": sum(map(len, wa.levels)),
        "ends": wa.ends == wb.ends and wa.chunk == wb.chunk,
        "found": wa.found == wb.found and len(wa.found) > 0,
        "seen": sa == sb,
        "deferred": wa.deferred == wb.deferred
        and all(map(lambda p, q: p is q, wa.deferred_objs, wb.deferred_objs)),
        "flags": (wa.gave_up, wa.complete, wa.diverged) == (wb.gave_up, wb.complete, wb.diverged),
        "kinds": ka is None or (ka.reached == kb.reached
                                and all(map(lambda p, q: p is q, ka.found[0], kb.found[0]))),
    }


def main():
    mod = build()
    gc.collect()
    gc.disable()
    out = {}
    for name, kw in {
        "full": {},
        "deferring": {"defer_fanout": graph.DEFER_FANOUT},
        "kinds": {"kinds": True},
        "giving up": {"defer_fanout": graph.DEFER_FANOUT, "give_up_after": 5_000},
    }.items():
        native_walk, python_walk = walk_both(mod, **kw)
        out[name] = same(native_walk, python_walk)
        out[name]["gave_up"] = native_walk[0].gave_up
        del native_walk, python_walk
    out["big container sliced"] = len(mod.big) * 2 > graph.SLICE
    print(MARK + json.dumps(out))


main()
"""

SCANS = r"""
import gc, importlib, json, os, sys, tempfile, time
sys.path.insert(0, SRC)
from reloadscope import agent
from reloadscope.agent import evidence, native
from reloadscope.agent.scan import Scan

assert native.get() is not None, native.why_not()
recorder = agent.install()
work = tempfile.mkdtemp()
sys.path.insert(0, work)
source = '''
class Session:
    version = {v}
    def run(self):
        return {v}
def handler(event):
    return (event, {v})
'''
with open(os.path.join(work, "native_app.py"), "w") as fh:
    fh.write(source.format(v=1))
import native_app
keep = {"handler": native_app.handler, "one": native_app.Session()}
crowd = {i: [i, (i,)] for i in range(40_000)}  # a big container a first walk defers
crowd[-1] = native_app.Session()
many = [native_app.Session() for _ in range(5_000)]  # counted in bulk; a big list
time.sleep(0.01)
with open(os.path.join(work, "native_app.py"), "w") as fh:
    fh.write(source.format(v=2))
importlib.reload(native_app)
gc.collect()

SKIP = {"duration_s", "retained_s", "scanned_at", "taken_at", "objects"}  # (the heap size moves)


def norm(doc):
    if isinstance(doc, dict):
        return {k: norm(v) for k, v in doc.items() if k not in SKIP}
    if isinstance(doc, list):
        return [norm(x) for x in doc]
    return doc


COUNTS = ("functions_seen", "functions_judged", "codes_indexed", "classes_seen",
          "classes_judged", "walks", "instances_listed", "instances_counted")
ENGINES = []


def scan(off, full=False):
    gc.collect()  # what the scan before left (its cycles hold objects once more)
    native.disable(off)
    s = Scan(recorder, collect=False, full_walk=full)
    doc = json.loads(json.dumps(s.run()[0], default=str))
    ENGINES.append(s.engine)
    native.disable(False)
    return norm(doc), {k: getattr(s, k, None) for k in COUNTS}


def first_and_again(off, full):
    # a first scan (the index made anew) and a rescan (the index it kept)
    evidence.forget_index()
    return scan(off, full), scan(off, full)


scan(False)  # settles the heap: a scan materialises what it reads
out = {}
for full in (False, True):
    (a, ca), (a2, ca2) = first_and_again(False, full)
    (b, cb), (b2, cb2) = first_and_again(True, full)
    (c, cc), (c2, cc2) = first_and_again(False, full)
    stale = sum(len(m["stale"]) for m in a["modules"])
    out["full walk" if full else "scan"] = {
        "reports": a == a2 == b == b2 == c == c2,
        "counts": ca == cb == cc and ca2 == cb2 == cc2,
        "rescan indexed less": ca2["codes_indexed"] < ca["codes_indexed"],
        "stale entries": stale,
        "walks": ca["walks"],
        "counted": ca["instances_counted"],
    }
out["engines"] = sorted(set(ENGINES))
print(MARK + json.dumps(out))
"""


CLASSES = r"""
import ctypes, gc, json, sys
sys.path.insert(0, SRC)
from reloadscope import agent
from reloadscope.agent import native, safe
from reloadscope.agent.stale import Classifier

helper = native.get()
assert helper is not None, native.why_not()
assert helper.classes_to_judge([int], set(), [], []) is not None, "no dict offset found"


class Meta(type):
    pass


class Named(str):
    pass


class Plain: pass
class WithMeta(metaclass=Meta): pass
class NotAStr: __module__ = 3
class StrSubclass: __module__ = Named("json")
class Library: __module__ = "json"
class Point(ctypes.Structure): _fields_ = [("x", ctypes.c_int)]
nameless = {}
exec("Nameless = type('Nameless', (), {})", nameless)
odd = [Plain, WithMeta, NotAStr, StrSubclass, Library, Point, nameless["Nameless"]]
assert "__module__" not in safe.class_dict(nameless["Nameless"])
metas = [t for t in gc.get_objects() if isinstance(t, type) and issubclass(t, type)]
classes = [o for o in gc.get_objects() if type(o) in set(metas) | {type}] + odd
# Library classes holding what a scan found stale: a plain function, one in a staticmethod.
def held(): pass
def wrapped(): pass
class Holder: __module__ = "json"; cb = held
class Wrapper: __module__ = "json"; cb = staticmethod(wrapped)
odd += [Holder, Wrapper]
classes += [Holder, Wrapper]
wrappers = [o for o in gc.get_objects() if type(o) in (staticmethod, classmethod, property)]
recorder = agent.install()
out = {}
cases = {"none recorded": ([], []), "recorded": (odd[::2], []), "holding": ([], [held]),
         "wrapping": ([], [wrapped]), "both": (odd[::2], [held, wrapped])}
for case, (recorded, stale) in cases.items():
    masks = []
    for off in (False, True):
        native.disable(off)
        c = Classifier(recorder)
        c.class_index = {id(k): None for k in recorded}
        c.found = {id(f): None for f in stale}
        masks.append([id(k) for k in c._worth_judging(list(classes), None if off else wrappers)])
        native.disable(False)
    out[case] = {
        "same": masks[0] == masks[1],
        "odd judged": sorted(k.__name__ for k in odd if id(k) in set(masks[0])),
        "of": len(classes),
        "judged": len(masks[0]),
    }
print(MARK + json.dumps(out))
"""


MODULES = r"""
import json, sys, types
sys.path.insert(0, SRC)
from reloadscope.agent import evidence, native

assert native.get() is not None, native.why_not()


class Sub(types.ModuleType):
    pass


odd = {
    "rs_plain": types.ModuleType("rs_plain"),
    "rs_sub": Sub("rs_sub"),
    "rs_not_a_module": object(),
    ("rs", "tuple key"): types.ModuleType("rs_tuple_key"),
    "rs_lib": types.ModuleType("rs_lib"),
    "rs_file_not_str": types.ModuleType("rs_file_not_str"),
}
odd["rs_lib"].__file__ = evidence.library_prefixes()[0] + "rs_lib.py"
odd["rs_plain"].__file__ = "/somewhere/of/mine/rs_plain.py"
odd["rs_file_not_str"].__file__ = 3
odd["rs_again"] = odd["rs_plain"]  # one module under two names: its first wins
sys.modules.update(odd)


def tables(off):
    native.disable(off)
    m = evidence.current_modules()
    native.disable(False)
    return m


a, b = tables(False), tables(True)
out = {
    "ids": a.ids == b.ids,
    "current": a.current == b.current and all(a.current[k] is b.current[k] for k in a.current),
    "by_ns": a.by_ns.keys() == b.by_ns.keys()
    and all(a.by_ns[i][0] == b.by_ns[i][0] and a.by_ns[i][1] is b.by_ns[i][1] for i in a.by_ns),
    "by_name": a.by_name.keys() == b.by_name.keys()
    and all(a.by_name[k] is b.by_name[k] for k in a.by_name),
    "library": a.library == b.library,
    "odd": {
        "sub is current": "rs_sub" in a.current,
        "object is not": "rs_not_a_module" not in a.current,
        "tuple key is not": all(type(k) is str for k in a.current),
        "first name": a.by_ns[id(vars(odd["rs_plain"]))][0],
        "lib": id(vars(odd["rs_lib"])) in a.library,
        "file not str is lib": id(vars(odd["rs_file_not_str"])) in a.library,
        "mine is not lib": id(vars(odd["rs_plain"])) not in a.library,
    },
}
print(MARK + json.dumps(out))
"""


def _child(python: str, script: str, tmp_path: Path) -> dict:
    path = tmp_path / "child.py"
    path.write_text(f"SRC = {SRC!r}\nMARK = '@@'\n" + script)
    return run_marked(python, [str(path)], tmp_path)


@needs_helper
def test_this_checkouts_install_built_the_helper():
    """``pip install -e .`` (what the README and .ci/run run) builds it beside the agent."""
    assert BUILT.is_file(), f"{BUILT} was not built: is a C compiler installed?"


@needs_helper
@pytest.mark.parametrize("python", pythons(), ids=version_id)
def test_walks_are_the_same_object_for_object(python, tmp_path):
    got = _child(python, WALKS, tmp_path)
    assert got.pop("big container sliced") is True
    for name, checks in got.items():
        # The full walks read the big dict (in slices); the others defer what is big.
        assert checks.pop("objects") > (100_000 if name in ("full", "kinds") else 1_000), name
        gave_up = checks.pop("gave_up")
        assert gave_up is (name == "giving up"), name
        assert all(checks.values()), (name, checks)


@needs_helper
@pytest.mark.parametrize("python", pythons(), ids=version_id)
def test_scans_report_the_same_with_and_without_it(python, tmp_path):
    got = _child(python, SCANS, tmp_path)
    assert got.pop("engines") == ["native", "python"]
    for name, checks in got.items():
        assert checks["reports"] and checks["counts"], (name, checks)
        assert checks["rescan indexed less"], (name, checks)
        # handler, Session, its instances (one held, one in the crowd, 5,000 in bulk)
        assert checks["stale entries"] >= 3, (name, checks)
        assert checks["counted"] > 0, (name, checks)
    assert got["full walk"]["walks"] == 1, got


@needs_helper
@pytest.mark.parametrize("python", pythons(), ids=version_id)
def test_classes_to_judge_are_the_same_with_and_without_it(python, tmp_path):
    """The helper reads each class's ``__module__`` from its dict in place: the classes it
    keeps for judging are those the Python code keeps, odd ones included (a ``__module__``
    that is no str or a str subclass, none at all, a ctypes class, a metaclass's class)."""
    got = _child(python, CLASSES, tmp_path)
    for name, checks in got.items():
        assert checks["same"], (name, checks)
        if name not in ("wrapping", "both"):
            assert 0 < checks["judged"] < checks["of"], (name, checks)
    # A library class holding a stale function is judged; one holding it in a staticmethod
    # too (the Python code then judges every class, as before).
    assert "Holder" in got["holding"]["odd judged"], got
    assert "Holder" not in got["none recorded"]["odd judged"], got
    assert got["wrapping"]["judged"] == got["wrapping"]["of"], got
    # The program's own classes are judged (this script's module, ctypes' Point too); a
    # library's, a name that is no str, or none, are not, unless recorded.
    never = {"Library", "NotAStr", "StrSubclass", "Nameless"}
    assert not never & set(got["none recorded"]["odd judged"]), got
    assert {"Plain", "WithMeta"} <= set(got["none recorded"]["odd judged"]), got
    # Recorded: judged whatever their module (Plain, NotAStr, Library, Nameless).
    assert {"NotAStr", "Library", "Nameless"} <= set(got["recorded"]["odd judged"]), got


@needs_helper
@pytest.mark.parametrize("python", pythons(), ids=version_id)
def test_the_current_modules_tables_are_the_same_with_and_without_it(python, tmp_path):
    """The helper makes the tables of sys.modules in one pass: the same as the Python code's,
    odd entries included (a key that is no str, a value that is no module, a module
    subclass, a module under two names, a ``__file__`` that is no str)."""
    got = _child(python, MODULES, tmp_path)
    odd = got.pop("odd")
    assert all(got.values()), got
    assert odd.pop("first name") == "rs_plain", odd
    assert all(odd.values()), odd


def _copy_agent(tmp_path: Path) -> Path:
    pkg = tmp_path / "agentcopy"
    shutil.copytree(AGENT, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return pkg


def _why_not(tmp_path: Path, env: dict[str, str] | None = None) -> str:
    code = (
        "import sys\nsys.modules['_reloadscope_native'] = own = type(sys)('_reloadscope_native')\n"
        "from agentcopy import native\nm = native.get()\n"
        "assert sys.modules['_reloadscope_native'] is own\n"
        "print('loaded' if m is not None else 'refused: ' + native.why_not())\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


@needs_helper
def test_loaded_under_a_private_name_that_never_shadows_the_programs(tmp_path):
    if not GIL_LINUX:
        pytest.skip("a GIL build on Linux")
    _copy_agent(tmp_path)
    assert _why_not(tmp_path) == "loaded"


@needs_helper
def test_refused_when_another_user_may_write_it(tmp_path):
    pkg = _copy_agent(tmp_path)
    so = pkg / BUILT.name
    so.chmod(so.stat().st_mode | stat.S_IWOTH)
    assert _why_not(tmp_path).startswith("refused: ") and "may write" in _why_not(tmp_path)
    so.chmod(so.stat().st_mode & ~stat.S_IWOTH)
    pkg.chmod(pkg.stat().st_mode | stat.S_IWOTH)
    assert "may be written by another user" in _why_not(tmp_path)


@needs_helper
def test_refused_when_the_environment_says_so(tmp_path):
    _copy_agent(tmp_path)
    assert _why_not(tmp_path, {"RELOADSCOPE_NATIVE": "0"}) == "refused: RELOADSCOPE_NATIVE=0"


def test_missing_helper_is_no_error(tmp_path):
    pkg = _copy_agent(tmp_path)
    for so in pkg.glob("*.so"):
        so.unlink()
    assert _why_not(tmp_path) == "refused: not built (the package works without it)"


def _mapped(pid: int) -> bool:
    return BUILT.name in Path(f"/proc/{pid}/maps").read_text()


@needs_helper
@pytest.mark.parametrize("native", ["on", "off"])
def test_an_injected_agent_uses_it_unless_the_cli_says_not(native, tmp_path):
    """``report PID`` on a process that never imported reloadscope: the injected agent loads
    the helper beside its own files (``RELOADSCOPE_NATIVE=0`` in the CLI's environment: not),
    and the report is the same either way."""
    if not GIL_LINUX or shutil.which("gdb") is None:
        pytest.skip("gdb injection on a GIL build")
    import test_attach

    target = test_attach.start(tmp_path, "plain")
    try:
        assert not _mapped(target.pid)
        env = {**test_attach.env(), "RELOADSCOPE_NATIVE": "0" if native == "off" else "1"}
        out = subprocess.run(
            [sys.executable, "-m", "reloadscope", "report", str(target.pid), "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        doc = __import__("json").loads(out.stdout)
        (mod,) = [m for m in doc["modules"] if m["name"] == "tplug"]
        assert [p["text"] for e in mod["stale"] for p in e["paths"]] == ["__main__.keep"]
        assert _mapped(target.pid) is (native == "on")
        assert target.poll() is None
    finally:
        target.kill()
        target.wait()


def test_the_agent_and_the_helper_agree_on_their_abi_number():
    """Raised together whenever the helper's functions change (a stale build is refused)."""
    source = (Path(SRC) / "native" / "_reloadscope_native.c").read_text()
    (line,) = [x for x in source.splitlines() if x.startswith("#define RELOADSCOPE_NATIVE_ABI")]
    agent = (AGENT / "native.py").read_text()
    (expected,) = [x for x in agent.splitlines() if x.startswith("ABI = ")]
    assert int(line.split()[-1]) == int(expected.split()[-1])


@needs_helper
def test_a_helper_of_another_abi_is_refused(tmp_path):
    pkg = _copy_agent(tmp_path)
    text = (pkg / "native.py").read_text()
    (pkg / "native.py").write_text(text.replace("\nABI = ", "\nABI = 1000 + ", 1))
    assert _why_not(tmp_path) == (
        "refused: ImportError: a helper of another reloadscope (another ABI number)"
    )
