"""The agent is harmless: it never calls user code, keeps nothing alive, leaves nothing behind,
and loads nothing but the standard library."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import reloadscope.agent
from scenario import SRC, pythons, version_id

# The agent this test process runs (an editable install's is under src/, a plain one's is not).
AGENT = Path(reloadscope.agent.__file__).resolve().parent

HOSTILE = """
CALLS = []

def _log(name):
    CALLS.append(name)

class Meta(type):
    def __eq__(cls, other):
        _log("Meta.__eq__"); return type.__eq__(cls, other)
    def __hash__(cls):
        _log("Meta.__hash__"); return type.__hash__(cls)
    def __getattr__(cls, name):
        _log("Meta.__getattr__ " + name); raise AttributeError(name)
    def __instancecheck__(cls, obj):
        _log("Meta.__instancecheck__"); return type.__instancecheck__(cls, obj)

class Hostile(metaclass=Meta):
    def __repr__(self): _log("__repr__"); return "H"
    def __eq__(self, other): _log("__eq__"); return self is other
    def __hash__(self): _log("__hash__"); return 1
    def __getattr__(self, name): _log("__getattr__ " + name); raise AttributeError(name)
    def __getattribute__(self, name):
        _log("__getattribute__ " + name); return object.__getattribute__(self, name)
    def __len__(self): _log("__len__"); return 0
    def __iter__(self): _log("__iter__"); return iter(())
    def __bool__(self): _log("__bool__"); return True
    def __sizeof__(self): _log("__sizeof__"); return 1
    @property
    def __class__(self): _log("__class__"); return int

class HDict(dict):
    def items(self): _log("HDict.items"); return dict.items(self)
    def keys(self): _log("HDict.keys"); return dict.keys(self)
    def values(self): _log("HDict.values"); return dict.values(self)
    def __iter__(self): _log("HDict.__iter__"); return dict.__iter__(self)
    def __getitem__(self, k): _log("HDict.__getitem__"); return dict.__getitem__(self, k)

class HList(list):
    def __iter__(self): _log("HList.__iter__"); return list.__iter__(self)
    def __getitem__(self, i): _log("HList.__getitem__"); return list.__getitem__(self, i)
    def __len__(self): _log("HList.__len__"); return list.__len__(self)

def handler():
    return 1

instance = Hostile()
registry = HDict({Hostile(): handler, "h": handler})
box = HList([handler, Hostile()])
holder = Hostile()
object.__setattr__(holder, "cb", handler)

def __getattr__(name):
    _log("module.__getattr__ " + name)
    raise AttributeError(name)
