"""What the scan benchmarks share: an application-like heap, stale objects made by a real reload,
the chains that hold them at a chosen depth, the floor, and a look at the scan's walks.

Imported by the scan benchmarks (run from this directory, which is then first on
``sys.path``).  Also what they share to compare the engines side by side in one run: the
native helper (``agent/native.py``) or the pure-Python code, toggled with ``native.disable``
between the scans of a repetition (``ENGINES``, ``choose_engines``, ``use_engine``), and the
normalised report two scans of the same heap must agree on (``comparable``).
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import sys
import time
import types
import weakref
from typing import Any

PLUG_CLASS = """
class Session:
    def __init__(self, n):
        self.n = n
"""


def plug_source(functions: int, version: int) -> str:
    defs = "".join(
        f"\ndef handler_{k}(event):\n    return (event, {version})\n" for k in range(functions)
    )
    return PLUG_CLASS + defs


class Record:
    def __init__(self, i: int) -> None:
        self.id = i
        self.name = f"user{i}"
        self.score = i * 0.5
        self.tags = [f"t{i % 7}", f"g{i % 3}"]
        self.meta = {"created": i, "source": "import", "flags": (i % 2, i % 5)}


def build_heap(objects: int) -> list[types.ModuleType]:
    """Application-like modules, registered in sys.modules, holding ~``objects`` tracked objects."""
    # Tracked per record: the Record and its tags list, plus its __dict__ before 3.11 (the meta
    # dict holds only atoms, so gc untracks it).
    per_record = 2 if sys.version_info >= (3, 11) else 3
    chunk = objects // per_record // 4
    mods = []
    for m in range(4):
        mod = types.ModuleType(f"bench_app_{m}")
        mod.records = [Record(m * chunk + i) for i in range(chunk)]  # type: ignore[attr-defined]
        mod.by_name = {r.name: r for r in mod.records[: chunk // 4]}  # type: ignore[attr-defined]
        mod.config = {f"section{i}": {"k": i, "v": [i, i + 1]} for i in range(2000)}  # type: ignore[attr-defined]
        sys.modules[mod.__name__] = mod
        mods.append(mod)
    return mods


def wrap(target: object, depth: int, k: int, also: object = None) -> object:
    """The head of a chain of ``depth - 1`` wraps around ``target`` (a list, a dict, a record's
    attribute, in turn), so that ``target`` is ``depth`` steps below whatever holds the head.
    With ``also``, every wrap holds ``also`` as well (beside the chain, not on it)."""
    node = target
    for level in range(depth - 1):
        kind = level % 3
        if kind == 0:
            node = [node] if also is None else [node, also]
        elif kind == 1:
            node = {"item": node} if also is None else {"item": node, "data": also}
        else:
            holder = Record(k)
            holder.tags = node  # type: ignore[assignment]
            if also is not None:
                holder.data = also  # type: ignore[attr-defined]
            node = holder
    return node


def import_fresh(workdir: str, name: str, source: str) -> types.ModuleType:
    """Write ``workdir/name.py`` and import it (``workdir`` goes first on ``sys.path``)."""
    with open(os.path.join(workdir, f"{name}.py"), "w") as fh:
        fh.write(source)
    if workdir not in sys.path:
        sys.path.insert(0, workdir)
    return importlib.import_module(name)


def reload_for_real(mod: types.ModuleType, workdir: str, source: str) -> None:
    """Rewrite the module's file (with a later mtime, so no cached bytecode is used) and reload
    it: what the module made before now is stale."""
    path = os.path.join(workdir, f"{mod.__name__}.py")
    with open(path, "w") as fh:
        fh.write(source)
    t = time.time() + 10
    os.utime(path, (t, t))
    importlib.invalidate_caches()
    importlib.reload(mod)


def make_stale(n: int, workdir: str) -> tuple[list[tuple[int, object]], list[weakref.ref]]:
    """``n`` stale objects; returns the (depth, chain head) pairs and weak references to them.

    Half are distinct old functions of ``bench_plug``, half instances of its old class; the
    object ``k`` is at depth ``1 + k % 10`` below whatever holds its head (see ``wrap``)."""
    functions = n // 2
    plug = import_fresh(workdir, "bench_plug", plug_source(functions, 1))
    heads: list[tuple[int, object]] = []
    probes: list[weakref.ref] = []
    for k in range(n):
        depth = 1 + k % 10
        target: object = getattr(plug, f"handler_{k // 2}") if k % 2 == 0 else plug.Session(k)
        probes.append(weakref.ref(target))
        heads.append((depth, wrap(target, depth, k)))
        del target
    reload_for_real(plug, workdir, plug_source(functions, 2))
    return heads, probes


def place_apart(heads: list[tuple[int, object]]) -> types.ModuleType:
    consumer = types.ModuleType("bench_consumer")
    sys.modules["bench_consumer"] = consumer
    for k, (_, head) in enumerate(heads):
        setattr(consumer, f"keep_{k}", head)
    return consumer


def place_inside(heads: list[tuple[int, object]], mods: list[types.ModuleType]) -> None:
    """Each chain head replaces one record in a big list (its depth grows by one)."""
    sys.modules.pop("bench_consumer", None)
    for k, (_, head) in enumerate(heads):
        records = mods[k % len(mods)].records  # type: ignore[attr-defined]
        records[(k * 7919) % len(records)] = head


def floor() -> None:
    objs = gc.get_objects()
    for o in objs:
        gc.get_referents(o)


def timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(repeat: int) -> tuple[list[float], list[float], dict]:
    """Interleaved, ``repeat`` times: the floor, then ``reloadscope.scan(collect=False)``.
    Returns the scan times, the floor times and the last report document."""
    import reloadscope  # here: scan_shapes' driver runs where reloadscope may not be importable

    scans, floors = [], []
    doc: dict = {}
    for _ in range(repeat):
        floors.append(timed(floor))
        t0 = time.perf_counter()
        doc = reloadscope.scan(collect=False).to_json()
        scans.append(time.perf_counter() - t0)
    return scans, floors, doc


def engine_scan(**options: Any) -> Any:
    """A ``reloadscope.agent.scan.Scan`` of this process (not run yet), with the scan engine's
    own knobs: ``full_walk=True`` walks everything (the exhaustive reference)."""
    scan_mod = importlib.import_module("reloadscope.agent.scan")
    agent = importlib.import_module("reloadscope.agent")
    return scan_mod.Scan(agent._recorder, collect=False, **options)


def walks_needed() -> tuple[int, str | None, dict]:
    """How many module-graph walks a scan needs here (1: the first, pruned walk sufficed), why
    the first walk was not enough (None if it was), and the scan's report document."""
    s = engine_scan()
    doc = s.run()[0]
    return int(s.walks), s.doubt, doc


