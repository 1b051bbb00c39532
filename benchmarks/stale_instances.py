"""Memory and stall of a scan when one old class has very many live instances.

The shape seen in the field: a class reloaded while a cache (a module-level list) keeps its
instances, so every one of them is a stale object of one report entry.  Each count runs in a
child interpreter of its own (``--one``): it imports a module ``bench_cache`` whose class
``Item`` fills ``bench_cache.CACHE`` with --counts instances (plus one kept in a dict, one
step deeper), really reloads the module (the cache survives the reload, the class does not),
then, --repeat times, interleaved:

- a bare ``gc.get_objects()`` (kept until measured, as a scan keeps it), and
- ``reloadscope.scan(collect=False)``,

each under a ticker thread that sleeps 1 ms in a loop (its longest gap is the longest the
pass kept it from running), and each with its peak RSS read from /proc/self/status (VmHWM,
reset through /proc/self/clear_refs after glibc's ``malloc_trim``) against the RSS before.
The bar: extra peak memory at most 10% of the process's RSS + 20 MB, and a stall at most
1.5x that of the bare ``gc.get_objects()``.

Every report is checked: one instance entry with the right count and summed size
(``object.__sizeof__`` of each instance), sample paths that evaluate to instances of the old
class, and (from the engine's own counters) the instances the scan searched paths for:
no more than it shows.

    python benchmarks/stale_instances.py [--counts 300k,1M] [--repeat 3]
        [--pythons current|all|3.11,3.13,...] [--src DIR] [--quick] [--json]

--src measures another reloadscope's src directory (e.g. an export of an older commit).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scan_shapes import (
    Ticker,
    engine_state,
    interpreters,
    parse_size,
    reset_peak,
    trim_malloc,
    vm_kb,
)

ROOT = Path(__file__).resolve().parent.parent
COUNTS = "300k,1M"
QUICK_COUNT = 20_000  # still far more than the scan lists one by one (LISTED_PER_CLASS)
SOURCE = """
class Item:
    def __init__(self, n):
        self.n = n
        self.tag = "v@V@"

try:
    CACHE
except NameError:
    CACHE = []
    BY_KEY = {}
