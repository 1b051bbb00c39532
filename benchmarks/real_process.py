"""Scan cost in a process shaped like a real application: it imports popular packages (those
of the test extras that are installed) and reloads nothing, so every entry would be a false
positive.

    python benchmarks/real_process.py [--repeat N] [--json]

Interleaved in one run, several repetitions, min-median-max:
- floor: one bare pass over the heap (``gc.get_objects()`` plus ``gc.get_referents`` on each);
- scan: ``reloadscope.scan(collect=False)`` as shipped (only the program's own modules are
  compared with their source);
- scan, every module compared: the same with the standard library and site-packages compared
  too (what the shipped rule avoids).
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

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
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    used = []
    for name in PACKAGES:
        try:
            importlib.import_module(name)
            used.append(name)
        except Exception:
            pass
    import reloadscope
    from reloadscope.agent import evidence

    gc.collect()
    shipped = evidence.library_prefixes

    def scan(every_module: bool) -> tuple[float, int]:
        evidence.library_prefixes = (lambda: ()) if every_module else shipped  # type: ignore[assignment]
        try:
            t = time.perf_counter()
            rep = reloadscope.scan(collect=False)
            return time.perf_counter() - t, rep.stale_count
        finally:
            evidence.library_prefixes = shipped  # type: ignore[assignment]

    times: dict[str, list[float]] = {"floor": [], "scan": [], "scan, every module": []}
    stale: dict[str, int] = {}
    for _ in range(args.repeat):
        times["floor"].append(floor())
        for key, every in (("scan", False), ("scan, every module", True)):
            took, n = scan(every)
            times[key].append(took)
            stale[key] = n
    facts = {
        "python": sys.version.split()[0],
        "objects": len(gc.get_objects()),
        "modules": len(sys.modules),
        "packages": used,
        "stale": stale,
        "seconds": {k: sorted(v) for k, v in times.items()},
    }
    if args.json:
        print(json.dumps(facts))
        return
    print(
        f"CPython {facts['python']}, {facts['objects']:,} objects, {facts['modules']:,} modules, "
        f"{len(used)} packages: {' '.join(used)}"
    )
    base = statistics.median(times["floor"])
    for key, v in times.items():
        med = statistics.median(v)
        extra = "" if key == "floor" else f"  {med / base:5.1f}x floor, {stale[key]} entries"
        print(f"  {key:<20} min {min(v):.3f} s  median {med:.3f} s  max {max(v):.3f} s{extra}")


if __name__ == "__main__":
    main()