# -- the engines: the native helper or the pure-Python code, in one process --------------------
ENGINES = ("native", "python")


def _native() -> Any:
    return importlib.import_module("reloadscope.agent.native")


def native_state() -> str:
    """``loaded``, or ``not loaded (<why>)``: whether this process's scans can use the native
    helper (asked with the helper enabled, which is how it is left)."""
    native = _native()
    native.disable(False)
    if native.get() is not None:
        return "loaded"
    return f"not loaded ({native.why_not() or 'unknown'})"


def choose_engines(text: str | None) -> list[str]:
    """The engines to compare, from ``--engines`` (``native,python``, either alone): by
    default both when the helper loads here, else the Python code alone."""
    loads = native_state() == "loaded"
    if not text:
        return list(ENGINES) if loads else ["python"]
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    for n in names:
        if n not in ENGINES:
            raise SystemExit(f"unknown engine {n!r} (engines: {', '.join(ENGINES)})")
    if "native" in names and not loads:
        raise SystemExit(f"--engines native: the native helper is {native_state()}")
    if not names:
        raise SystemExit("--engines: name at least one of native, python")
    return names


def use_engine(name: str) -> None:
    """Scans from now on run on ``name``'s code: ``native`` (the helper) or ``python``."""
    _native().disable(name == "python")


def in_order(engines: list[str], repetition: int) -> list[str]:
    """The engines in the order they run in this repetition: alternating, so that neither is
    always the one right after the floor."""
    return engines if repetition % 2 == 0 else engines[::-1]


def comparable(doc: dict) -> str:
    """The report without what differs between two scans of the same heap (timings)."""
    return json.dumps(
        {"modules": doc["modules"], "blind_spots": doc["scan"].get("blind_spots")},
        sort_keys=True,
        default=str,
    )


def keep_differing(what: str, docs: dict[str, dict]) -> str:
    """Write the normalised reports that should have been equal to files; says where."""
    import tempfile

    out = tempfile.mkdtemp(prefix="reloadscope-differ-")
    for name, doc in docs.items():
        with open(os.path.join(out, f"{name}.json"), "w") as fh:
            fh.write(json.dumps(json.loads(comparable(doc)), indent=1, sort_keys=True))
    return f"{what}: the reports differ (normalised, in {out}: {', '.join(docs)})"


def ratio_text(times: list[float], floors: list[float], digits: int = 2) -> str:
    """Median time over median floor, and the range of the per-repetition ratios (each time
    over its own repetition's floor), as the benchmarks print them."""
    import statistics

    r = sorted(t / f for t, f in zip(times, floors))
    med = statistics.median(times) / statistics.median(floors)
    return f"{med:.{digits}f}x floor (per repetition {r[0]:.{digits}f}-{r[-1]:.{digits}f})"
