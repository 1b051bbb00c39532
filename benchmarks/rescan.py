"""First scan and rescan after one reload, against the floor, side by side in one run, in a
process shaped like a real application (the packages of ``real_process.py``) with recording on.

    python benchmarks/rescan.py [--repeat N] [--stale] [--engines native,python] [--quick]
        [--json] [--verbose]

Recording starts first (as ``reloadscope run``, the IPython extension or an injected agent have
it), then the packages are imported, then a module of the program's own (40 functions and a
class) from a temporary directory (with ``--stale``, another module keeps one of its functions
and an instance of its class, which its first reload makes stale: each scan then also walks
the module graph for their paths). Interleaved, each repetition:

- reload: the module's file is edited and reloaded (one new generation), then ``gc.collect()``;
- floor: one bare pass over the heap (``gc.get_objects()`` plus ``gc.get_referents`` on each);
- then for each engine, their order alternating from one repetition to the next:
  - rescan: a scan (``Scan(recorder, collect=False).run()``, what ``reloadscope.scan`` runs)
    with what the scan before the reload kept: the live UI's follow, ``report --watch``,
    IPython's after-cell check, repeated ``reloadscope.scan()`` calls;
  - first scan: the same scan with nothing kept (``evidence.forget_index()``), as a process's
    first scan is.

ENGINE is ``native`` (the agent's native helper, ``agent/native.py``) or ``python`` (the same
scan with the helper disabled, ``native.disable(True)``): by default both when the helper
loads in this process, else ``python`` alone; the header line says ``native helper: loaded`` or
``native helper: not loaded (<why>)``.  Each engine keeps an index of its own (the native
helper keeps its part in tables only it reads, and a scan by the other engine starts the index
over): so that each engine's rescan starts from what its own first scan of the repetition
before kept, as it would in a process that runs one engine, the index kept
(``evidence._INDEX``) is taken aside after each engine's first scan and put back before its
next rescan (an engine without it keeps nothing, and its rescans are first scans).

Each scan's ``Scan.engine`` must name the engine it was meant to run (checked, where the
engine says).  All the scans of a repetition see the same heap: their reports must be equal
(checked: the rescan's and the first scan's of each engine, and the engines' with each
other), and each scan says how many of the process's functions it judged one by one and how
many code objects its index looked at.  The last line gives each scan's time with the helper
over its time without (median, and per repetition).  ``--quick``: one repetition.
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _heap import (
    choose_engines,
    comparable,
    import_fresh,
    in_order,
    keep_differing,
    native_state,
    ratio_text,
    reload_for_real,
    use_engine,
)
from real_process import PACKAGES, floor, native_over_python, native_over_python_text


def user_source(version: int) -> str:
    defs = "".join(
        f"\ndef handler_{k}(event):\n    return (event, {version}, {k})\n" for k in range(40)
    )
    return f"class Session:\n    version = {version}\n{defs}"


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
    ap.add_argument(
        "--engines",
        help="native,python (default: both when the native helper loads, else python)",
    )
    ap.add_argument("--quick", action="store_true", help="1 repetition (for tests)")
    ap.add_argument("--verbose", action="store_true", help="each scan's time and counts")
    args = ap.parse_args()
    repeat = 1 if args.quick else args.repeat
    from reloadscope import agent
    from reloadscope.agent import evidence
    from reloadscope.agent.scan import Scan

    helper = native_state()
    engines = choose_engines(args.engines)
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
    # starts its index over), then a scan by each engine (untimed: what a process's first scan
    # sets up once): the index each engine's first rescan starts from.
    reload_for_real(user, workdir, user_source(-1))
    gc.collect()
    kept: dict[str, Any] = {}
    for engine in engines:
        use_engine(engine)
        getattr(evidence, "forget_index", lambda: None)()
        scan()
        kept[engine] = take_index(evidence)
    labels = [f"{what} [{e}]" for what in ("first scan", "rescan") for e in engines]
    times: dict[str, list[float]] = {"floor": [], **{k: [] for k in labels}}
    counts: dict[str, dict[str, int]] = {}
    walks_by: dict[str, int] = {}
    entries = walks = 0
    try:
        for rep in range(repeat):
            reload_for_real(user, workdir, user_source(rep + 1))
            gc.collect()  # the old generation's garbage (its class's cycle), as a program's gc
            times["floor"].append(floor())
            docs: dict[str, dict] = {}
            for engine in in_order(engines, rep):
                use_engine(engine)
                put_back_index(evidence, kept[engine])
                for what in ("rescan", "first scan"):
                    if what == "first scan":
                        getattr(evidence, "forget_index", lambda: None)()  # (keeps nothing)
                    took, s, doc = scan()
                    ran = getattr(s, "engine", engine)  # (an engine that does not say)
                    if ran != engine:
                        raise SystemExit(f"{what} [{engine}]: the scan ran on {ran}'s code")
                    key = f"{what} [{engine}]"
                    times[key].append(took)
                    counts[key] = _counts(s)
                    docs[key] = doc
                    if args.verbose:
                        print(f"  {key} {took:.3f} s {counts[key]}", file=sys.stderr)
                kept[engine] = take_index(evidence)  # its next rescan starts from it
                walks_by[engine] = walks = s.walks
                entries = sum(len(m["stale"]) for m in doc["modules"])
            if len({comparable(d) for d in docs.values()}) > 1:
                raise SystemExit(keep_differing(f"repetition {rep}", docs))
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
        "entries": entries,
        "walks": walks,
        "walks_by_engine": walks_by,
        "counts": counts,
        "seconds": {k: sorted(v) for k, v in times.items()},
        # Each scan over its repetition's floor, in the order the repetitions ran.
        "ratios": {
            k: [round(t / f, 3) for t, f in zip(v, times["floor"])]
            for k, v in times.items()
            if k != "floor"
        },
        # Every scan of a repetition reported the same (the run stops otherwise).
        "reports_equal": True,
        "native_over_python": native_over_python(times, ["first scan", "rescan"], engines),
    }
    if args.json:
        print(json.dumps(facts))
        return
    print(
        f"CPython {facts['python']}, {facts['objects']:,} objects, {facts['modules']:,} modules, "
        f"{len(used)} packages, recording on; {entries} entries, {walks} walks a scan, "
        f"reports equal; native helper: {helper}; engines: {', '.join(engines)}"
    )
    for key, v in times.items():
        med = statistics.median(v)
        extra = ""
        if key != "floor":
            c = counts[key]
            extra = (
                f"  {ratio_text(v, times['floor'])}; "
                f"judged {c['judged']:,} of {c['functions']:,} functions, "
                f"{c['codes']:,} code objects indexed"
            )
        print(f"  {key:<20} min {min(v):.3f} s  median {med:.3f} s  max {max(v):.3f} s{extra}")
    if facts["native_over_python"]:
        print("  native / python: " + native_over_python_text(facts["native_over_python"]))


def take_index(evidence: Any) -> Any:
    """The index the last scan kept (ids and hashes, or the helper's tables), or None; the
    next scan starts with none."""
    box = getattr(evidence, "_INDEX", None)
    if not box:
        return None
    kept, box[0] = box[0], None
    return kept


def put_back_index(evidence: Any, kept: Any) -> None:
    """The next scan starts from ``kept`` (which it may grow in place: taken again after)."""
    box = getattr(evidence, "_INDEX", None)
    if box:
        box[0] = kept


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
