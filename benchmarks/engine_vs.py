"""Two scan engines side by side on one heap: another checkout's against this one's, or this
checkout's with its native helper against the same without it (``--other python``).

Builds one of ``scan_shapes``' heaps (``--shape``, ``--objects``, ``--stale``), loads the
other checkout's ``reloadscope`` package under the name ``rsother`` beside this one (both scan
with this process's recorder), then interleaves ``--repeat`` times: the floor (one bare heap
pass), then a scan by each engine, their order alternating.  It prints the median of each
engine's scan / floor and the ratios per repetition, and checks the reports equal (timings,
dates and pids aside): the first scan of each engine on the fresh heap, each in a fork of the
same process (a scan changes the heap: on 3.11+ naming an instance's attribute materialises
its ``__dict__``), then every timed scan after untimed scans that settle the heap (until two
in a row report the same: ``settling_scans``; a timed pair that differs is written to a
directory named by ``differing_reports``).

``--other python`` loads no second checkout: the two engines are this checkout's, ``python``
with the native helper disabled (``native.disable(True)`` before each of its scans) and
``native`` with it (``native.disable(False)``); it stops when the helper does not load, or
when a scan's ``Scan.engine`` names the other engine.  With
another checkout each engine uses its own helper, if it has one and it loads.  The first line
says ``native helper: loaded`` or ``native helper: not loaded (<why>)`` (this checkout's) and
whether the reports were equal, a line per engine its median over the floor, then the second
engine's time over the first's; the last line is the figures as JSON (keys named after the
engines: ``other``/``this``, or ``python``/``native``).

    python benchmarks/engine_vs.py --other ../main [--shape inside] [--objects 1M]
        [--repeat 5] [--stale 100]
    python benchmarks/engine_vs.py --other python --objects 1M --repeat 5
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import scan_shapes  # noqa: E402
from _heap import build_heap, floor, in_order, native_state, ratio_text, timed  # noqa: E402

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


class Engine:
    """A scan engine: a ``reloadscope.agent.scan`` module, and the native helper switched off
    (``python``), on (``native``) or left as its checkout has it (None) for its scans."""

    def __init__(self, name: str, scan_mod: Any, helper_off: bool | None) -> None:
        self.name, self.scan_mod, self.helper_off = name, scan_mod, helper_off

    def scan(self, recorder: Any) -> Any:
        """A ``Scan`` ready to run, the helper switched as this engine has it."""
        if self.helper_off is not None:
            importlib.import_module("reloadscope.agent.native").disable(self.helper_off)
        return self.scan_mod.Scan(recorder, collect=False)


def in_fork(engine: Engine, recorder: Any) -> Any:
    """The report of a first scan of this heap, made in a fork (this heap stays as it was)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            doc = norm(json.loads(json.dumps(engine.scan(recorder).run()[0])))
            with os.fdopen(w, "w") as fh:
                fh.write(json.dumps(doc))
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as fh:
        doc = json.loads(fh.read())
    os.waitpid(pid, 0)
    return doc


def settle(engine: Engine, recorder: Any, most: int = 5) -> int:
    """Untimed scans until two in a row report the same (at most ``most``): how many ran.  A
    scan changes the heap it walks (see the docstring), and the paths the next scan shows
    can go through what the previous one changed: on 3.11, 100k objects and 20 stale, the
    *inside* heap's reports change twice (4 scans run)."""
    before = None
    for n in range(1, most + 1):
        doc = norm(json.loads(json.dumps(engine.scan(recorder).run()[0])))
        if doc == before:
            return n
        before = doc
    return most


