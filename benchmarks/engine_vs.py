"""Two scan engines side by side on one heap: another checkout's against this one's.

Builds one of ``scan_shapes``' heaps (``--shape``, ``--objects``, ``--stale``), loads the
other checkout's ``reloadscope`` package under the name ``rsother`` beside this one (both scan
with this process's recorder), then interleaves ``--repeat`` times: the floor (one bare heap
pass), then a scan by each engine, their order alternating.  It prints the median of each
engine's scan / floor and the ratios per repetition, and checks the reports equal (timings,
dates and pids aside): the first scan of each engine on the fresh heap, each in a fork of the
same process (a scan changes the heap: on 3.11+ naming an instance's attribute materialises
its ``__dict__``), then every timed scan after one untimed scan that settles the heap.

    python benchmarks/engine_vs.py --other ../main [--shape inside] [--objects 1M]
        [--repeat 5] [--stale 100]
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import scan_shapes
from _heap import build_heap, floor, timed

ROOT = Path(__file__).resolve().parent.parent
SKIP = ("scan", "scanned_at", "taken_at", "duration_s", "pid")


def load_other(checkout: Path) -> Any:
    pkg = checkout / "src" / "reloadscope"
    spec = importlib.util.spec_from_file_location(
        "rsother", pkg / "__init__.py", submodule_search_locations=[str(pkg)]
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["rsother"] = mod
    spec.loader.exec_module(mod)
    return importlib.import_module("rsother.agent.scan")


def norm(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: norm(v) for k, v in doc.items() if k not in SKIP}
    if isinstance(doc, list):
        return [norm(x) for x in doc]
    return doc


def in_fork(scan_mod: Any, recorder: Any) -> Any:
    """The report of a first scan of this heap, made in a fork (this heap stays as it was)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            doc = norm(json.loads(json.dumps(scan_mod.Scan(recorder, collect=False).run()[0])))
            with os.fdopen(w, "w") as fh:
                fh.write(json.dumps(doc))
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as fh:
        doc = json.loads(fh.read())
    os.waitpid(pid, 0)
    return doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--other", required=True, help="the other checkout (holding src/reloadscope)")
    ap.add_argument("--shape", default="inside", choices=sorted(scan_shapes.BUILD))
    ap.add_argument("--objects", default="1M", help="heap size (default 1M)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--stale", type=int, default=100)
    a = ap.parse_args()
    import reloadscope

    reloadscope.install(listen=False)
    recorder = importlib.import_module("reloadscope.agent")._recorder
    ours = importlib.import_module("reloadscope.agent.scan")
    other = load_other(Path(a.other).resolve())
    sys.dont_write_bytecode = True
    mods = build_heap(scan_shapes.parse_size(a.objects))
    with tempfile.TemporaryDirectory() as workdir:
        probes = scan_shapes.BUILD[a.shape](a.stale, workdir, mods)
        gc.collect()
        fresh_equal = in_fork(other, recorder) == in_fork(ours, recorder)
        other.Scan(recorder, collect=False).run()  # settles the heap (see the docstring)
        floors: list[float] = []
        times: dict[str, list[float]] = {"other": [], "this": []}
        docs: dict[str, list[Any]] = {"other": [], "this": []}
        walks: dict[str, Any] = {}
        for r in range(a.repeat):
            floors.append(timed(floor))
            order = [("other", other), ("this", ours)]
            for name, mod in order if r % 2 == 0 else order[::-1]:
                s = mod.Scan(recorder, collect=False)
                t0 = time.perf_counter()
                doc = s.run()[0]
                times[name].append(time.perf_counter() - t0)
                walks[name] = [s.walks, s.doubt, getattr(s, "levels_reused", None)]
                docs[name].append(norm(json.loads(json.dumps(doc))))
        alive = sum(1 for p in probes if p() is not None)
    f = statistics.median(floors)
    out = {
        "python": sys.version.split()[0],
        "shape": a.shape,
        "objects": len(gc.get_objects()),
        "stale_alive": alive,
        "floor_s": round(f, 4),
        **{f"{k}_x": round(statistics.median(v) / f, 2) for k, v in times.items()},
        **{f"{k}_ratios": [round(t / x, 2) for t, x in zip(v, floors)] for k, v in times.items()},
        "walks_doubt_reused": walks,
        "fresh_reports_equal": fresh_equal,
        "reports_equal": docs["other"] == docs["this"],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