"""


@pytest.mark.parametrize("mode", ["recording", "late"])
@pytest.mark.parametrize("big", [False, True], ids=["small-heap", "big-container"])
def test_scan_calls_no_user_code(scenario, big, mode):
    # Late, the evidence is the source and the other compilations of the hostile module.
    # With a big container the first walk defers it and the scan proves its paths shortest
    # (holders of hostile objects, dominated sets, deep hostile containers): still no call.
    extra = (
        "big = [[i] for i in range(20_000)]\n"
        "        deep = hostile.HList([hostile.HDict(k=[[hostile.Hostile()]])])\n"
        if big
        else ""
    )
    scenario.write("hostile.py", HOSTILE)
    r = scenario.run(f"""
        import importlib, reloadscope, rs
        {"reloadscope.install()" if mode == "recording" else ""}
        import hostile
        keep = [hostile.instance, hostile.registry, hostile.box, hostile.holder]
        {extra}
        calls = hostile.CALLS
        rs.edit(hostile, {HOSTILE!r})
        del calls[:]
        doc = reloadscope.scan().to_json()
        s = importlib.import_module("reloadscope.agent.scan").Scan(reloadscope.agent.recorder())
        s.run()
        seen = list(calls)
        rs.report(doc, calls=seen, walks=s.walks, doubt=s.doubt)
    """)
    assert r.extra["calls"] == []
    if big:
        assert r.extra["walks"] == 1, r.extra["doubt"]
    # The stale objects behind the hostile ones were still found.
    assert r.one("hostile", kind="instance", qualname="Hostile")["count"] == (5 if big else 4)
    assert r.one("hostile", kind="class", qualname="Hostile")["type"] == "Meta"
    handler = r.one("hostile", kind="function", qualname="handler")
    assert handler["count"] == 1 and handler["paths"]
    assert r.one("hostile", kind="class", qualname="Hostile")


def test_recording_keeps_nothing_alive(scenario):
    scenario.write("plug.py", "class K:\n    pass\n\ndef f():\n    return K()\n")
    r = scenario.run("""
        import gc, sys, weakref, importlib, reloadscope, rs
        reloadscope.install()
        import plug
        refs = [weakref.ref(plug.f), weakref.ref(plug.K), weakref.ref(plug.f())]
        rs.edit(plug, "def f():\\n    return 2\\n")
        del plug.K
        gc.collect()
        alive_after_reload = [r() is not None for r in refs]
        old = sys.modules.pop("plug")
        mod_ref = weakref.ref(old)
        del old, plug
        import plug
        gc.collect()
        rs.report(alive=alive_after_reload, module_alive=mod_ref() is not None)
    """)
    assert r.extra["alive"] == [False, False, False]
    assert r.extra["module_alive"] is False


def test_a_scan_leaves_no_reference_cycle_behind(scenario):
    # A cycle through the scan's own frame would keep every stale object (and the scan's
    # bookkeeping) alive until the next collection: a leak in programs that rarely collect,
    # and one extra holder that spoils the next scan's single-holder counts.
    scenario.write("plug.py", "class K:\n    pass\n\ndef f():\n    return 1\n")
    r = scenario.run("""
        import gc, weakref, reloadscope, rs
        reloadscope.install()
        import plug
        keep = [plug.K(), plug.f]
        rs.edit(plug, "class K:\\n    pass\\n\\ndef f():\\n    return 2\\n")
        gc.collect()
        gc.disable()
        doc = reloadscope.scan(collect=False).to_json()
        stale = sum(s["count"] for m in doc["modules"] for s in m["stale"])
        probe = weakref.ref(keep[0])
        del keep
        freed_without_gc = probe() is None
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        rs.report(stale=stale, freed=freed_without_gc,
                  garbage=sorted({type(o).__name__ for o in gc.garbage}))
    """)
    assert r.extra["stale"] >= 2
    assert r.extra["freed"] is True
    assert not {"Found", "_Entry", "frame", "Classifier", "Walk"} & set(r.extra["garbage"])


def test_uninstall_leaves_nothing_behind(scenario):
    scenario.write("plug.py", "def f():\n    return 1\n")
    r = scenario.run("""
        import os, sys, threading, importlib, reloadscope, rs
        meta = list(sys.meta_path)
        hook = sys.excepthook
        threads = set(threading.enumerate())
        fds = set(os.listdir("/proc/self/fd"))
        reloadscope.install(snapshot_on_exit="never.rsnap")
        reloadscope.install()
        one_finder = len(sys.meta_path) == len(meta) + 1
        import plug
        rs.edit(plug, "def f():\\n    return 2\\n")
        reloadscope.scan()
        reloadscope.uninstall()
        rs.edit(plug, "def f():\\n    return 3\\n")
        import reloadscope.agent as agent
        rs.report(
            one_finder=one_finder,
            meta_same=sys.meta_path == meta,
            hook_same=sys.excepthook is hook,
            threads_same=set(threading.enumerate()) == threads,
            fds_same=set(os.listdir("/proc/self/fd")) == fds,
            recorder=agent.recorder() is None,
        )
    """)
    assert r.extra == {
        "one_finder": True,
        "meta_same": True,
        "hook_same": True,
        "threads_same": True,
        "fds_same": True,
        "recorder": True,
    }
    assert not (scenario.root / "never.rsnap").exists()


def test_recording_is_invisible_to_the_program(scenario):
    scenario.write(
        "plug.py",
        """
        import importlib.machinery
        LOADER = type(__loader__).__name__
        SPEC_LOADER = type(__spec__.loader).__name__
        def f():
            return 1
    """,
    )
    r = scenario.run("""
        import importlib, importlib.util, reloadscope, rs
        reloadscope.install()
        found = type(importlib.util.find_spec("plug").loader).__name__
        import plug
        first = (plug.LOADER, plug.SPEC_LOADER)
        back = importlib.reload(plug) is plug
        rs.write("plug.py", "X = 1\\nraise KeyError('broken on purpose')\\n")
        try:
            importlib.reload(plug)
        except KeyError as e:
            err = repr(e)
        rs.report(found=found, first=list(first), back=back, err=err,
                  loader=type(plug.__loader__).__name__)
    """)
    assert r.extra == {
        "found": "SourceFileLoader",
        "first": ["SourceFileLoader", "SourceFileLoader"],
        "back": True,
        "err": "KeyError('broken on purpose')",
        "loader": "SourceFileLoader",
    }
    gens = r.module("plug")["generations"]
    assert gens[-1]["status"] == "failed" and gens[-1]["error"] == "KeyError: 'broken on purpose'"


def test_importing_reloadscope_loads_no_third_party_module():
    code = (
        f"import sys; sys.path.insert(0, {SRC!r}); before = set(sys.modules)\n"
        "import reloadscope, reloadscope.agent, reloadscope.snapshot\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(m for m in new if m not in sys.stdlib_module_names and m != 'reloadscope'"
        " and not m.startswith('_')))"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(0, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            out.append((node.level, node.module or ""))
    return out


def test_agent_imports_only_the_standard_library_and_itself():
    for path in AGENT.glob("*.py"):
        for level, name in _imports(path):
            if level == 0:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top == "__future__", (path, name)
            else:
                assert level == 1, f"{path.name} imports outside the agent: {'.' * level}{name}"


BOOT_CHILD = """
import os, sys, time
before = set(sys.modules)
code = open(sys.argv[1]).read()
path = f"/tmp/reloadscope-{os.getuid()}/{os.getpid()}.sock"
try:
    os.unlink(path)  # left by a killed process that had this PID: not our agent's yet