"""


# -- one count (child) ------------------------------------------------------------------------
def build(count: int, workdir: str) -> Any:
    path = os.path.join(workdir, "bench_cache.py")
    with open(path, "w") as fh:
        fh.write(SOURCE.replace("@V@", "1"))
    sys.path.insert(0, workdir)
    mod = importlib.import_module("bench_cache")
    mod.CACHE.extend(mod.Item(i) for i in range(count - 1))
    mod.BY_KEY["last"] = mod.Item(count - 1)
    with open(path, "w") as fh:
        fh.write(SOURCE.replace("@V@", "2"))
    t = time.time() + 10
    os.utime(path, (t, t))
    importlib.invalidate_caches()
    importlib.reload(mod)
    return mod


def measured(fn: Any) -> tuple[Any, float, float, dict | None]:
    """``fn()``'s result, its wall time, the ticker's longest stall and the memory figures
    (None when the peak cannot be reset)."""
    trim_malloc()
    can_reset = reset_peak()
    before = vm_kb("VmRSS")
    with Ticker() as t:
        t0 = time.perf_counter()
        result = fn()
        took = time.perf_counter() - t0
    peak = vm_kb("VmHWM")
    mem = None
    if can_reset and before is not None and peak is not None:
        mem = {"rss_kb": before, "extra_kb": max(0, peak - before)}
    return result, took, t.max_gap, mem


def _bare() -> int:
    objs = gc.get_objects()
    n = len(objs)
    del objs
    return n


def _scan() -> dict:
    import reloadscope

    return reloadscope.scan(collect=False).to_json()


def check(doc: dict, mod: Any, count: int) -> list[str]:
    problems = []
    entries = [
        s
        for m in doc["modules"]
        if m["name"] == "bench_cache"
        for s in m["stale"]
        if s["kind"] == "instance"
    ]
    if len(entries) != 1:
        return [f"{len(entries)} instance entries, not 1"]
    e = entries[0]
    old = type(mod.CACHE[0])
    if e["count"] != count:
        problems.append(f"count {e['count']}, not {count}")
    size = count * object.__sizeof__(mod.CACHE[0])
    if e["size"] != size:
        problems.append(f"size {e['size']}, not {size}")
    paths = [p for p in e["paths"] if p["root"] == "module"]
    if not paths:
        problems.append("no module path")
    for p in paths:
        try:
            got = eval(p["text"], {"bench_cache": mod})
        except Exception as exc:  # a path that does not evaluate is what this checks
            problems.append(f"{p['text']}: {exc!r}")
            continue
        if type(got) is not old or id(got) != p["object_id"]:
            problems.append(f"{p['text']} is not the reported instance")
    if min((p["depth"] for p in paths), default=None) != 2:
        problems.append(f"shortest depth {[p['depth'] for p in paths]}, not 2")
    return problems


def searched() -> dict[str, int]:
    """The engine's own counters for one scan: instances listed one by one, counted in bulk,
    and the samples the walks found by class."""
    scan_mod = importlib.import_module("reloadscope.agent.scan")
    agent = importlib.import_module("reloadscope.agent")
    s = scan_mod.Scan(agent._recorder, collect=False)
    s.run()
    # (An engine without these counters, --src, listed every instance: None.)
    return {
        "listed": getattr(s, "instances_listed", None),
        "counted": getattr(s, "instances_counted", None),
        "sampled": getattr(s, "instances_sampled", None),
        "walks": s.walks,
    }


def spread(xs: list[float], digits: int = 4) -> dict[str, float]:
    return {
        "min": round(min(xs), digits),
        "median": round(statistics.median(xs), digits),
        "max": round(max(xs), digits),
    }


def run_one(count: int, repeat: int) -> dict[str, Any]:
    import reloadscope

    reloadscope.install(listen=False)
    sys.dont_write_bytecode = True
    with tempfile.TemporaryDirectory() as workdir:
        mod = build(count, workdir)
        gc.collect()
        heap = _bare()
        _scan()  # a first scan: what it changes in the heap once (see scan_shapes' drift)
        gc.collect()
        bare_s, bare_stall, bare_mem, scan_s, scan_stall, scan_mem = [], [], [], [], [], []
        problems: list[str] = []
        for _ in range(repeat):
            _, took, stall, mem = measured(_bare)
            bare_s.append(took)
            bare_stall.append(stall)
            bare_mem.append(mem)
            doc, took, stall, mem = measured(_scan)
            scan_s.append(took)
            scan_stall.append(stall)
            scan_mem.append(mem)
            problems += check(doc, mod, count)
            del doc
        engine = searched()
        n = (engine["listed"] or 0) + (engine["sampled"] or 0)
        if engine["listed"] is None or n > 3:
            problems.append(f"paths searched for {engine}: more instances than the 3 shown")
    mem = [m for m in scan_mem if m is not None]
    worst = max(mem, key=lambda m: m["extra_kb"]) if mem else None
    bare = [m for m in bare_mem if m is not None]
    ratios = [s / b for s, b in zip(scan_stall, bare_stall)]
    out: dict[str, Any] = {
        "python": sys.version.split()[0],
        "reloadscope": os.path.dirname(reloadscope.__file__),
        "count": count,
        "heap_objects": heap,
        "repeat": repeat,
        "scan_s": spread(scan_s),
        "get_objects_s": spread(bare_s),
        "stall_scan_ms": [round(x * 1000, 1) for x in scan_stall],
        "stall_get_objects_ms": [round(x * 1000, 1) for x in bare_stall],
        # Per repetition, each scan against the bare pass just before it.
        "stall_ratio": spread(ratios, 2),
        "stall_ratio_of_maxima": round(max(scan_stall) / max(bare_stall), 2),
        "rss_mb": round(worst["rss_kb"] / 1024, 1) if worst else None,
        "mem_extra_mb": round(worst["extra_kb"] / 1024, 1) if worst else None,
        "mem_extra_pct": round(100 * worst["extra_kb"] / worst["rss_kb"], 1) if worst else None,
        "mem_bound_mb": round(worst["rss_kb"] / 1024 * 0.1 + 20, 1) if worst else None,
        "get_objects_extra_mb": round(max(m["extra_kb"] for m in bare) / 1024, 1) if bare else None,
        "engine": engine,
        "problems": list(dict.fromkeys(problems)),
    }
    out["ok"] = not out["problems"]
    return out


# -- the driver -------------------------------------------------------------------------------
def child(python: str, count: int, repeat: int, src: str) -> dict[str, Any]:
    cmd = [python, __file__, "--one", str(count), "--repeat", str(repeat)]
    env = {**os.environ, "PYTHONPATH": src}
    p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
    lines = p.stdout.strip().splitlines()
    if p.returncode != 0 or not lines:
        return {"count": count, "ok": False, "error": f"exit {p.returncode}"}
    return json.loads(lines[-1])


def label(n: int) -> str:
    return f"{n / 1e6:g}M" if n % 100_000 == 0 and n >= 1_000_000 else f"{n / 1e3:g}k"


COLUMNS = (
    "python",
    "instances",
    "heap",
    "scan s",
    "g_o s",
    "stall ms",
    "g_o stall ms",
    "stall x",
    "RSS MB",
    "extra MB",
    "extra %",
    "bound MB",
    "searched",
    "check",
)


def cells(r: dict[str, Any]) -> list[str]:
    head = [r.get("python", "?"), label(r["count"])]
    if "error" in r:
        return [*head, *[""] * (len(COLUMNS) - 3), f"child failed: {r['error']}"]
    mem = r["rss_mb"] is not None
    e = r["engine"]
    return [
        *head,
        f"{r['heap_objects']:,}",
        f"{r['scan_s']['median']:.3f}",
        f"{r['get_objects_s']['median']:.3f}",
        " ".join(f"{x:.0f}" for x in r["stall_scan_ms"]),
        " ".join(f"{x:.0f}" for x in r["stall_get_objects_ms"]),
        f"{r['stall_ratio']['median']:.2f} ({r['stall_ratio']['min']:.2f}-"
        f"{r['stall_ratio']['max']:.2f})",
        f"{r['rss_mb']:.0f}" if mem else "null",
        f"{r['mem_extra_mb']:.1f}" if mem else "null",
        f"{r['mem_extra_pct']:.1f}" if mem else "null",
        f"{r['mem_bound_mb']:.1f}" if mem else "null",
        "all" if e["listed"] is None else f"{e['listed'] + e['sampled']}",
        "ok" if r["ok"] else "; ".join(r["problems"]),
    ]


def table(runs: list[dict[str, Any]]) -> list[str]:
    rows = [list(COLUMNS), *map(cells, runs)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return [
        "  ".join(
            c.ljust(w) if name in ("python", "check") else c.rjust(w)
            for name, c, w in zip(COLUMNS, row, widths)
        ).rstrip()
        for row in rows
    ]


LEGEND = (
    "scan s / g_o s: median wall time of a scan / a bare gc.get_objects(); stall ms: the "
    "longest gap of a 1 ms ticker during each scan / each bare pass; stall x: scan stall over "
    "the bare pass's just before it, median (min-max); extra MB and %: the scan's worst extra "
    "peak RSS, and against the RSS; bound: 10% of the RSS + 20 MB; searched: instances the scan "
    "searched paths for"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", default=COUNTS, help=f"stale instances (default {COUNTS})")
    ap.add_argument("--repeat", type=int, help="repetitions (default 3; 1 with --quick)")
    ap.add_argument("--pythons", default="current", help="current (default), all, or 3.X,...")
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_COUNT:,} instances, 1 run")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument(
        "--src", default=str(ROOT / "src"), help="the reloadscope to measure (default: this one)"
    )
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child's single count
    args = ap.parse_args()
    repeat = args.repeat or (1 if args.quick else 3)
    if args.one:
        print(json.dumps(run_one(args.one, repeat)))
        return
    counts = [QUICK_COUNT] if args.quick else [parse_size(c) for c in args.counts.split(",")]
    pythons = interpreters(args.pythons)
    engine = engine_state() if args.src == str(ROOT / "src") else args.src
    print(
        f"engine {engine}; pythons {', '.join(pythons)}; {repeat} repetitions; "
        f"{os.cpu_count()} cores",
        file=sys.stderr,
    )
    runs = []
    for version, python in pythons.items():
        for count in counts:
            print(f"[{len(runs) + 1}] {version} {label(count)}", file=sys.stderr, flush=True)
            r = child(python, count, repeat, args.src)
            r.setdefault("python", version)
            runs.append(r)
    if args.json:
        print(json.dumps({"engine": engine, "repeat": repeat, "runs": runs}))
        return
    print(f"engine {engine}; {repeat} repetitions")
    print("\n".join(table(runs)))
    print(LEGEND)
    bad = [r for r in runs if not r.get("ok")]
    if bad:
        print(f"{len(bad)} run(s) failed a check (see 'check' above)")


if __name__ == "__main__":
    main()
