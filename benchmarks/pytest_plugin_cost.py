"""What ``pytest --reloadscope`` costs a test suite.

Generates a suite of ``--tests`` tests (default 400) in a temporary directory, in files of 100;
in each file one test reloads a module and keeps its old function (a leak) and one reloads it
keeping nothing; and the same suite without those reloads.  Then runs each suite with pytest,
without and with ``--reloadscope``,
interleaved, ``--repeat`` times each (default 5; ``--quick``: 100 tests, once each), with this
interpreter, this checkout first on ``PYTHONPATH``, the plugin loaded by ``-p`` and no other
plugin (``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``, no cache provider).

Prints, per suite, for the session time pytest itself reports and for the wall time of the
whole command, the ratio with/without of each interleaved pair (min, median, max), the median
extra time per test, how many scans the plugin made and how long they took; ``--json`` prints
the figures as one JSON object instead.

    python benchmarks/pytest_plugin_cost.py [--tests 400] [--repeat 5 | --quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = str(Path(__file__).resolve().parent.parent / "src")
PLUGIN = "reloadscope.integrations.pytest_plugin"
PER_FILE = 100

HELPERS = '''
import importlib, os, time

_bump = [0]

def rewrite(module):
    """Rewrite the module's file (a later mtime each time) and reload it."""
    _bump[0] += 1
    with open(module.__file__, "w") as fh:
        fh.write(f"def greet():\\n    return {_bump[0]}\\n")
    t = time.time() + 10 * _bump[0]
    os.utime(module.__file__, (t, t))
    importlib.invalidate_caches()
    return importlib.reload(module)
'''


def write_suite(root: Path, tests: int, *, reloads: bool) -> int:
    """The suite's files (again, as the reloads rewrite plug.py); how many of its tests leak.
    Without ``reloads``, the tests that would reload do what the others do."""
    (root / "plug.py").write_text("def greet():\n    return 0\n")
    (root / "holder.py").write_text("KEEP = []\n")
    (root / "helpers.py").write_text(HELPERS)
    leaks = 0
    for f in range(0, tests, PER_FILE):
        lines = ["import helpers, holder, plug", ""]
        for i in range(f, min(f + PER_FILE, tests)):
            lines.append(f"def test_{i:04d}():")
            if reloads and i % PER_FILE == PER_FILE // 2:
                lines.append("    holder.KEEP.append(plug.greet)")
                lines.append("    helpers.rewrite(plug)")
                leaks += 1
            elif reloads and i % PER_FILE == PER_FILE * 3 // 4:
                lines.append("    helpers.rewrite(plug)")
            else:
                lines.append("    assert sum(range(100)) == 4950")
            lines.append("")
        (root / f"test_part{f // PER_FILE}.py").write_text("\n".join(lines))
    return leaks


def run(root: Path, args: list[str]) -> dict[str, object]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SRC, *filter(None, [env.get("PYTHONPATH")])])
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTEST_ADDOPTS", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", PLUGIN, "-p", "no:cacheprovider", *args]
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"pytest failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    session = re.search(r"passed in ([0-9.]+)s", p.stdout)
    scans = re.search(r"\((\d+) scans? after tests .*; ([0-9.]+) s scanning in all\)", p.stdout)
    listed = re.findall(r"^(test_part\d+\.py::test_\d+): ", p.stdout, re.MULTILINE)
    return {
        "wall_s": wall,
        "session_s": float(session.group(1)) if session else None,
        "scans": int(scans.group(1)) if scans else None,
        "scan_s": float(scans.group(2)) if scans else None,
        "listed": listed,
    }


def ratios(pairs: list[tuple[float, float]]) -> dict[str, float]:
    rs = [with_ / without for without, with_ in pairs]
    return {"min": min(rs), "median": statistics.median(rs), "max": max(rs)}


def measure(tests: int, repeat: int, *, reloads: bool) -> dict[str, object]:
    """One suite, without and with ``--reloadscope``, interleaved."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        leaks = write_suite(root, tests, reloads=reloads)
        run(root, [])  # one uncounted round of each: the file cache is warm for both
        write_suite(root, tests, reloads=reloads)
        run(root, ["--reloadscope"])
        off, on = [], []
        for _ in range(repeat):
            write_suite(root, tests, reloads=reloads)
            off.append(run(root, []))
            write_suite(root, tests, reloads=reloads)
            on.append(run(root, ["--reloadscope"]))
    figures: dict[str, object] = {
        "leaking_tests": leaks,
        "reloading_tests": 2 * leaks,
        "listed": on[-1]["listed"],
        "scans": on[-1]["scans"],
    }
    for what in ("session_s", "wall_s"):
        pairs = [(float(x[what]), float(y[what])) for x, y in zip(off, on)]  # type: ignore[arg-type]
        figures[what] = {
            "without_median": statistics.median(p[0] for p in pairs),
            "with_median": statistics.median(p[1] for p in pairs),
            "ratio": ratios(pairs),
            "extra_per_test_ms": 1000 * statistics.median((y - x) / tests for x, y in pairs),
        }
    scan_s = [float(r["scan_s"]) for r in on]  # type: ignore[arg-type]
    figures["scan_s_median"] = statistics.median(scan_s)
    figures["scan_ms_each_median"] = 1000 * statistics.median(scan_s) / (1 + on[-1]["scans"])  # type: ignore[operator]
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tests", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="100 tests, one run each")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    tests = a.tests or (100 if a.quick else 400)
    repeat = a.repeat or (1 if a.quick else 5)
    figures: dict[str, object] = {
        "python": sys.version.split()[0],
        "tests": tests,
        "repeat": repeat,
        "reloading": measure(tests, repeat, reloads=True),
        "calm": measure(tests, repeat, reloads=False),
    }
    if a.json:
        print(json.dumps(figures))
        return
    print(f"CPython {figures['python']}: {tests} tests, {repeat} interleaved runs each")
    for suite in ("reloading", "calm"):
        f = figures[suite]
        assert isinstance(f, dict)
        leaks = f["leaking_tests"]
        if suite == "reloading":
            print(f"suite where {2 * leaks} tests reload a module ({leaks} of them leak):")
        else:
            print("the same suite without the reloads:")
        for what, name in (("session_s", "session (pytest's own time)"), ("wall_s", "wall")):
            w = f[what]
            r = w["ratio"]
            print(
                f"  {name}: {w['without_median']:.2f} s -> {w['with_median']:.2f} s, ratio "
                f"{r['median']:.2f}x (min {r['min']:.2f}, max {r['max']:.2f}), "
                f"{w['extra_per_test_ms']:.2f} ms per test"
            )
        print(
            f"  scans: the baseline and one after each of {f['scans']} tests, "
            f"{f['scan_s_median']:.2f} s in all, {f['scan_ms_each_median']:.0f} ms each; "
            f"tests listed: {len(f['listed'])}"
        )


if __name__ == "__main__":
    main()