except OSError:
    pass
exec(code, {})
deadline = time.time() + 30
while not os.path.exists(path) and time.time() < deadline:
    time.sleep(0.01)
agent = sys.modules["_reloadscope_agent"]
print(sorted(set(sys.modules) - before))
print(sys.modules["_reloadscope_agent.scan"].__file__)
print([type(f).__name__ for f in sys.meta_path])
agent.stop_listening()
"""

# What loading the injected agent may import besides itself: every module imported is a few
# file reads, each giving up the GIL (slow when threads compete for it), so this list is short
# on purpose. typing, sysconfig, tempfile, datetime, hashlib, contextlib must not be on it.
AGENT_LOADS = {
    "__future__",
    "_json",
    "_socket",
    "array",
    "gc",
    "importlib",
    "importlib._bootstrap",
    "importlib._bootstrap_external",
    "importlib.machinery",
    "json",
    "json.decoder",
    "json.encoder",
    "json.scanner",
    "select",
    "selectors",
    "socket",
    "struct",
    "_struct",
    "re",
    "re._casefix",
    "re._compiler",
    "re._constants",
    "re._parser",
    "sre_compile",
    "sre_constants",
    "sre_parse",
    "_sre",
    "_locale",
    "copyreg",
    "enum",
    "collections.abc",
    "_weakrefset",
    "threading",
    "_thread",
    "weakref",
    "atexit",
    "errno",
    "operator",
    "itertools",
    "bisect",
    "_bisect",
    "_operator",
    "_collections_abc",
    "types",
    "functools",
    "collections",
    "keyword",
    "reprlib",
    "_collections",
    "_functools",
    "_weakref",
    "_abc",
    "abc",
    "math",
    # 3.14+: the C halves and pure-Python parts that types, warnings and threading now use.
    "_types",
    "_py_warnings",
    "_contextvars",
    "io",
    "warnings",
}


@pytest.mark.parametrize("python", pythons(), ids=version_id)
def test_the_injected_bootstrap_loads_the_agent_from_memory(tmp_path, python):
    from reloadscope.attach.inject import bootstrap

    boot = tmp_path / "boot.py"
    boot.write_text(bootstrap())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [python, "-S", "-c", BOOT_CHILD, str(boot)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    new, scan_file, finders = out.stdout.strip().splitlines()
    assert scan_file == str(AGENT / "scan.py")  # its own files are recognised as its own
    loaded = {m for m in eval(new) if not m.startswith("_reloadscope_agent")}
    assert loaded <= AGENT_LOADS, loaded - AGENT_LOADS
    # The temporary finder that served the agent's text is gone; the recorder's stays.
    assert "Finder" not in eval(finders)


LAYERS = ["agent", "model", "textreport", "snapshot", "attach", "ui", "cli", "integrations"]
RANK = {
    "agent": 0,
    "model": 1,
    "textreport": 1,
    "snapshot": 1,
    "attach": 2,
    "ui": 3,
    "cli": 4,
    "integrations": 5,
}


def _layer(path: Path) -> str | None:
    rel = path.relative_to(Path(SRC) / "reloadscope")
    head = rel.parts[0].removesuffix(".py")
    return head if head in RANK else None


def test_layers_only_import_downwards():
    root = Path(SRC) / "reloadscope"
    for path in root.rglob("*.py"):
        layer = _layer(path)
        if layer is None:
            continue
        pkg_depth = len(path.relative_to(root).parts) - 1
        for level, name in _imports(path):
            if level == 0:
                if not name.startswith("reloadscope."):
                    continue
                target = name.split(".")[1]
            else:
                up = level - 1 - pkg_depth  # relative to the reloadscope package
                if up < 0:
                    continue  # within the same subpackage
                target = (name or "").split(".")[0]
            if target in RANK:
                assert RANK[target] <= RANK[layer], f"{path}: {layer} imports {target}"


def test_agent_compiles_on_every_python():
    for python in pythons():
        files = [str(p) for p in AGENT.glob("*.py")]
        p = subprocess.run([python, "-m", "py_compile", *files], capture_output=True, text=True)
        assert p.returncode == 0, (python, p.stderr)


def test_calling_the_finder_directly_never_raises(scenario):
    r = scenario.run("""
        import sys, reloadscope, rs
        reloadscope.install()
        finder = sys.meta_path[0]
        results = [finder.find_spec("json"), finder.find_spec("no_such_module_here", None)]
        exec("finder.find_spec('os')", {"finder": finder})
        rs.report(results=[r is None for r in results])
    """)
    assert r.extra["results"] == [True, True]


ASYNCIO_FREELIST = """
import asyncio, atexit, gc, importlib, os, sys, time
sys.path.insert(0, sys.argv[1])
import reloadscope
reloadscope.install()
sys.path.insert(0, os.getcwd())
with open("plug.py", "w") as fh:
    fh.write("def f():\\n    return 1\\n")
