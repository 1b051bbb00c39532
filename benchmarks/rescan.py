"""First scan and rescan after one reload, against the floor, side by side in one run, in a
process shaped like a real application (the packages of ``real_process.py``) with recording on.

    python benchmarks/rescan.py [--repeat N] [--stale] [--json] [--verbose]

Recording starts first (as ``reloadscope run``, the IPython extension or an injected agent have
it), then the packages are imported, then a module of the program's own (40 functions and a
class) from a temporary directory (with ``--stale``, another module keeps one of its functions
and an instance of its class, which its first reload makes stale: each scan then also walks
the module graph for their paths). Interleaved, each repetition:

- reload: the module's file is edited and reloaded (one new generation), then ``gc.collect()``;
- rescan: a scan (``Scan(recorder, collect=False).run()``, what ``reloadscope.scan`` runs) with
  what the scan before it kept: the live UI's follow, ``report --watch``, IPython's after-cell
  check, repeated ``reloadscope.scan()`` calls;
- floor: one bare pass over the heap (``gc.get_objects()`` plus ``gc.get_referents`` on each);
- first scan: the same scan with nothing kept (``evidence.forget_index()``), as a process's
  first scan is.

Both scans of a repetition see the same heap: their reports must be equal (checked), and each
scan says how many of the process's functions it judged one by one and how many code objects
its index looked at.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _heap import import_fresh, reload_for_real
from real_process import PACKAGES, floor


def user_source(version: int) -> str:
    defs = "".join(
        f"\ndef handler_{k}(event):\n    return (event, {version}, {k})\n" for k in range(40)
    )
    return f"class Session:\n    version = {version}\n{defs}"


def comparable(doc: dict) -> str:
    """The report without what differs between two scans of the same heap (timings)."""
    return json.dumps(
        {"modules": doc["modules"], "blind_spots": doc["scan"].get("blind_spots")},
        sort_keys=True,
        default=str,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--stale",
        action="store_true",
        help="another module holds a function and an instance of the first generation: each "
        "scan then reports them (3 entries) and walks the module graph for their paths",
    )
    ap.add_argument("--verbose", action="store_true", help="each scan's time and counts")
    args = ap.parse_args()
    from reloadscope import agent
    from reloadscope.agent import evidence
    from reloadscope.agent.scan import Scan

    recorder = agent.install()
    used = []
    for name in PACKAGES:
        try:
            importlib.import_module(name)
            used.append(name)
        except Exception:
            pass
    workdir = tempfile.mkdtemp(prefix="reloadscope-rescan-")
    user = import_fresh(workdir, "bench_user_app", user_source(0))
    if args.stale:
        import_fresh(
            workdir,
            "bench_user_keeper",
            "import bench_user_app\nkept = bench_user_app.handler_0\n"
            "session = bench_user_app.Session()\n",
        )
    gc.collect()

    def scan() -> tuple[float, Scan, dict]:
        s = Scan(recorder, collect=False)
        t = time.perf_counter()
        doc = s.run()[0]
        return time.perf_counter() - t, s, doc

    # A first reload (recording it loads dis, hashlib...: libraries, so the scan after it
    # starts its index over), then the scan the first repetition's rescan starts from.
    reload_for_real(user, workdir, user_source(-1))
    gc.collect()
    scan()
    times: dict[str, list[float]] = {"floor": [], "first scan": [], "rescan": []}
    counts: dict[str, dict[str, int]] = {}
    entries = walks = 0
    for rep in range(args.repeat):
        reload_for_real(user, workdir, user_source(rep + 1))
        gc.collect()  # the old generation's garbage (its class's cycle), as the program's gc would
        took, s, again = scan()
        times["rescan"].append(took)
        counts["rescan"] = _counts(s)
        if args.verbose:
            print(f"  rescan {took:.3f} s {counts['rescan']}", file=sys.stderr)
        times["floor"].append(floor())
        getattr(evidence, "forget_index", lambda: None)()  # (an engine that keeps nothing)
        took, s, first = scan()
        times["first scan"].append(took)
        counts["first scan"] = _counts(s)
        if args.verbose:
            print(f"  first scan {took:.3f} s {counts['first scan']}", file=sys.stderr)
        if comparable(again) != comparable(first):
            raise SystemExit(f"repetition {rep}: the rescan's report differs from the first scan's")
        entries = sum(len(m["stale"]) for m in first["modules"])
        walks = s.walks
    facts = {
        "python": sys.version.split()[0],
        "objects": len(gc.get_objects()),
        "modules": len(sys.modules),
        "packages": used,
        "entries": entries,
        "walks": walks,
        "counts": counts,
        "seconds": {k: sorted(v) for k, v in times.items()},
    }
    if args.json:
        print(json.dumps(facts))
        return
    print(
        f"CPython {facts['python']}, {facts['objects']:,} objects, {facts['modules']:,} modules, "
        f"{len(used)} packages, recording on; {entries} entries, {walks} walks a scan, "
        "reports equal"
    )
    base = statistics.median(times["floor"])
    for key, v in times.items():
        med = statistics.median(v)
        ratios = sorted(t / f for t, f in zip(v, times["floor"]))
        extra = ""
        if key != "floor":
            c = counts[key]
            extra = (
                f"  {med / base:5.2f}x floor (per repetition {ratios[0]:.2f}-{ratios[-1]:.2f}); "
                f"judged {c['judged']:,} of {c['functions']:,} functions, "
                f"{c['codes']:,} code objects indexed"
            )
        print(f"  {key:<11} min {min(v):.3f} s  median {med:.3f} s  max {max(v):.3f} s{extra}")


def _counts(s: object) -> dict[str, int]:
    """What the scan did (-1: an engine that does not count it)."""
    names = {
        "functions": "functions_seen",
        "judged": "functions_judged",
        "codes": "codes_indexed",
        "rebuilt": "index_rebuilt",
        "walks": "walks",
    }
    return {k: getattr(s, n, -1) for k, n in names.items()}


if __name__ == "__main__":
    main()
