"""What a repair costs beside a scan: planning and applying at about 1,000 findings.

In a child interpreter (``--one``) padded with an application-like heap of --objects tracked
objects (``_heap.build_heap``), each repetition imports a fresh module ``fixbench_R`` that
defines --functions functions and a class ``Item``; the functions are held, a third each, by a
list, a dict and instance attributes (``Holder().cb``), and --instances instances of ``Item``
are kept in a list; the module is really reloaded.  That makes --functions stale functions, one
stale class and --instances stale instances.  Then, in that state:

- ``reloadscope.scan(collect=False)``;
- ``repair.plan(collect=False)`` (it scans, then finds and names every holder);
- ``repair.apply(collect=False)`` (it plans again, writes, then scans again),

each timed; after the apply every holder must hold the current object and nothing of
``fixbench_R`` be stale.  Printed: the medians over --repeat repetitions and their ratios to
the scan, and the parts of the plan (``repair.TIMES``, when it keeps them).  The scans all run
with ``collect=False`` (a collection's cost is not the repair's).

    python benchmarks/fix_cost.py [--objects 1M] [--functions 1000] [--instances 1000]
        [--repeat 5] [--pythons current|all|3.11,3.13,...] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scan_shapes import interpreters, parse_size

ROOT = Path(__file__).resolve().parent.parent
SRC = str(ROOT / "src")
QUICK = {"objects": 100_000, "functions": 30, "instances": 30, "repeat": 1}


def source(functions: int, version: int) -> str:
    defs = "".join(f"def f{k}(x):\n    return (x, {version})\n" for k in range(functions))
    return defs + f"class Item:\n    def get(self):\n        return {version}\n"


class Holder:
    def __init__(self, cb: Any) -> None:
        self.cb = cb


def setup(workdir: str, rep: int, functions: int, instances: int) -> dict[str, Any]:
    """A fresh module, its objects kept by holders, then reloaded."""
    name = f"fixbench_{rep}"
    path = os.path.join(workdir, name + ".py")
    with open(path, "w") as fh:
        fh.write(source(functions, 1))
    importlib.invalidate_caches()
    mod = importlib.import_module(name)
    fs = [getattr(mod, f"f{k}") for k in range(functions)]
    held = {
        "list": [f for k, f in enumerate(fs) if k % 3 == 0],
        "dict": {f"h{k}": f for k, f in enumerate(fs) if k % 3 == 1},
        "attrs": [Holder(f) for k, f in enumerate(fs) if k % 3 == 2],
        "items": [mod.Item() for _ in range(instances)],
        "module": mod,
    }
    del fs
    with open(path, "w") as fh:
        fh.write(source(functions, 2))
    t = time.time() + 10
    os.utime(path, (t, t))
    importlib.invalidate_caches()
    importlib.reload(mod)
    return held


def fixed(held: dict[str, Any]) -> list[str]:
    """What still holds an old object after the apply."""
    mod = held["module"]
    bad = [f"list[{i}]" for i, f in enumerate(held["list"]) if getattr(mod, f.__name__) is not f]
    bad += [f"dict[{k}]" for k, f in held["dict"].items() if getattr(mod, f.__name__) is not f]
    bad += [
        f"attrs[{i}]"
        for i, h in enumerate(held["attrs"])
        if getattr(mod, h.cb.__name__) is not h.cb
    ]
    bad += [f"items[{i}]" for i, o in enumerate(held["items"]) if type(o) is not mod.Item]
    return bad


def run_one(objects: int, functions: int, instances: int, repeat: int) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import reloadscope
    from _heap import build_heap
    from reloadscope import agent
    from reloadscope.agent import repair

    rec = agent.recorder()
    workdir = tempfile.mkdtemp(prefix="fixbench")
    sys.path.insert(0, workdir)
    pad = build_heap(objects)
    gc.collect()
    times: dict[str, list[float]] = {"scan": [], "plan": [], "apply": []}
    parts: list[dict[str, float]] = []
    problems: list[str] = []
    heap = stale = changes = cannot = 0
    for rep in range(repeat):
        held = setup(workdir, rep, functions, instances)
        gc.collect()
        t0 = time.perf_counter()
        doc = reloadscope.scan(collect=False).to_json()
        times["scan"].append(time.perf_counter() - t0)
        heap = doc["scan"]["objects"]
        stale = sum(
            s.get("count", 1)
            for m in doc["modules"]
            if m["name"] == f"fixbench_{rep}"
            for s in m["stale"]
        )
        t0 = time.perf_counter()
        plan = repair.plan(rec, collect=False)
        times["plan"].append(time.perf_counter() - t0)
        parts.append(dict(getattr(repair, "TIMES", {})))
        changes, cannot = len(plan["changes"]), len(plan["cannot"])
        t0 = time.perf_counter()
        result = repair.apply(rec, collect=False)
        times["apply"].append(time.perf_counter() - t0)
        # The old class is garbage in a cycle now: the apply's own scan (collect=False) still
        # sees it; a collecting scan must not.
        after = reloadscope.scan().to_json()
        left = [
            (m["name"], s["qualname"], s["kind"])
            for m in after["modules"]
            if m["name"] == f"fixbench_{rep}"
            for s in m["stale"]
        ]
        if left:
            problems.append(f"rep {rep}: still stale after the apply: {left[:3]}")
        bad = fixed(held)
        if bad:
            problems.append(f"rep {rep}: {len(bad)} holders not fixed, e.g. {bad[:3]}")
        if result["skipped"]:
            problems.append(f"rep {rep}: skipped {result['skipped'][:2]}")
        del held, plan, result, doc, after
    del pad
    med = {k: statistics.median(v) for k, v in times.items()}
    part_med = {
        k: statistics.median(p.get(k, 0.0) for p in parts) for k in (parts[0] if parts else {})
    }
    return {
        "python": "{}.{}.{}".format(*sys.version_info[:3]),
        "reloadscope": str(Path(reloadscope.__file__).parent),
        "heap": heap,
        "stale": stale,
        "changes": changes,
        "cannot": cannot,
        "repeat": repeat,
        "times": times,
        "median": med,
        "plan_parts": part_med,
        "plan_per_scan": med["plan"] / med["scan"],
        "apply_per_scan": med["apply"] / med["scan"],
        "problems": problems,
        "ok": not problems,
    }


def child(python: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        python,
        __file__,
        "--one",
        "--objects",
        str(args.objects),
        "--functions",
        str(args.functions),
        "--instances",
        str(args.instances),
        "--repeat",
        str(args.repeat),
    ]
    env = dict(os.environ, PYTHONPATH=SRC, PYTHONDONTWRITEBYTECODE="1")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if p.returncode != 0:
        return {"error": p.stderr[-3000:], "ok": False}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=parse_size, default=1_000_000, help="heap padding (1M)")
    ap.add_argument("--functions", type=int, default=1000, help="stale functions (1000)")
    ap.add_argument("--instances", type=int, default=1000, help="stale instances (1000)")
    ap.add_argument("--repeat", type=int, default=5, help="repetitions (5)")
    ap.add_argument("--pythons", default="current", help="current (default), all, or 3.X,...")
    ap.add_argument("--quick", action="store_true", help="100k objects, 30 + 30 stale, once")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
    if args.one:
        print(json.dumps(run_one(args.objects, args.functions, args.instances, args.repeat)))
        return
    command = "python " + " ".join(
        shlex.quote(a) for a in ["benchmarks/fix_cost.py", *sys.argv[1:]]
    )
    print(
        f"{command}\n{args.objects:,} objects of padding, {args.functions} stale functions, "
        f"{args.instances} stale instances, {args.repeat} repetitions, {os.cpu_count()} cores",
        file=sys.stderr,
    )
    runs = []
    for version, python in interpreters(args.pythons).items():
        print(f"[{version}] ...", file=sys.stderr, flush=True)
        r = child(python, args)
        r.setdefault("python", version)
        runs.append(r)
    if args.json:
        print(json.dumps({"command": command, "runs": runs}))
        return
    print(command)
    for r in runs:
        if "error" in r:
            print(f"{r['python']}: failed\n{r['error']}")
            continue
        m = r["median"]
        print(
            f"CPython {r['python']}: heap {r['heap']:,} objects, {r['stale']:,} stale "
            f"({r['changes']} changes, {r['cannot']} cannot); median of {r['repeat']}:"
        )
        print(f"  scan   {m['scan']:7.3f} s")
        print(f"  plan   {m['plan']:7.3f} s  = {r['plan_per_scan']:.2f} x scan")
        print(f"  apply  {m['apply']:7.3f} s  = {r['apply_per_scan']:.2f} x scan")
        if r["plan_parts"]:
            parts = ", ".join(f"{k} {v:.3f} s" for k, v in r["plan_parts"].items())
            print(f"  plan parts (median): {parts}")
        for p in r["problems"]:
            print(f"  PROBLEM: {p}")


if __name__ == "__main__":
    main()