import plug
atexit.register(plug.f)  # held where gc cannot see: the scan walks everything looking for it
t = time.time() + 10
os.utime("plug.py", (t, t))
importlib.reload(plug)
loop = asyncio.new_event_loop()
for _ in range(3):  # iterating a future (as every await does) fills _asyncio's free list
    it = iter(loop.create_future())
    del it
gc.collect()
print("ready", os.getpid(), flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("python", pythons(), ids=version_id)
def test_a_scan_of_an_asyncio_process_ends_and_leaves_it_running(tmp_path, python):
    # CPython 3.12's _asyncio hands out its free list of dead FutureIters when traversed
    # (gh-122695): a scan that gave gc.get_referents that module never ended there.
    p = subprocess.Popen(
        [python, "-c", ASYNCIO_FREELIST, SRC],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert p.stdout is not None and p.stdout.readline().startswith("ready")
        deadline = time.time() + 60
        while True:
            out = subprocess.run(
                [sys.executable, "-m", "reloadscope", "report", str(p.pid), "--json"],
                capture_output=True,
                text=True,
                env=dict(os.environ, PYTHONPATH=SRC),
                timeout=60,
            )
            if out.returncode == 0 or time.time() > deadline:
                break
            time.sleep(0.2)
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        assert doc["scan"]["complete"] is True
        assert [m["name"] for m in doc["modules"]] == ["plug"]  # the walk looked everywhere
        assert p.poll() is None
    finally:
        p.kill()
        p.wait()
