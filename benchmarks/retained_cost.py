"""What the timeline's retained figures cost a scan (``agent/retained.py``), at worst.

A module reloaded once, one old instance kept whose attribute holds N rows (a list of
[str, float, dict]), so that the old generation alone keeps about 5 N objects alive: past the
bound (``retained.LIMIT`` objects) the figure is capped and marked so.  For each N, in a child
interpreter of its own, the median of --repeat scans: the scan's time, the part the retained
figures took (``"scan"."retained_s"``), and what the document says.

    python benchmarks/retained_cost.py [--rows 1000,20000,300000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = str(Path(__file__).resolve().parent.parent / "src")

CHILD = r"""
import importlib, json, os, sys, time
import reloadscope
reloadscope.install(listen=False)
here, rows, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sys.path.insert(0, here)
path = os.path.join(here, "cacheplug.py")
def write(n):
    open(path, "w").write(
        "class Cache:\n    def __init__(self):\n"
        f"        self.rows = [[str(i), i * 1.5, {{'k': i}}] for i in range({rows})]\n"
        f"GEN = {n}\n"
    )
    t = time.time() + 10 * (n + 1)
    os.utime(path, (t, t))
    importlib.invalidate_caches()
write(0)
import cacheplug
KEEP = [cacheplug.Cache()]
write(1)
importlib.reload(cacheplug)
runs = []
for _ in range(repeat):
    d = reloadscope.scan(collect=False).to_json()
    g = [m for m in d["modules"] if m["name"] == "cacheplug"][0]["generations"][0]
    runs.append((d["scan"]["duration_s"], d["scan"]["retained_s"], d["scan"]["objects"], g))
print(json.dumps(runs))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="1000,20000,300000")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=SRC, PYTHONDONTWRITEBYTECODE="1")
    print(f"CPython {sys.version.split()[0]}; median of {args.repeat} scans (collect=False)")
    for rows in map(int, args.rows.split(",")):
        with tempfile.TemporaryDirectory() as d:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, d, str(rows), str(args.repeat)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            ).stdout
        runs = json.loads(out)
        scan = statistics.median(r[0] for r in runs)
        kept = statistics.median(r[1] for r in runs)
        heap, g = runs[-1][2], runs[-1][3]
        capped = " (capped: a lower bound)" if g.get("retained_capped") else ""
        print(
            f"  {rows:>7,} rows, heap {heap:>9,} objects: scan {scan:.3f} s, of which retained "
            f"{kept:.3f} s; gen 0: {g['stale']} stale, {g['stale_bytes']} B, retained "
            f"{g['retained_bytes']:,} B in {g.get('retained_objects', 0):,} objects{capped}"
        )


if __name__ == "__main__":
    main()
