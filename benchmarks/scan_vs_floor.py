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
import json
import statistics
import sys
import tempfile
import weakref
from typing import Any

import reloadscope
from _heap import build_heap, make_stale, measure, place_apart, place_inside, timed, walks_needed


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


def walks() -> int:
    n, doubt, _ = walks_needed()
    if doubt:
        print("first walk not enough:", doubt, file=sys.stderr)
    return n


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
                "walks": walks(),
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
