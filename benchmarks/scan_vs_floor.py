"""Scan speed against the floor and against objgraph, side by side in one run.

Builds an application-like heap of about --objects gc-tracked objects (modules holding big lists
of records with string/number fields, caches keyed by strings, nested config dicts), then really
reloads a module ``bench_plug`` so that --stale old objects exist: half are distinct old
functions (each its own report entry, so each needs its own path), half are instances of the
old class.  Chains of lists, dicts and instances keep them at depths 1 to 10, in two placements:

- apart:  the chains hang from their own module ``bench_consumer`` (callbacks, registries and
          caches of their own: the usual case);
- inside: the same chains hang from the application's big record lists, so the scan must walk
          all the data to find them.

Interleaved, --repeat times per placement: ``reloadscope.scan(collect=False)``; the floor, one
bare pass over the heap (``gc.get_objects()`` plus ``gc.get_referents`` on each); and, once,
objgraph's ``find_backref_chain`` for a sample of targets at depth 5, extrapolated to all of them
(it answers one target per call).  Prints medians and the ratios that matter: scan/floor
(bar: <= 2) and objgraph/scan (bar: >= 30).  The benchmark holds its stale objects only weakly,
so it adds no holder of its own.

    python benchmarks/scan_vs_floor.py [--quick] [--objects N] [--stale N] [--repeat N] [--json]
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
import types
import weakref
from typing import Any

import reloadscope

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


def make_stale(n: int, workdir: str) -> tuple[list[tuple[int, object]], list[weakref.ref]]:
    """``n`` stale objects; returns the (depth, chain head) pairs and weak references to them.

    A chain of depth ``d`` is ``d - 1`` wraps around the object (a list, a dict, a record's
    attribute), so the object is ``d`` steps below whatever holds the head."""
    functions = n // 2
    path = os.path.join(workdir, "bench_plug.py")
    with open(path, "w") as fh:
        fh.write(plug_source(functions, 1))
    sys.path.insert(0, workdir)
    plug = importlib.import_module("bench_plug")
    heads: list[tuple[int, object]] = []
    probes: list[weakref.ref] = []
    for k in range(n):
        depth = 1 + k % 10
        target: object = getattr(plug, f"handler_{k // 2}") if k % 2 == 0 else plug.Session(k)
        probes.append(weakref.ref(target))
        node: object = target
        for level in range(depth - 1):
            kind = level % 3
            if kind == 0:
                node = [node]
            elif kind == 1:
                node = {"item": node}
            else:
                holder = Record(k)
                holder.tags = node  # type: ignore[assignment]
                node = holder
        heads.append((depth, node))
        del target, node
    with open(path, "w") as fh:
        fh.write(plug_source(functions, 2))
    t = time.time() + 10
    os.utime(path, (t, t))
    importlib.invalidate_caches()
    importlib.reload(plug)
    return heads, probes


def place_apart(heads: list[tuple[int, object]]) -> types.ModuleType:
    consumer = types.ModuleType("bench_consumer")
    sys.modules["bench_consumer"] = consumer
    for k, (_, head) in enumerate(heads):
        setattr(consumer, f"keep_{k}", head)
    return consumer


def place_inside(heads: list[tuple[int, object]], mods: list[types.ModuleType]) -> None:
    """Each chain head replaces one record in a big list (its depth grows by one)."""
    del sys.modules["bench_consumer"]
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


def check(doc: dict, probes: list[weakref.ref]) -> dict[str, Any]:
    """What the report says about the stale objects: counts, and a module path per entry."""
    entries = [s for m in doc["modules"] if m["name"] == "bench_plug" for s in m["stale"]]
    reported = sum(s["count"] for s in entries if s["kind"] in ("function", "instance"))
    depths = [
        min((p["depth"] for p in s["paths"] if p["root"] == "module"), default=None)
        for s in entries
    ]
    return {
        "alive": sum(1 for p in probes if p() is not None),
        "reported": reported,
        "entries": len(entries),
        "entries_with_module_path": sum(1 for d in depths if d is not None),
        "depths": [min(d for d in depths if d), max(d for d in depths if d)] if any(depths) else [],
    }


def measure(repeat: int) -> tuple[list[float], list[float], dict]:
    scans, floors = [], []
    doc: dict = {}
    for _ in range(repeat):
        floors.append(timed(floor))
        t0 = time.perf_counter()
        doc = reloadscope.scan(collect=False).to_json()
        scans.append(time.perf_counter() - t0)
    return scans, floors, doc


def walks_needed() -> int:
    """How many module-graph walks a scan needs here (1: the first, pruned walk sufficed)."""
    scan_mod = importlib.import_module("reloadscope.agent.scan")
    agent = importlib.import_module("reloadscope.agent")
    s = scan_mod.Scan(agent._recorder, collect=False)
    s.run()
    if s.doubt:
        print("first walk not enough:", s.doubt, file=sys.stderr)
    return int(s.walks)


def objgraph_time(
    heads: list[tuple[int, object]], probes: list[weakref.ref], sample_size: int
) -> float | None:
    """objgraph's find_backref_chain for a few targets at depth 5, extrapolated to all."""
    try:
        import objgraph
    except ImportError:
        return None
    sample = [p() for (depth, _), p in zip(heads, probes) if depth == 5][:sample_size]
    times = [
        timed(lambda o=o: objgraph.find_backref_chain(o, objgraph.is_proper_module)) for o in sample
    ]
    del sample
    return statistics.mean(times) * len(probes) if times else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=1_000_000)
    ap.add_argument("--stale", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--objgraph-sample", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="100k objects, 20 stale")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    if args.quick:
        args.objects, args.stale = 100_000, 20
    reloadscope.install(listen=False)
    sys.dont_write_bytecode = True
    mods = build_heap(args.objects)
    figures: dict[str, Any] = {"python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory() as workdir:
        heads, probes = make_stale(args.stale, workdir)
        place_apart(heads)
        gc.collect()
        figures["heap_objects"] = len(gc.get_objects())
        og_time = None
        for placement in ("apart", "inside"):
            if placement == "inside":
                place_inside(heads, mods)
                gc.collect()
            scans, floors, doc = measure(args.repeat)
            scan_s, floor_s = statistics.median(scans), statistics.median(floors)
            figures[placement] = {
                "scan_s": round(scan_s, 3),
                "floor_s": round(floor_s, 3),
                "scan_over_floor": round(scan_s / floor_s, 2),
                "walks": walks_needed(),
                **check(doc, probes),
            }
            if placement == "apart":
                og_time = objgraph_time(heads, probes, args.objgraph_sample)
    apart = figures["apart"]
    figures["objgraph_extrapolated_s"] = round(og_time, 1) if og_time else None
    figures["objgraph_over_scan"] = round(og_time / apart["scan_s"], 1) if og_time else None
    del mods, heads
    if args.json:
        print(json.dumps(figures))
        return
    print(
        f"heap {figures['heap_objects']:,} gc objects, {args.stale} stale objects at depths "
        f"1-10, Python {figures['python']}"
    )
    for placement in ("apart", "inside"):
        f = figures[placement]
        print(
            f"  {placement:<7} scan {f['scan_s']:7.3f} s  floor {f['floor_s']:7.3f} s  "
            f"scan/floor {f['scan_over_floor']:5.2f} (bar <= 2)  walks {f['walks']}  "
            f"reported {f['reported']}/{f['alive']}, module path for "
            f"{f['entries_with_module_path']}/{f['entries']} entries, depths {f['depths']}"
        )
    if og_time:
        print(
            f"  objgraph {og_time:7.1f} s extrapolated ({args.objgraph_sample} targets at depth 5)"
            f"  objgraph/scan(apart) {figures['objgraph_over_scan']:.0f} (bar >= 30)"
        )


if __name__ == "__main__":
    main()
