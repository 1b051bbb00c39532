"""What ``%load_ext reloadscope`` adds to every IPython cell that reloads nothing: the check
whether a module was reloaded or patched in place (the recorder's reload count and its
``code_state``, compared with the last cell's), beside an empty cell's own cost.

Runs in one process that imported IPython's kernel (ipykernel, IPython and their imports), plus
``--user-modules`` small modules of the user's own (written to a temporary directory), with
recording on.  Interleaved, ``--repeat`` rounds of 1000 checks each; prints the median, min and
max time per check, and the first check's (which reads each module's file location once).

    python benchmarks/cell_check.py [--user-modules 50] [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

SRC = str(Path(__file__).resolve().parent.parent / "src")

USER_MODULE = """
class Model{k}:
    def run(self):
        return {k}

    @property
    def size(self):
        return {k}

def helper_{k}(x):
    return x + {k}

HANDLERS = {{"a": lambda e: e}}
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--user-modules", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    sys.path.insert(0, SRC)
    import reloadscope

    reloadscope.install(listen=False)
    import ipykernel.ipkernel  # noqa: F401  (what a kernel has loaded)

    from reloadscope import agent
    from reloadscope.agent.recorder import patched_modules

    work = tempfile.mkdtemp(prefix="rs-cellcheck-")
    sys.path.insert(0, work)
    for k in range(args.user_modules):
        Path(work, f"usermod_{k}.py").write_text(USER_MODULE.format(k=k))
        importlib.import_module(f"usermod_{k}")
    rec = agent.recorder()
    assert rec is not None

    def check(before: tuple[int, dict[str, int]]) -> tuple[int, dict[str, int]]:
        now = (rec.reloads, rec.code_state())
        if now[0] != before[0] or patched_modules(before[1], now[1]):
            raise AssertionError("nothing was reloaded")
        return now

    t0 = time.perf_counter()
    mark = (rec.reloads, rec.code_state())
    first = time.perf_counter() - t0
    per_check = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        for _ in range(1000):
            mark = check(mark)
        per_check.append((time.perf_counter() - t0) / 1000)
    figures = {
        "python": "{}.{}.{}".format(*sys.version_info[:3]),
        "modules": len(sys.modules),
        "user_modules": len(mark[1]),
        "first_check_ms": round(first * 1000, 3),
        "check_ms": {
            "median": round(statistics.median(per_check) * 1000, 4),
            "min": round(min(per_check) * 1000, 4),
            "max": round(max(per_check) * 1000, 4),
        },
    }
    if args.json:
        print(json.dumps(figures))
    else:
        c = figures["check_ms"]
        print(
            f"CPython {figures['python']}, {figures['modules']} modules loaded, "
            f"{figures['user_modules']} of them the user's: a cell's check takes "
            f"{c['median']} ms (min {c['min']}, max {c['max']}, {args.repeat} rounds of 1000); "
            f"the first {figures['first_check_ms']} ms"
        )
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
