"""Snapshot format cost for a big report: write time, load time and file size.

Builds a report document with --entries stale entries (default 10,000), each with three paths
and hints, plus the source text of a few generations, then measures in one run, side by side:
writing the .rsnap file (gzip JSON, atomic), loading it with full validation, and, for scale,
plain ``json.dumps``/``json.loads`` of the same document.  Prints ratios as well as times.

    python benchmarks/bench_snapshot.py [--entries 10000] [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from reloadscope.model import Report
from reloadscope.snapshot import load, write

HINT = "a bound method taken before the reload: bind it again from the new object"


def make_document(entries: int) -> tuple[dict[str, Any], dict[str, dict[int, str]]]:
    modules = []
    per_module = 100
    for m in range((entries + per_module - 1) // per_module):
        name = f"app.plugins.mod{m}"
        stale = []
        for i in range(min(per_module, entries - m * per_module)):
            stale.append(
                {
                    "kind": ("function", "class", "instance")[i % 3],
                    "qualname": f"Handler{i}.on_event_{i}",
                    "type": "function",
                    "generation": i % 4,
                    "count": 1 + i % 7,
                    "size": 136 + i,
                    "paths": [
                        {
                            "root": "module",
                            "text": f"app.registry.HANDLERS['event_{i}'][{j}].__func__",
                            "hint": HINT,
                            "depth": 3 + j,
                            "object_id": 140000000000000 + i * 64 + j,
                        }
                        for j in range(3)
                    ],
                }
            )
        modules.append(
            {
                "name": name,
                "file": f"/srv/app/plugins/mod{m}.py",
                "current_generation": 4,
                "generations": [
                    {
                        "number": g,
                        "started_at": "2026-11-23T12:00:00+00:00",
                        "source_sha256": "ab" * 32,
                        "kind": "reload",
                        "status": "finished",
                        "trigger": "/srv/app/main.py:42",
                        "error": None,
                    }
                    for g in range(5)
                ],
                "leftover_names": ["old_helper"],
                "stale": stale,
                "warnings": [],
            }
        )
    doc = {
        "format": "reloadscope-report",
        "version": 1,
        "process": {"pid": 4242, "python": "3.11.7", "argv": ["serve.py"]},
        "taken_at": "2026-11-23T12:00:00+00:00",
        "scan": {"duration_s": 0.5, "objects": 1_000_000, "complete": True},
        "modules": modules,
    }
    source = "def handler(event):\n    return event\n" * 200
    sources = {m["name"]: {g: source for g in range(5)} for m in modules[:10]}
    return doc, sources


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    doc, sources = make_document(args.entries)
    report = Report.from_json(doc, sources)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "big.rsnap")
        t_write = median_time(lambda: write(report, path), args.repeat)
        t_load = median_time(lambda: load(path), args.repeat)
        size = os.path.getsize(path)
        assert load(path).to_json() == doc
    raw = json.dumps(doc)
    t_dumps = median_time(lambda: json.dumps(doc), args.repeat)
    t_loads = median_time(lambda: json.loads(raw), args.repeat)
    figures = {
        "entries": args.entries,
        "write_s": round(t_write, 4),
        "load_s": round(t_load, 4),
        "file_bytes": size,
        "plain_json_bytes": len(raw),
        "json_dumps_s": round(t_dumps, 4),
        "json_loads_s": round(t_loads, 4),
        "write_over_dumps": round(t_write / t_dumps, 2),
        "load_over_loads": round(t_load / t_loads, 2),
        "compression_ratio": round(len(raw) / size, 1),
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"{args.entries} stale entries, 3 paths each")
    print(f"  write .rsnap   {t_write:.3f} s  ({figures['write_over_dumps']}x json.dumps)")
    print(f"  load + check   {t_load:.3f} s  ({figures['load_over_loads']}x json.loads)")
    print(
        f"  file size      {size / 1e6:.2f} MB  (plain JSON {len(raw) / 1e6:.2f} MB, "
        f"{figures['compression_ratio']}x smaller)"
    )


if __name__ == "__main__":
    main()
