"""Scan speed against the floor and against objgraph, side by side in one run.

Builds an application-like heap of about --objects gc-tracked objects (modules holding records
with string/number fields, nested config dicts, caches keyed by strings, classes with many live
instances), then makes --stale stale objects at depths 1 to 10 below a consumer module's
namespace (old functions and instances of an old class, kept by chains of lists, dicts and
instances) by really rewriting and reloading a module.  Then, interleaved, --repeat times:

- scan:  ``reloadscope.scan(collect=False)`` (finds the stale objects and their paths);
- floor: ``objs = gc.get_objects()`` plus ``gc.get_referents(o)`` for each: one bare pass;
- objgraph: ``objgraph.find_backref_chain(target, objgraph.is_proper_module)`` for a sample of
  targets at depth 5, extrapolated to all targets (it answers one target per call).

Prints medians and the ratios that matter: scan/floor (bar: <= 2) and objgraph/scan (bar: >= 30).

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
from typing import Any

import reloadscope

PLUG_V1 = """
class Session:
    def __init__(self, n):
        self.n = n

def handler(event):
    return event
"""
PLUG_V2 = PLUG_V1.replace("return event", "return (event,)")


class Record:
    def __init__(self, i: int) -> None:
        self.id = i
        self.name = f"user{i}"
        self.score = i * 0.5
        self.tags = [f"t{i % 7}", f"g{i % 3}"]
        self.meta = {"created": i, "source": "import", "flags": (i % 2, i % 5)}


def build_heap(objects: int) -> list[types.ModuleType]:
    """Application-like modules, registered in sys.modules, holding ~``objects`` tracked objects."""
    mods = []
    per_record = 3  # Record, its tags list and its meta dict (plus the lists and dicts around)
    n_records = objects // per_record
    chunk = n_records // 4
    for m in range(4):
        mod = types.ModuleType(f"bench_app_{m}")
        mod.records = [Record(m * chunk + i) for i in range(chunk)]  # type: ignore[attr-defined]
        mod.by_name = {r.name: r for r in mod.records[: chunk // 4]}  # type: ignore[attr-defined]
        mod.config = {f"section{i}": {"k": i, "v": [i, i + 1]} for i in range(2000)}  # type: ignore[attr-defined]
        sys.modules[mod.__name__] = mod
        mods.append(mod)
    return mods


def make_stale(n: int, workdir: str) -> tuple[types.ModuleType, list[tuple[int, object]]]:
    """``n`` stale objects at depths 1..10 under module ``bench_consumer``; returns (depth, obj)."""
    path = os.path.join(workdir, "bench_plug.py")
    with open(path, "w") as fh:
        fh.write(PLUG_V1)
    sys.path.insert(0, workdir)
    plug = importlib.import_module("bench_plug")
    consumer = types.ModuleType("bench_consumer")
    sys.modules["bench_consumer"] = consumer
    made: list[tuple[int, object]] = []
    for k in range(n):
        depth = 1 + k % 10
        if k % 2:
            target: object = plug.Session(k)
        else:
            # A fresh function object with the old code: each stale function is its own object.
            fn = plug.handler
            target = types.FunctionType(fn.__code__, fn.__globals__, f"handler_{k}")
        node: object = target
        for level in range(depth - 1):
            kind = level % 3
            if kind == 0:
                node = [node]
            elif kind == 1:
                node = {"item": node}
            else:
                holder = Record(k)
                holder.meta = {"ref": node}  # type: ignore[assignment]
                node = holder
        setattr(consumer, f"keep_{k}", node)
        made.append((depth, target))
    with open(path, "w") as fh:
        fh.write(PLUG_V2)
    t = time.time() + 10
    os.utime(path, (t, t))
    importlib.invalidate_caches()
    importlib.reload(plug)
    return consumer, made


def floor() -> None:
    objs = gc.get_objects()
    for o in objs:
        gc.get_referents(o)


def timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=1_000_000)
    ap.add_argument("--stale", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--objgraph-sample", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="100k objects, 20 stale")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    if args.quick:
        args.objects, args.stale = 100_000, 20
    reloadscope.install(listen=False)
    sys.dont_write_bytecode = True
    mods = build_heap(args.objects)
    with tempfile.TemporaryDirectory() as workdir:
        consumer, made = make_stale(args.stale, workdir)
        gc.collect()
        heap = len(gc.get_objects())
        scans, floors = [], []
        report = None
        for _ in range(args.repeat):
            floors.append(timed(floor))
            t0 = time.perf_counter()
            report = reloadscope.scan(collect=False)
            scans.append(time.perf_counter() - t0)
        assert report is not None
        doc = report.to_json()
        ids_with_path = {
            p["object_id"]
            for m in doc["modules"]
            for s in m["stale"]
            for p in s["paths"]
            if p["root"] == "module"
        }
        counted = sum(
            s["count"]
            for m in doc["modules"]
            if m["name"] == "bench_plug"
            for s in m["stale"]
            if s["kind"] in ("function", "instance")
        )
        entries = [s for m in doc["modules"] if m["name"] == "bench_plug" for s in m["stale"]]
        with_path = sum(1 for _, obj in made if id(obj) in ids_with_path)
        every_entry_has_path = all(any(p["root"] == "module" for p in s["paths"]) for s in entries)
        og_time = None
        try:
            import objgraph

            sample = [obj for depth, obj in made if depth == 5][: args.objgraph_sample]
            og = [
                timed(lambda o=o: objgraph.find_backref_chain(o, objgraph.is_proper_module))
                for o in sample
            ]
            og_time = statistics.mean(og) * len(made) if og else None
        except ImportError:
            pass
    del mods, consumer
    scan_s, floor_s = statistics.median(scans), statistics.median(floors)
    figures = {
        "heap_objects": heap,
        "stale_made": len(made),
        "stale_counted": counted,
        "sampled_with_module_path": with_path,
        "every_entry_has_module_path": every_entry_has_path,
        "scan_s": round(scan_s, 3),
        "floor_s": round(floor_s, 3),
        "scan_over_floor": round(scan_s / floor_s, 2),
        "objgraph_extrapolated_s": round(og_time, 1) if og_time else None,
        "objgraph_over_scan": round(og_time / scan_s, 1) if og_time else None,
        "python": sys.version.split()[0],
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(
        f"heap {heap:,} gc objects, {len(made)} stale objects at depths 1-10 "
        f"(found {counted}; every entry has a module path: {every_entry_has_path}), "
        f"Python {figures['python']}"
    )
    print(
        f"  scan      {scan_s:8.3f} s   scan/floor   {figures['scan_over_floor']:6.2f}  (bar <= 2)"
    )
    print(f"  floor     {floor_s:8.3f} s")
    if og_time:
        print(
            f"  objgraph  {og_time:8.1f} s   objgraph/scan {figures['objgraph_over_scan']:6.0f}  "
            f"(bar >= 30; {args.objgraph_sample} targets at depth 5, extrapolated)"
        )


if __name__ == "__main__":
    main()