def keep(docs: dict[str, list[Any]]) -> str:
    """Write the timed scans' reports (normalised) to a new directory; returns it."""
    out = tempfile.mkdtemp(prefix="reloadscope-engine-vs-")
    for name, ds in docs.items():
        with open(os.path.join(out, f"{name}.json"), "w") as fh:
            json.dump(ds, fh, indent=1, sort_keys=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--other",
        required=True,
        help="the other checkout (holding src/reloadscope), or python: this checkout's engine "
        "with the native helper disabled, against the same with it",
    )
    ap.add_argument("--shape", default="inside", choices=sorted(scan_shapes.BUILD))
    ap.add_argument("--objects", default="1M", help="heap size (default 1M)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--stale", type=int, default=100)
    a = ap.parse_args()
    import reloadscope

    reloadscope.install(listen=False)
    recorder = importlib.import_module("reloadscope.agent")._recorder
    ours = importlib.import_module("reloadscope.agent.scan")
    helper = native_state()
    if a.other == "python":
        if helper != "loaded":
            raise SystemExit(f"--other python: the native helper is {helper}")
        engines = [Engine("python", ours, True), Engine("native", ours, False)]
        described = {"python": "this checkout, helper disabled", "native": "this checkout"}
    else:
        other = load_other(Path(a.other).resolve())
        engines = [Engine("other", other, None), Engine("this", ours, None)]
        described = {"other": str(Path(a.other).resolve()), "this": str(ROOT)}
    sys.dont_write_bytecode = True
    mods = build_heap(scan_shapes.parse_size(a.objects))
    first, second = engines
    with tempfile.TemporaryDirectory() as workdir:
        probes = scan_shapes.BUILD[a.shape](a.stale, workdir, mods)
        gc.collect()
        fresh_equal = in_fork(first, recorder) == in_fork(second, recorder)
        settling = settle(first, recorder)
        floors: list[float] = []
        times: dict[str, list[float]] = {e.name: [] for e in engines}
        docs: dict[str, list[Any]] = {e.name: [] for e in engines}
        walks: dict[str, Any] = {}
        ran: dict[str, Any] = {}
        for r in range(a.repeat):
            floors.append(timed(floor))
            for e in in_order(engines, r):
                s = e.scan(recorder)
                t0 = time.perf_counter()
                doc = s.run()[0]
                times[e.name].append(time.perf_counter() - t0)
                walks[e.name] = [s.walks, s.doubt, getattr(s, "levels_reused", None)]
                ran[e.name] = getattr(s, "engine", None)  # (None: an engine that does not say)
                if e.helper_off is not None and ran[e.name] not in (None, e.name):
                    raise SystemExit(f"a scan meant for {e.name} ran on {ran[e.name]}'s code")
                docs[e.name].append(norm(json.loads(json.dumps(doc))))
        alive = sum(1 for p in probes if p() is not None)
    importlib.import_module("reloadscope.agent.native").disable(False)
    f = statistics.median(floors)
    out = {
        "python": sys.version.split()[0],
        "shape": a.shape,
        "objects": len(gc.get_objects()),
        "stale_alive": alive,
        "native_helper": helper,
        "engines": [e.name for e in engines],
        "floor_s": round(f, 4),
        **{f"{k}_x": round(statistics.median(v) / f, 2) for k, v in times.items()},
        **{f"{k}_ratios": [round(t / x, 2) for t, x in zip(v, floors)] for k, v in times.items()},
        # The second engine's time over the first's, per repetition.
        f"{second.name}_over_{first.name}": [
            round(b / x, 3) for b, x in zip(times[second.name], times[first.name])
        ],
        "walks_doubt_reused": walks,
        "engine_ran": ran,  # each engine's Scan.engine ("native" or "python"; None: not said)
        "settling_scans": settling,
        "fresh_reports_equal": fresh_equal,
        "reports_equal": docs[first.name] == docs[second.name],
    }
    if not out["reports_equal"]:
        out["differing_reports"] = keep(docs)
    equal = (
        "reports equal"
        if out["fresh_reports_equal"] and out["reports_equal"]
        else (
            f"REPORTS DIFFER (fresh: {'equal' if fresh_equal else 'differ'}, timed: "
            f"{'equal' if out['reports_equal'] else 'differ'})"
        )
    )
    print(
        f"CPython {out['python']}, {a.shape}, {out['objects']:,} objects, {a.repeat} "
        f"repetitions; native helper: {helper}; {equal}"
    )
    width = max(len(f"{k} ({v})") for k, v in described.items())
    for k, v in times.items():
        print(f"  {f'{k} ({described[k]})':<{width}}  {ratio_text(v, floors)}")
    over = sorted(out[f"{second.name}_over_{first.name}"])
    med = statistics.median(times[second.name]) / statistics.median(times[first.name])
    print(
        f"  {second.name} / {first.name}: {med:.2f}x (per repetition {over[0]:.2f}-{over[-1]:.2f})"
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
