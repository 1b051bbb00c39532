"""Scan cost in a process shaped like a real application: it imports popular packages (those
of the test extras that are installed) and reloads nothing, so every entry would be a false
positive.

    python benchmarks/real_process.py [--repeat N] [--engines native,python] [--quick] [--json]

Interleaved in one run, several repetitions, min-median-max, and each scan's median over the
floor's with the range of its per-repetition ratios (over that repetition's floor):
- floor: one bare pass over the heap (``gc.get_objects()`` plus ``gc.get_referents`` on each);
- scan [ENGINE]: ``reloadscope.scan(collect=False)`` as shipped (only the program's own
  modules are compared with their source);
- scan, every module [ENGINE]: the same with the standard library and site-packages compared
  too (what the shipped rule avoids; left out by ``--quick``).

ENGINE is ``native`` (the agent's native helper, ``agent/native.py``) or ``python`` (the same
scan with the helper disabled, ``native.disable(True)``): by default both when the helper
loads in this process, else ``python`` alone; the header line says ``native helper: loaded`` or
``native helper: not loaded (<why>)``.  In each repetition the floor runs first, then each
engine's scan, their order alternating from one repetition to the next (then the same for the
every-module scans); one untimed scan by each engine comes before them (what a process's first
scan sets up once).  The reports of the engines in one repetition must be equal (normalised:
timings aside; checked, the run fails otherwise), and the last line gives each variant's time
with the helper over its time without (median, and per repetition).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _heap import (
    choose_engines,
    comparable,
    in_order,
    keep_differing,
    native_state,
    ratio_text,
    use_engine,
)

PACKAGES = [
    "numpy", "pandas", "sympy", "django", "sqlalchemy.orm", "pydantic", "attrs", "aiohttp",
    "rich.console", "pygments.lexers", "IPython", "networkx", "flask", "fastapi", "textual.app",
    "jinja2", "click", "requests", "httpx", "yaml", "lxml.etree", "marshmallow", "typer",
    "discord",
]  # fmt: skip


def floor() -> float:
    t = time.perf_counter()
    objs = gc.get_objects()
    for o in objs:
        gc.get_referents(o)
    del objs
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--engines",
        help="native,python (default: both when the native helper loads, else python)",
    )
    ap.add_argument(
        "--quick", action="store_true", help="1 repetition, no every-module scans (for tests)"
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    repeat = 1 if args.quick else args.repeat
    used = []
    for name in PACKAGES:
        try:
            importlib.import_module(name)
            used.append(name)
        except Exception:
            pass
    import reloadscope
    from reloadscope.agent import evidence

    helper = native_state()
    engines = choose_engines(args.engines)
    gc.collect()
    shipped = evidence.library_prefixes

    def scan(every_module: bool) -> tuple[float, dict]:
        off = (lambda: ()) if every_module else shipped
        evidence.library_prefixes = off  # type: ignore[assignment]
        try:
            t = time.perf_counter()
            rep = reloadscope.scan(collect=False)
            took = time.perf_counter() - t
            return took, rep.to_json()
        finally:
            evidence.library_prefixes = shipped  # type: ignore[assignment]

    variants = [("scan", False)] if args.quick else [("scan", False), ("scan, every module", True)]
    labels = [f"{v} [{e}]" for v, _ in variants for e in engines]
    times: dict[str, list[float]] = {"floor": [], **{k: [] for k in labels}}
    stale: dict[str, int] = {}
    try:
        for engine in engines:  # untimed: what a process's first scan loads or sets up once
            use_engine(engine)
            scan(False)
        for rep in range(repeat):
            times["floor"].append(floor())
            for variant, every in variants:
                docs: dict[str, dict] = {}
                for engine in in_order(engines, rep):
                    use_engine(engine)
                    took, docs[engine] = scan(every)
                    key = f"{variant} [{engine}]"
                    times[key].append(took)
                    stale[key] = entries(docs[engine])
                if len({comparable(d) for d in docs.values()}) > 1:
                    raise SystemExit(keep_differing(f"repetition {rep}, {variant}", docs))
    finally:
        use_engine("native")  # as it was: the helper when it loads
    facts = {
        "python": sys.version.split()[0],
        "objects": len(gc.get_objects()),
        "modules": len(sys.modules),
        "packages": used,
        "native_helper": helper,
        "engines": engines,
        "repeat": repeat,
        "stale": stale,
        "seconds": {k: sorted(v) for k, v in times.items()},
        # Each scan over its repetition's floor, in the order the repetitions ran.
        "ratios": {
            k: [round(t / f, 3) for t, f in zip(v, times["floor"])]
            for k, v in times.items()
            if k != "floor"
        },
        # Compared only with two engines (None: one); the run stops on reports that differ.
        "reports_equal": True if len(engines) > 1 else None,
        "native_over_python": native_over_python(times, [v for v, _ in variants], engines),
    }
    if args.json:
        print(json.dumps(facts))
        return
    equal = "; reports equal" if len(engines) > 1 else ""
    print(
        f"CPython {facts['python']}, {facts['objects']:,} objects, {facts['modules']:,} modules, "
        f"{len(used)} packages: {' '.join(used)}; native helper: {helper}; "
        f"engines: {', '.join(engines)}{equal}"
    )
    for key, v in times.items():
        med = statistics.median(v)
        extra = ""
        if key != "floor":
            extra = f"  {ratio_text(v, times['floor'])}, {stale[key]} entries"
        print(f"  {key:<29} min {min(v):.3f} s  median {med:.3f} s  max {max(v):.3f} s{extra}")
    if facts["native_over_python"]:
        print("  native / python: " + native_over_python_text(facts["native_over_python"]))


def entries(doc: dict) -> int:
    return sum(s["count"] for m in doc["modules"] for s in m["stale"])


def native_over_python(
    times: dict[str, list[float]], variants: list[str], engines: list[str]
) -> dict[str, dict[str, Any]]:
    """For each variant measured with both engines: the median time with the helper over the
    median without, and the ratio per repetition."""
    if not {"native", "python"} <= set(engines):
        return {}
    out = {}
    for v in variants:
        n, p = times[f"{v} [native]"], times[f"{v} [python]"]
        out[v] = {
            "median": round(statistics.median(n) / statistics.median(p), 3),
            "per_repetition": [round(a / b, 3) for a, b in zip(n, p)],
        }
    return out


def native_over_python_text(figures: dict[str, dict[str, Any]]) -> str:
    parts = []
    for v, f in figures.items():
        r = sorted(f["per_repetition"])
        parts.append(f"{v} {f['median']:.2f}x (per repetition {r[0]:.2f}-{r[-1]:.2f})")
    return ", ".join(parts)


if __name__ == "__main__":
    main()
