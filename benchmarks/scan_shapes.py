"""Scan cost, stall and memory against the floor, for several shapes of stale objects and heaps.

Each run builds an application-like heap of about --sizes gc-tracked objects (``_heap``: big lists
of records, caches, nested config dicts; 3.14+ tracks more of each record, so its heaps come out
about 1.45 times as big: the table gives the real count), then really reloads a module
``bench_plug`` so that old objects exist, held at depths 1 to 10 (chains of lists, dicts and
records) in one of these shapes:

- one-class:      100 instances of ONE old class below a module of their own, every node of
                  their chains also holding one big list of half the heap's objects (the
                  records and tags lists of two application modules);
- many-classes:   100 distinct old classes (C0..C99, a method each), no instances;
- many-functions: 100 distinct old functions;
- inside:         50 old functions and 50 old instances whose chain heads replace records in
                  the application's big lists (scan_vs_floor's *inside*);
- apart:          the same under their own module (scan_vs_floor's *apart*);
- one-class-deep: one-class at depths 3 to 12: no instance is then within the depth the
                  first walk's levels alone prove exact (the shape that sent the scan to its
                  full walk before the holder counts of ``agent/exact.py``).

Each shape and size runs in a child interpreter of its own (``--one``), so heaps never add up.
The child measures, interleaved --repeat times, the floor (one bare pass over the heap:
``gc.get_objects()`` plus ``gc.get_referents`` on each) and ``reloadscope.scan(collect=False)``,
and reports min/median/max and the per-repetition ratio scan/floor.  Then, in --repeat further
scans of their own (so the timings above run without it), a ticker thread sleeping 1 ms
measures the longest stall, against the stall of a bare ``gc.get_objects()``, and the extra peak
RSS of the scan is read from /proc/self/status (after glibc's ``malloc_trim``, so that memory
the previous pass freed is not silently reused, and the peak reset through
/proc/self/clear_refs).
Every report is checked: each stale object alive is reported (against the weak references) and
each entry has a module path; and each entry's shortest module path must be as deep as the
exhaustive walk's (``Scan(full_walk=True)``), on the same heap: the first scan against a full
walk run in a fork taken just before it, a later scan against a full walk right after it.
A scan changes the heap it walks (on 3.11+, naming an instance's attribute materialises its
``__dict__``, one more step on later paths): "drift" counts the entries that later scans report
deeper than the first did.  The benchmark holds its stale objects only weakly, so it adds no
holder of its own.

--pythons all runs everything under each CPython 3.10+ that tests/scenario.py finds (pyenv's,
scripts/provide-pythons', python3.X on PATH), always with PYTHONPATH=<repo>/src.

The engine: the scans (the timed ones and those under the ticker) are the real
``reloadscope.scan``, so they run the agent's native helper (``agent/native.py``) wherever it
loads, as shipped.  The header line says ``native helper: loaded`` or ``native helper: not
loaded (<why>)`` for each interpreter, the table's ``engine`` column and each run's JSON
(``engine``, ``native_helper``) which engine ran.  The children inherit this environment:
``RELOADSCOPE_NATIVE=0 python benchmarks/scan_shapes.py ...`` measures the Python code alone.
``--engines native,python`` measures both in each child, on one heap: each repetition of the
timings (floor, then a scan by each engine) and of the stall scans runs both engines, their
order alternating (``native.disable`` switches between them); the table then has a row per
engine (its scan times, ratios, stall, stall ratio and memory; the first engine's also at the
top level of the run's JSON, each one's under ``by_engine``), and the engines' reports in each
repetition of the stall scans must be equal (a problem otherwise).

    python benchmarks/scan_shapes.py [--sizes 0.25M,1M,4M] [--shapes one-class,...]
        [--repeat N] [--pythons all|current|3.11,3.12,...] [--engines native,python]
        [--quick] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
import weakref
from pathlib import Path
from typing import Any

from _heap import (
    build_heap,
    choose_engines,
    comparable,
    engine_scan,
    floor,
    import_fresh,
    in_order,
    make_stale,
    native_state,
    place_apart,
    place_inside,
    plug_source,
    reload_for_real,
    timed,
    use_engine,
    walks_needed,
    wrap,
)

ROOT = Path(__file__).resolve().parent.parent
SHAPES = ("one-class", "one-class-deep", "many-classes", "many-functions", "inside", "apart")
EXTRA_SHAPES: tuple[str, ...] = ()  # run only when asked for
SIZES = "0.25M,1M,4M"
QUICK_OBJECTS = 100_000  # big lists still above the first walk's deferral threshold
STALE = 100
QUICK_STALE = 20
GET_OBJECTS_STALLS = 3

# -- the shapes (run in the child) ------------------------------------------------------------
Probes = list[weakref.ref]


def classes_source(n: int, version: int) -> str:
    return "".join(
        f"\nclass C{k}:\n    version = {version}\n\n    def run(self):\n        return {k}\n"
        for k in range(n)
    )


def one_class(n: int, workdir: str, mods: list[types.ModuleType], lowest: int = 1) -> Probes:
    half = mods[: len(mods) // 2]
    big = [x for m in half for r in m.records for x in (r, r.tags)]  # type: ignore[attr-defined]
    plug = import_fresh(workdir, "bench_plug", plug_source(1, 1))
    heads, probes = [], []
    for k in range(n):
        target = plug.Session(k)
        probes.append(weakref.ref(target))
        heads.append((lowest + k % 10, wrap(target, lowest + k % 10, k, also=big)))
        del target
    del big
    reload_for_real(plug, workdir, plug_source(1, 2))
    place_apart(heads)
    return probes


def one_class_deep(n: int, workdir: str, mods: list[types.ModuleType]) -> Probes:
    return one_class(n, workdir, mods, lowest=3)


def many_classes(n: int, workdir: str, mods: list[types.ModuleType]) -> Probes:
    plug = import_fresh(workdir, "bench_plug", classes_source(n, 1))
    heads, probes = [], []
    for k in range(n):
        target = getattr(plug, f"C{k}")
        probes.append(weakref.ref(target))
        heads.append((1 + k % 10, wrap(target, 1 + k % 10, k)))
        del target
    reload_for_real(plug, workdir, classes_source(n, 2))
    place_apart(heads)
    return probes


def many_functions(n: int, workdir: str, mods: list[types.ModuleType]) -> Probes:
    plug = import_fresh(workdir, "bench_plug", plug_source(n, 1))
    heads, probes = [], []
    for k in range(n):
        target = getattr(plug, f"handler_{k}")
        probes.append(weakref.ref(target))
        heads.append((1 + k % 10, wrap(target, 1 + k % 10, k)))
        del target
    reload_for_real(plug, workdir, plug_source(n, 2))
    place_apart(heads)
    return probes


def inside(n: int, workdir: str, mods: list[types.ModuleType]) -> Probes:
    heads, probes = make_stale(n, workdir)
    place_inside(heads, mods)
    return probes


def apart(n: int, workdir: str, mods: list[types.ModuleType]) -> Probes:
    heads, probes = make_stale(n, workdir)
    place_apart(heads)
    return probes


BUILD = {
    "one-class": one_class,
    "one-class-deep": one_class_deep,
    "many-classes": many_classes,
    "many-functions": many_functions,
    "inside": inside,
    "apart": apart,
}


def _kind(o: object) -> str:
    if isinstance(o, type):
        return "class"
    return "function" if isinstance(o, types.FunctionType) else "instance"


def with_classes(probes: Probes) -> dict[str, Probes]:
    """The probes by report kind, plus one for the class of the instances (alive through them)."""
    out: dict[str, Probes] = {}
    classes: dict[int, weakref.ref] = {}
    for p in probes:
        o = p()
        if o is not None:
            out.setdefault(_kind(o), []).append(p)
            if _kind(o) == "instance":
                classes.setdefault(id(type(o)), weakref.ref(type(o)))
        del o
    if classes:
        out.setdefault("class", []).extend(classes.values())
    return out


# -- stall and memory (child) -----------------------------------------------------------------
class Ticker:
    """A thread sleeping 1 ms in a loop: the longest gap between its wake-ups, while the
    ``with`` block ran, is the longest the block kept it from running."""

    def __init__(self) -> None:
        self.max_gap = 0.0
        self.ticks = 0
        self.stop = False
        self.thread = threading.Thread(target=self._run, name="ticker", daemon=True)

    def _run(self) -> None:
        last = time.perf_counter()
        while not self.stop:
            time.sleep(0.001)
            now = time.perf_counter()
            self.max_gap = max(self.max_gap, now - last)
            self.ticks += 1
            last = now

    def _wait_ticks(self, n: int) -> None:
        target = self.ticks + n
        while self.ticks < target:
            time.sleep(0.0005)

    def __enter__(self) -> Ticker:
        self.thread.start()
        self._wait_ticks(3)
        self.max_gap = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self._wait_ticks(3)  # the gap the block ended is closed by the next tick
        self.stop = True
        self.thread.join()


def stall_of_get_objects() -> list[float]:
    """The stall of each of a few bare ``gc.get_objects()`` calls (s)."""
    gaps = []
    for _ in range(GET_OBJECTS_STALLS):
        with Ticker() as t:
            gc.get_objects()
        gaps.append(t.max_gap)
    return gaps


def vm_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def trim_malloc() -> bool:
    """Give the memory that malloc keeps free back to the system (glibc), so that a scan that
    reuses it still counts: otherwise the figure depends on what the previous pass freed."""
    try:
        import ctypes

        return bool(ctypes.CDLL(None).malloc_trim(0) or True)
    except (OSError, AttributeError):
        return False


def reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def stall_and_memory_scans(
    repeat: int, engines: list[str]
) -> tuple[dict[str, list[float]], dict[str, list[dict | None]], dict[str, list[dict]]]:
    """``repeat`` scans by each engine under the ticker (their order alternating): by engine,
    their stalls (s), their memory figures (None when the peak cannot be reset) and their
    report documents."""
    stalls: dict[str, list[float]] = {e: [] for e in engines}
    memory: dict[str, list[dict | None]] = {e: [] for e in engines}
    docs: dict[str, list[dict]] = {e: [] for e in engines}
    for rep in range(repeat):
        for e in in_order(engines, rep):
            use_engine(e)
            trim_malloc()
            can_reset = reset_peak()
            before = vm_kb("VmRSS")
            with Ticker() as t:
                doc = _scan_doc()
            peak = vm_kb("VmHWM")
            stalls[e].append(t.max_gap)
            docs[e].append(doc)
            if can_reset and before is not None and peak is not None:
                memory[e].append({"rss_kb": before, "extra_kb": max(0, peak - before)})
            else:
                memory[e].append(None)
    use_engine(engines[0])
    return stalls, memory, docs


def measure_engines(
    repeat: int, engines: list[str]
) -> tuple[dict[str, list[float]], list[float], dict]:
    """Interleaved, ``repeat`` times: the floor, then ``reloadscope.scan(collect=False)`` by
    each engine (their order alternating).  Returns the scan times by engine, the floor
    times and the document of the first scan (``engines[0]``'s, on the heap as it was)."""
    times: dict[str, list[float]] = {e: [] for e in engines}
    floors: list[float] = []
    first: dict = {}
    for rep in range(repeat):
        floors.append(timed(floor))
        for e in in_order(engines, rep):
            use_engine(e)
            t0 = time.perf_counter()
            doc = _scan_doc()
            times[e].append(time.perf_counter() - t0)
            first = first or doc
    use_engine(engines[0])
    return times, floors, first


def _scan_doc() -> dict:
    import reloadscope

    return reloadscope.scan(collect=False).to_json()


# -- correctness (child) ----------------------------------------------------------------------
Depths = dict[tuple[str, str], "int | None"]


def _plug_generations(doc: dict) -> list[dict]:
    return [g for m in doc["modules"] if m["name"] == "bench_plug" for g in m["generations"]]


def plug_entries(doc: dict) -> list[dict]:
    return [s for m in doc["modules"] if m["name"] == "bench_plug" for s in m["stale"]]


def module_depths(doc: dict) -> Depths:
    """(kind, qualname) -> the shallowest module-path depth of that entry (None: no module
    path)."""
    out: Depths = {}
    for s in plug_entries(doc):
        key = (s["kind"], s["qualname"])
        d = min((p["depth"] for p in s["paths"] if p["root"] == "module"), default=None)
        old = out.get(key)
        out[key] = d if old is None else old if d is None else min(old, d)
    return out


def reported_counts(doc: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in plug_entries(doc):
        out[s["kind"]] = out.get(s["kind"], 0) + s["count"]
    return out


def full_walk_depths() -> Depths:
    """The depths the exhaustive walk reports for this very heap, from a forked copy of the
    process: a scan changes the heap it reports on (it materialises instance dicts on 3.11+),
    and the fork leaves this one as it was.  Falls back to walking here without fork."""
    if not hasattr(os, "fork"):
        return module_depths(engine_scan(full_walk=True).run()[0])
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the copy: walk, send the depths, leave without any cleanup of the parent's
        try:
            os.close(r)
            depths = module_depths(engine_scan(full_walk=True).run()[0])
            data = json.dumps([[k, q, d] for (k, q), d in depths.items()]).encode()
            with os.fdopen(w, "wb") as fh:
                fh.write(data)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    return {(k, q): d for k, q, d in json.loads(data)}


def compare(got: Depths, want: Depths) -> dict[str, str]:
    out = {}
    for key in sorted(set(got) | set(want)):
        g, w = got.get(key, "absent"), want.get(key, "absent")
        if g != w:
            out[f"{key[0]} {key[1]}"] = f"{g} vs {w}"
    return out


def check(
    docs: list[dict], probes: dict[str, Probes], fresh_full: Depths, settled_full: Depths
) -> dict[str, Any]:
    """What the reports say against the weak references and against the exhaustive walk.

    ``docs[0]`` is the first scan (on the heap ``fresh_full`` walked), ``docs[-1]`` a scan run
    just before ``settled_full``'s walk, after the others."""
    alive = {kind: sum(1 for p in ps if p() is not None) for kind, ps in probes.items()}
    problems: list[str] = []
    for doc in docs:
        reported = reported_counts(doc)
        for kind in sorted(set(alive) | set(reported)):
            if reported.get(kind, 0) != alive.get(kind, 0):
                problems.append(
                    f"{kind}: {reported.get(kind, 0)} reported of {alive.get(kind, 0)} alive"
                )
        entries = plug_entries(doc)
        with_path = sum(1 for d in module_depths(doc).values() if d is not None)
        if with_path != len(entries):
            problems.append(f"module path for {with_path}/{len(entries)} entries")
    first, last = module_depths(docs[0]), module_depths(docs[-1])
    fresh, settled = compare(first, fresh_full), compare(last, settled_full)
    mismatches = [f"1st scan vs full walk: {k}: {v}" for k, v in fresh.items()]
    mismatches += [f"later scan vs full walk: {k}: {v}" for k, v in settled.items()]
    drift = compare(last, first)
    for m in mismatches:
        print(f"depth mismatch: {m}", file=sys.stderr)
    depths = [d for d in first.values() if d is not None]
    return {
        "alive": alive,
        "reported": reported_counts(docs[0]),
        "entries": len(plug_entries(docs[0])),
        "entries_with_module_path": sum(1 for d in first.values() if d is not None),
        "depths": [min(depths), max(depths)] if depths else [],
        "depth_mismatches": len(mismatches),
        "mismatches": mismatches,
        # Entries whose depth changed between the first scan and a later one (same heap
        # otherwise): what the scans themselves changed.
        "drift": len(drift),
        "drift_entries": [f"{k}: later {v} (1st)" for k, v in drift.items()],
        "problems": list(dict.fromkeys(problems)),
    }


# -- one run (child) --------------------------------------------------------------------------
def spread(xs: list[float], digits: int = 4) -> dict[str, float]:
    return {
        "min": round(min(xs), digits),
        "median": round(statistics.median(xs), digits),
        "max": round(max(xs), digits),
    }


def run_one(
    shape: str, objects: int, stale: int, repeat: int, engines_asked: str | None = None
) -> dict[str, Any]:
    import reloadscope

    helper = native_state()
    try:
        # As shipped by default: the native helper when it loads here, else the Python code.
        engines = (
            choose_engines(engines_asked)
            if engines_asked
            else ["native" if helper == "loaded" else "python"]
        )
    except SystemExit as e:
        return {"shape": shape, "ok": False, "error": str(e), "native_helper": helper}
    reloadscope.install(listen=False)
    sys.dont_write_bytecode = True
    mods = build_heap(objects)
    with tempfile.TemporaryDirectory() as workdir:
        placed = BUILD[shape](stale, workdir, mods)
        gc.collect()
        placed_alive = sum(1 for p in placed if p() is not None)
        probes = with_classes(placed)
        heap_objects = len(gc.get_objects())
        use_engine(engines[0])
        fresh_full = full_walk_depths()
        # After the fork every page of the heap is write-protected once: the first pass that
        # writes reference counts takes a fault per page.  Take those untimed.
        floor()
        # Interleaved floor, scan(s), floor, scan(s), ...; the first scan's document is kept.
        times, floors, first = measure_engines(repeat, engines)
        stalls_get = stall_of_get_objects()
        stalls, memory, docs = stall_and_memory_scans(repeat, engines)
        walks, doubt, settled = walks_needed()
        settled_full = module_depths(engine_scan(full_walk=True).run()[0])
        all_docs = [d for e in engines for d in docs[e]]
        figures = check([first, *all_docs, settled], probes, fresh_full, settled_full)
    if placed_alive != stale:
        figures["problems"].append(f"only {placed_alive} of the {stale} stale objects placed alive")
    # The engines' reports of one repetition of the stall scans (a settled heap) must agree.
    unequal = [rep for rep in range(repeat) if len({comparable(docs[e][rep]) for e in engines}) > 1]
    if unequal:
        figures["problems"].append(f"the engines' reports differ (repetitions {unequal})")
    figures["ok"] = not figures["problems"] and not figures["mismatches"]
    by_engine = {
        e: engine_figures(times[e], floors, stalls[e], stalls_get, memory[e]) for e in engines
    }
    del mods
    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "reloadscope": os.path.dirname(reloadscope.__file__),
        "native_helper": helper,
        "engines": engines,
        # The figures at the top level are the first engine's; ``by_engine`` has each one's.
        "engine": engines[0],
        "reports_equal": not unequal if len(engines) > 1 else None,
        "shape": shape,
        "objects_asked": objects,
        "heap_objects": heap_objects,
        "stale": stale,
        "repeat": repeat,
        "floor_s": [round(x, 4) for x in floors],
        "floor": spread(floors),
        **by_engine[engines[0]],
        "by_engine": by_engine,
        "walks": walks,
        "doubt": doubt,
        # The timeline's retained figures, part of each scan's time (agent/retained.py).
        "retained_s": [d["scan"].get("retained_s") for d in (first, *docs[engines[0]])],
        "retained_bytes": [g.get("retained_bytes") for g in _plug_generations(first)],
        "stall_get_objects_ms": round(max(stalls_get) * 1000, 1),
        "stall_get_objects_ms_all": [round(x * 1000, 1) for x in stalls_get],
        **figures,
    }


def engine_figures(
    scans: list[float],
    floors: list[float],
    stalls: list[float],
    stalls_get: list[float],
    memory: list[dict | None],
) -> dict[str, Any]:
    """One engine's times, ratios to the floor, stalls and memory."""
    ratios = [s / f for s, f in zip(scans, floors)]
    mem = [m for m in memory if m is not None]
    worst = max(mem, key=lambda m: m["extra_kb"]) if mem else None
    return {
        "scan_s": [round(x, 4) for x in scans],
        "scan_over_floor": [round(x, 3) for x in ratios],
        "scan": spread(scans),
        "ratio": spread(ratios, 2),
        "stall_scan_ms": round(max(stalls) * 1000, 1),
        "stall_scan_ms_all": [round(x * 1000, 1) for x in stalls],
        "stall_ratio": round(max(stalls) / max(stalls_get), 2),
        "rss_mb": round(worst["rss_kb"] / 1024, 1) if worst else None,
        "mem_extra_mb": round(worst["extra_kb"] / 1024, 1) if worst else None,
        "mem_extra_pct": round(100 * worst["extra_kb"] / worst["rss_kb"], 1) if worst else None,
        "memory_note": None if worst else "/proc/self/clear_refs not writable: no peak reset",
    }


# -- the driver -------------------------------------------------------------------------------
def parse_size(text: str) -> int:
    t = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(t[-1:], 1)
    return int(float(t[:-1] if scale > 1 else t) * scale)


def interpreters(which: str) -> dict[str, str]:
    """ "3.X" -> interpreter: the running one, all that tests/scenario.py finds, or those listed
    (versions or paths)."""
    if which == "current":
        return {f"{sys.version_info[0]}.{sys.version_info[1]}": sys.executable}
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from scenario import python_versions
    finally:
        sys.path.remove(str(ROOT / "tests"))
    found = python_versions()
    if which == "all":
        return found
    out = {}
    for w in which.split(","):
        w = w.strip()
        if w in found:
            out[w] = found[w]
        elif os.path.exists(w):
            out[w] = w
        else:
            raise SystemExit(f"no CPython {w} here (found: {', '.join(found)})")
    return out


def child(
    python: str, shape: str, objects: int, stale: int, repeat: int, engines: str | None = None
) -> dict[str, Any]:
    cmd = [python, __file__, "--one", shape, "--objects", str(objects)]
    cmd += ["--stale", str(stale), "--repeat", str(repeat)]
    if engines:
        cmd += ["--engines", engines]
    # This environment, RELOADSCOPE_NATIVE included (=0: the children scan without the helper).
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
    lines = p.stdout.strip().splitlines()
    if p.returncode != 0 or not lines:
        return {"shape": shape, "ok": False, "error": f"exit {p.returncode}"}
    return json.loads(lines[-1])


def engine_state() -> str:
    """The reloadscope measured: its directory, and the commit (with what is changed in src/)."""
    where = str(ROOT / "src")
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return f"{where} (not a git checkout)"
    changed = [line[3:] for line in dirty if line.strip()]
    if len(changed) > 3:
        return f"{where} at {head} + uncommitted changes to {len(changed)} files"
    return f"{where} at {head}" + (f" + changes to {', '.join(changed)}" if changed else "")


def helper_state(python: str) -> str:
    """``loaded`` or ``not loaded (<why>)``: the native helper in a child of ``python`` (the
    children's environment)."""
    code = "import sys; sys.path.insert(0, sys.argv[1]); import _heap; print(_heap.native_state())"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    p = subprocess.run(
        [python, "-c", code, str(ROOT / "benchmarks")], capture_output=True, text=True, env=env
    )
    lines = p.stdout.strip().splitlines()
    return lines[-1] if p.returncode == 0 and lines else f"unknown (exit {p.returncode})"


def engines_note(asked: str | None, helpers: dict[str, str]) -> str:
    """Which engines the children run, and the native helper in each interpreter."""
    states = ", ".join(f"{v} {h}" for v, h in helpers.items())
    if len(set(helpers.values())) == 1:
        states = next(iter(helpers.values()))
    which = f"engines {asked}" if asked else "engine as shipped"
    off = os.environ.get("RELOADSCOPE_NATIVE") == "0" and "RELOADSCOPE_NATIVE" not in states
    return f"{which}; native helper: {states}" + (" (RELOADSCOPE_NATIVE=0 here)" if off else "")


def label(objects: int) -> str:
    if objects % 250_000 == 0:
        return f"{objects / 1e6:g}M"
    return f"{objects:,}"


COLUMNS = (
    "python",
    "shape",
    "size",
    "engine",
    "objects",
    "scan s min/med/max",
    "floor s",
    "scan/floor min/med/max",
    "walks",
    "stall ms",
    "g_o ms",
    "stall x",
    "mem MB",
    "mem %",
    "drift",
    "check",
)
LEGEND = (
    "engine: native (the native helper) or python (without it); floor s: median of the "
    "floor; stall ms: longest stall of a 1 ms ticker during a scan; g_o ms: same during a bare "
    "gc.get_objects(); stall x: their ratio; mem MB and %: the scan's extra peak RSS, and "
    "against the heap's RSS; drift: entries reported deeper after the first scan than by it"
)


def cells(r: dict[str, Any], engine: str | None = None) -> list[str]:
    """One table row: ``engine``'s figures (default: the first engine's, at the run's top
    level; ``drift``: entries whose depth grew after the first scan)."""
    head = [r.get("python", "?"), r["shape"], r["size"]]
    if "error" in r:
        return [*head, "", *[""] * (len(COLUMNS) - 5), f"child failed: {r['error']}"]
    e = r["by_engine"][engine] if engine else r
    s, f, q = e["scan"], r["floor"], e["ratio"]
    mem = e["rss_mb"] is not None
    problems = list(r["problems"])
    if r["mismatches"]:
        problems.append(f"{r['depth_mismatches']} depth mismatches")
    return [
        *head,
        engine or r.get("engine", "?"),
        f"{r['heap_objects']:,}",
        f"{s['min']:.3f} {s['median']:.3f} {s['max']:.3f}",
        f"{f['median']:.3f}",
        f"{q['min']:.2f} {q['median']:.2f} {q['max']:.2f}",
        str(r["walks"]),
        f"{e['stall_scan_ms']:.1f}",
        f"{r['stall_get_objects_ms']:.1f}",
        f"{e['stall_ratio']:.2f}",
        f"{e['mem_extra_mb']:.1f}" if mem else "null",
        f"{e['mem_extra_pct']:.1f}" if mem else "null",
        str(r["drift"]),
        "ok" if r["ok"] else "; ".join(problems),
    ]


def rows(r: dict[str, Any]) -> list[list[str]]:
    """A run's rows: one per engine it measured."""
    if "error" in r or "by_engine" not in r:
        return [cells(r)]
    return [cells(r, e) for e in r["engines"]]


def table(runs: list[dict[str, Any]]) -> list[str]:
    lines = [list(COLUMNS), *(row for r in runs for row in rows(r))]
    widths = [max(len(row[i]) for row in lines) for i in range(len(COLUMNS))]
    left = {"python", "shape", "engine", "check"}
    return [
        "  ".join(
            c.ljust(w) if name in left else c.rjust(w) for name, c, w in zip(COLUMNS, row, widths)
        ).rstrip()
        for row in lines
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=SIZES, help=f"heap sizes (default {SIZES})")
    ap.add_argument("--shapes", default=",".join(SHAPES), help="default: all")
    ap.add_argument("--repeat", type=int, help="repetitions (default 5; 3 at 4M and above)")
    ap.add_argument("--pythons", default="current", help="current (default), all, or 3.X,...")
    ap.add_argument("--stale", type=int, help=f"stale objects per shape (default {STALE})")
    ap.add_argument("--quick", action="store_true", help="100k objects, 20 stale, 1 repetition")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument(
        "--engines",
        help="native,python: each child times and stalls both, alternately, on one heap "
        "(default: as shipped, the native helper where it loads; RELOADSCOPE_NATIVE=0 in "
        "the environment reaches the children and keeps it out)",
    )
    # A child's single run:
    ap.add_argument("--one", choices=SHAPES + EXTRA_SHAPES, help=argparse.SUPPRESS)
    ap.add_argument("--objects", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.objects, args.stale, args.repeat, args.engines)))
        return
    shapes = [s.strip() for s in args.shapes.split(",")]
    for s in shapes:
        if s not in SHAPES + EXTRA_SHAPES:
            raise SystemExit(f"unknown shape {s!r} (shapes: {', '.join(SHAPES + EXTRA_SHAPES)})")
    if args.quick:
        sizes, stale = [QUICK_OBJECTS], args.stale or QUICK_STALE
    else:
        sizes, stale = [parse_size(x) for x in args.sizes.split(",")], args.stale or STALE

    def repeat_for(objects: int) -> int:
        if args.repeat:
            return args.repeat
        return 1 if args.quick else 3 if objects >= 4_000_000 else 5

    pythons = interpreters(args.pythons)
    used = ", ".join(f"{repeat_for(n)} at {label(n)}" for n in sizes)
    engine = engine_state()
    helpers = {v: helper_state(p) for v, p in pythons.items()}
    engines = engines_note(args.engines, helpers)
    print(
        f"engine {engine}; pythons {', '.join(pythons)}; {engines}; repetitions: {used}; "
        f"{stale} stale objects per shape; {os.cpu_count()} cores",
        file=sys.stderr,
    )
    runs = []
    total = len(pythons) * len(sizes) * len(shapes)
    for version, python in pythons.items():
        for objects in sizes:
            for shape in shapes:
                print(
                    f"[{len(runs) + 1}/{total}] {version} {shape} {label(objects)}",
                    file=sys.stderr,
                    flush=True,
                )
                r = child(python, shape, objects, stale, repeat_for(objects), args.engines)
                r["size"] = label(objects)
                r.setdefault("python", version)
                runs.append(r)
    if args.json:
        facts = {"engine": engine, "stale": stale, "repetitions": used}
        facts |= {"engines": args.engines or "as shipped", "native_helper": helpers}
        print(json.dumps({**facts, "runs": runs}))
        return
    print(f"engine {engine}; {engines}; {stale} stale objects per shape; repetitions: {used}")
    print("\n".join(table(runs)))
    print(LEGEND)
    for r in runs:
        what = f"  {r.get('python')} {r['shape']} {r['size']}:"
        if r.get("doubt"):
            print(f"{what} 2nd walk because {r['doubt']}")
        for m in r.get("mismatches", []):
            print(f"{what} depth mismatch, {m}")
        if r.get("drift_entries"):
            print(f"{what} deeper after the 1st scan: {', '.join(r['drift_entries'][:3])}, ...")
    bad = [r for r in runs if not r.get("ok")]
    if bad:
        print(f"{len(bad)} run(s) failed a check (see 'check' above and stderr)")


if __name__ == "__main__":
    main()
