"""One scan: find the stale objects, walk the heap once for their paths, build the document."""

from __future__ import annotations

import gc
import os
import sys
import time
from itertools import compress, islice
from types import FrameType, FunctionType, ModuleType

from . import exact, forksafe, graph, paths, retained, safe
from .hints import hint
from .paths import module_root_step, render
from .recorder import ModuleRecord, Recorder
from .stale import CODE_TYPES, Classifier, Found

TYPE_CHECKING = False  # typing is not imported at run time: loading must stay cheap
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

FORMAT = "reloadscope-report"
VERSION = 1
PATHS_PER_ENTRY = 3
MAX_DEPTH = 100
TIME_BUDGET_S = 120.0
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_KIND_ORDER = {"module": 0, "class": 1, "function": 2, "instance": 3, "code": 4, "other": 5}


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))


def _ours(filename: object) -> bool:
    return type(filename) is str and filename.startswith(_PACKAGE_DIR)


class _Entry:
    __slots__ = ("count", "found", "objs", "size")

    def __init__(self, found: Found) -> None:
        self.found = found
        self.objs: list[object] = []
        self.count = 0
        self.size = 0


class Scan:
    def __init__(
        self,
        recorder: Recorder | None,
        *,
        collect: bool = True,
        max_depth: int = MAX_DEPTH,
        time_budget: float = TIME_BUDGET_S,
        full_walk: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.recorder = recorder
        self.full_walk = full_walk  # always walk everything (the reference the tests compare with)
        self.collect = collect
        self.max_depth = max_depth
        self.deadline = 0.0
        self.time_budget = time_budget
        self.incomplete: list[str] = []
        self.walks = 0  # module-graph walks the last run needed (1, or 2 when the first was cut)
        self.doubt: str | None = None  # why the first walk's paths were not taken as shortest
        self.n_objects = 0
        self.retained_s = 0.0  # how long the timeline's retained figures took
        # Hears the heap's object count once, right after gc.get_objects() (a client's
        # progress line); see run().
        self.progress = progress

    # -- the steps -----------------------------------------------------------------------------
    def run(self) -> tuple[dict[str, Any], dict[str, dict[int, str]]]:
        # The scan's big lists are young: every automatic collection while they live would
        # traverse them all (tens of milliseconds each, with the GIL held).  So the cyclic
        # collector waits until the scan ends, then runs as before.  (Another thread that
        # switched it off meanwhile finds it on again: that window is the scan's length.)
        # A child forked meanwhile never sees the end of the scan: it turns the collector on
        # (forksafe.py), so the mark is set before the collector is switched off.
        automatic = gc.isenabled()
        if automatic:
            forksafe.gc_paused = True
            gc.disable()
        try:
            return self._run()
        finally:
            if automatic:
                if not gc.isenabled():
                    gc.enable()
                forksafe.gc_paused = False

    def _run(self) -> tuple[dict[str, Any], dict[str, dict[int, str]]]:
        started = time.time()
        t0 = time.perf_counter()
        self.deadline = time.monotonic() + self.time_budget
        if self.collect:
            gc.collect()
        objs = gc.get_objects()
        n_objects = self.n_objects = len(objs)
        if self.progress is not None:
            try:
                self.progress(n_objects)
            except Exception:
                pass  # a progress line is never worth a scan
        cls = Classifier(self.recorder)
        self._classify(cls, objs)
        graph.release([objs])  # emptied in slices: freeing it at once holds the GIL
        del objs
        running = self._running_frames(cls)
        entries = self._entries(cls.found)
        paths = self._paths(cls, entries)
        doc = self._document(cls, entries, paths, running, started)
        doc["scan"] = {
            "duration_s": round(time.perf_counter() - t0, 4),
            "objects": n_objects,
            "complete": not self.incomplete,
            "max_depth": self.max_depth,
            "collected": self.collect,
            "retained_s": round(self.retained_s, 4),
        }
        if self.incomplete:
            doc["scan"]["incomplete"] = "; ".join(self.incomplete)
        blind = self._blind_spots(cls)
        if blind:
            doc["scan"]["blind_spots"] = blind
        return doc, self._sources()

    def _blind_spots(self, cls: Classifier) -> list[str]:
        out = []
        rec = self.recorder
        if rec is None:
            out.append(
                "recording was not on in this process: reloads were not seen, generation "
                "numbers are unknown, and earlier executions are found by evidence alone "
                "(source comparison, replaced modules)"
            )
        elif rec.preloaded:
            few = ", ".join(rec.preloaded[:3]) + (", ..." if len(rec.preloaded) > 3 else "")
            out.append(
                f"recording began after {len(rec.preloaded)} of this program's modules were "
                f"imported ({few}): their reloads before then were not seen, and are found by "
                "evidence alone"
            )
        out.extend(cls.blind_spots())
        return out

    def _classify(self, cls: Classifier, objs: list[object]) -> None:
        modules = _subclasses(ModuleType)
        metas = _subclasses(type)
        # Classes recording saw an earlier generation make: their instances are picked in
        # the same pass, so a second pass is needed only for classes found stale otherwise.
        early = cls.recorded_old_classes()
        wanted = modules + metas + [FunctionType, *CODE_TYPES] + early
        picked = _of_types(objs, wanted, metas)
        module_ids = {id(t) for t in modules}
        meta_ids = {id(t) for t in metas}
        early_ids = {id(t) for t in early}
        fn = FunctionType
        found_modules, found_classes, functions, codes, instances = [], [], [], [], []
        for o in picked:
            t = type(o)
            if t is fn:
                functions.append(o)
            elif id(t) in meta_ids:
                found_classes.append(o)
            elif id(t) in module_ids:
                found_modules.append(o)
            elif id(t) in early_ids:
                instances.append(o)
            else:
                codes.append(o)
        del picked, early
        # Old module objects first: their dicts tell the functions they made.
        cls.modules(found_modules)
        cls.sources.index(functions)  # type: ignore[arg-type]
        for o in functions:
            cls.function(o)  # type: ignore[arg-type]
        for o in codes:
            cls.code_object(o)
        del functions, codes
        cls.classes(found_classes)  # type: ignore[arg-type]
        stale = {id(f.obj): f.obj for f in cls.found.values() if f.kind == "class"}
        cls.instances([o for o in instances if id(type(o)) in stale])
        del instances
        later = [c for i, c in stale.items() if i not in early_ids]
        if later:
            cls.instances(_of_types(objs, later, metas))  # type: ignore[arg-type]

    def _running_frames(self, cls: Classifier) -> list[tuple[str, FrameType, Found | None]]:
        """(thread name, frame, finding if it runs old code) for every frame outside the agent."""
        out = []
        names = _thread_names()
        frame: FrameType | None = None
        for tid, frame in sys._current_frames().items():
            f: FrameType | None = frame
            while f is not None:
                if not _ours(f.f_code.co_filename):
                    found = None
                    judged = cls.judge(f.f_code, f.f_globals, f)
                    if judged is not None:
                        owner, number, _, why = judged
                        qualname = safe.code_qualname(f.f_code)
                        found = Found(f, "code", owner, number, qualname, "frame", "old", why)
                        cls.found.pop(id(f), None)
                    out.append((names.get(tid, f"thread {tid}"), f, found))
                f = f.f_back
        # ``frame`` may be this very frame: keeping it would make a reference cycle that keeps
        # everything the scan holds (and so every stale object, once more) until a collection.
        frame = None
        return out

    def _entries(self, found: dict[int, Found]) -> dict[tuple, _Entry]:
        entries: dict[tuple, _Entry] = {}
        for f in found.values():
            key = (
                f.owner,
                f.kind,
                f.qualname,
                f.tname,
                f.generation,
                f.reason,
                id(f.carrier),
                f.evidence.kind,
            )
            e = entries.get(key)
            if e is None:
                e = entries[key] = _Entry(f)
            e.count += 1
            e.size += safe.sizeof(f.obj)
            e.objs.append(f.obj)
        return entries

    # -- paths ---------------------------------------------------------------------------------
    def _paths(self, cls: Classifier, entries: dict[tuple, _Entry]) -> dict[int, list[dict]]:
        """id(object) -> its paths, for a few sample objects of each entry."""
        targets = {id(o): o for e in entries.values() for o in e.objs}
        out: dict[int, list[dict]] = {}
        if not targets:
            return out
        seen: set[int] = set()
        roots, root_key = self._module_roots(seen)
        w = graph.walk(
            roots,
            seen,
            set(targets),
            max_depth=self.max_depth,
            deadline=self.deadline,
            defer_fanout=None if self.full_walk else graph.DEFER_FANOUT,
            give_up_after=None if self.full_walk else self.n_objects * 2 // 5,
        )
        self.walks = 1
        samples: dict[int, object] = {}
        found_chains: dict[int, list[list[object]]] = {}
        if w.gave_up:
            self.doubt = "the first walk saw most of the heap"
        else:
            samples = self._samples(entries, w.found)
            # Methods held only through their stale class are settled by the proof below
            # (with one holder search for all), or send the scan to the full walk.
            found_chains = self._chains(w, cls, entries, targets, samples, around=not w.deferred)
            if w.deferred and w.complete:
                self.doubt = self._doubt(
                    w, seen, cls, entries, targets, samples, found_chains, roots
                )
                if self.doubt is None:
                    # What this walk did not reach may sit in a deferred container: it is not
                    # "missing" (held outside the module graph).
                    targets = {i: o for i, o in targets.items() if i in w.found}
        if self.doubt is not None:
            # Some path may run through a big container: walk everything.
            self.walks = 2
            graph.release(w.levels)
            seen = set()
            roots, root_key = self._module_roots(seen)
            w = graph.walk(
                roots, seen, set(targets), max_depth=self.max_depth, deadline=self.deadline
            )
            samples = self._samples(entries, w.found)
            found_chains = self._chains(w, cls, entries, targets, samples)
        if not w.complete:
            deferred = " (big containers not searched)" if w.deferred else ""
            self.incomplete.append("module graph " + w.reason + deferred)
        with paths.positions(c for cs in found_chains.values() for c in cs):
            for i, chains in found_chains.items():
                for chain in chains:
                    key = root_key.get(id(chain[0]))
                    if key is None or len(chain) < 2:
                        continue
                    out.setdefault(i, []).append(self._module_path(key, chain, cls.found[i]))
                    out[i][-1]["object_id"] = i
        missing = {i: o for i, o in targets.items() if i not in w.found}
        graph.release(w.levels)
        if missing:
            self._thread_paths(cls, missing, seen, out)
            missing = {i: o for i, o in missing.items() if i not in out}
        if missing:
            self._probed_paths(cls, missing, seen, out)
        for i in missing:
            if i not in out and i in cls.found:
                out[i] = [self._other_path(cls.found[i], cut_short=not w.complete)]
        return out

    def _chains(
        self,
        w: graph.Walk,
        cls: Classifier,
        entries: dict[tuple, _Entry],
        targets: dict[int, object],
        samples: dict[int, object],
        *,
        around: bool = True,
    ) -> dict[int, list[list[object]]]:
        """The chains to show for each sample.  A method of a stale class is shown only when
        something outside the class holds it, so its chains must go around the class."""
        if not around:
            return graph.chains(w, samples, PATHS_PER_ENTRY)
        avoid = {
            id(o): e.found.carrier
            for e in entries.values()
            if e.found.carrier is not None
            for o in e.objs
            if id(o) in samples
        }
        ours = _own_ids(entries, targets, samples)
        mine = _own_containers(cls, entries, targets, samples)
        mine.append(avoid)
        return graph.chains(w, samples, PATHS_PER_ENTRY, avoid, _drop_own(ours), mine)

    def _doubt(
        self,
        w: graph.Walk,
        seen: set[int],
        cls: Classifier,
        entries: dict[tuple, _Entry],
        targets: dict[int, object],
        samples: dict[int, object],
        found_chains: dict[int, list[list[object]]],
        roots: list[object],
    ) -> str | None:
        """Why the first walk's paths may not be the shortest (None: they are).  The
        containers listed here are the scan's own, not holders of the stale objects."""
        groups = [(e.objs, e.found.carrier) for e in entries.values()]
        ours = _own_ids(entries, targets, samples)
        ours.update((id(found_chains), id(roots)))
        ours.update(id(c) for cs in found_chains.values() for c in cs)
        ours.update(map(id, groups))
        # The scan's containers that hold stale objects, so that their references are not
        # taken for holders (``graph.outside_counts``).
        own = _own_containers(cls, entries, targets, samples)
        own.append(groups)
        return exact.doubt(w, seen, groups, samples, found_chains, targets, _drop_own(ours), own)

    def _samples(
        self, entries: dict[tuple, _Entry], found: dict[int, tuple[int, int]]
    ) -> dict[int, object]:
        samples: dict[int, object] = {}
        for e in entries.values():
            ranked = sorted(e.objs, key=lambda o: found.get(id(o), (1 << 30, 0)))
            for o in ranked[:PATHS_PER_ENTRY]:
                samples[id(o)] = o
        return samples

    def _module_roots(self, seen: set[int]) -> tuple[list[object], dict[int, str]]:
        roots: list[object] = []
        root_key: dict[int, str] = {}
        for key, mod in list(dict.items(sys.modules)):
            if type(key) is not str:
                continue
            if issubclass(type(mod), ModuleType):
                ns = safe.module_dict(mod)
                if ns is None:
                    continue
                if _ours(dict.get(ns, "__file__")):
                    seen.add(id(ns))
                    seen.add(id(mod))
                    continue
                if id(ns) in root_key and safe.module_name(mod) != key:
                    continue
                if id(ns) not in root_key:
                    roots.append(ns)
                root_key[id(ns)] = key
            else:
                if id(mod) not in root_key:
                    roots.append(mod)
                    root_key[id(mod)] = key
        if self.recorder is not None:
            seen.add(id(self.recorder.finder))
        return roots, root_key

    def _module_path(self, key: str, chain: list[object], found: Found) -> dict:
        root = chain[0]
        if type(root) is dict:
            text, kind = module_root_step(key, root, chain[1])
            rest, kinds = render(text, chain[1:])
            kinds.insert(0, kind)
        else:
            rest, kinds = render(key, chain)
        holder = _holder_type(chain)
        types = frozenset(safe.type_name(type(o)) for o in chain[:-1])
        said = hint(
            found,
            "module",
            kinds,
            key,
            holder,
            types,
            text=rest,
            holder=chain[-2] if len(chain) > 1 else None,
            owner_ns=self._classifier_ns(found.owner),
        )
        return {
            "root": "module",
            "text": rest,
            "hint": said,
            "depth": len(chain) - 1,
            "steps": len(kinds),
            "_ids": frozenset(map(id, chain)),
        }

    def _classifier_ns(self, name: str) -> dict[str, Any] | None:
        mod = sys.modules.get(name)
        return safe.module_dict(mod) if mod is not None else None

    def _thread_paths(
        self,
        cls: Classifier,
        missing: dict[int, object],
        seen: set[int],
        out: dict[int, list[dict]],
    ) -> None:
        """Walk from the locals of running frames (invisible to gc on 3.11+)."""
        roots: list[object] = []
        prefix: dict[int, str] = {}
        names = _thread_names()
        frame: FrameType | None = None
        f: FrameType | None = None
        v: object = None
        for tid, frame in sys._current_frames().items():
            for f in _frames(frame):
                code = f.f_code
                where = (
                    f"thread {names.get(tid, str(tid))!r} > {code.co_name}() "
                    f"{code.co_filename}:{f.f_lineno}"
                )
                for k, v in _locals(f):
                    if id(v) not in prefix:
                        prefix[id(v)] = f"{where} > local {k!r}"
                        roots.append(v)
        frame = f = v = None  # no cycle through this frame, no uncounted reference (see above)
        self._extra_paths(cls, missing, seen, out, roots, prefix, "thread", "thread")

    def _probed_paths(
        self, cls: Classifier, missing: dict[int, object], seen: set[int], out: dict
    ) -> None:
        """Holders gc cannot see but Python can ask about: signal handlers, trace hooks."""
        roots: list[object] = []
        prefix: dict[int, str] = {}
        for expr, obj in _probes():
            if id(obj) not in prefix:
                prefix[id(obj)] = expr
                roots.append(obj)
        self._extra_paths(cls, missing, seen, out, roots, prefix, "other", "probe")

    def _extra_paths(
        self,
        cls: Classifier,
        missing: dict[int, object],
        seen: set[int],
        out: dict[int, list[dict]],
        roots: list[object],
        prefix: dict[int, str],
        root: str,
        hint_root: str,
    ) -> None:
        """Paths from roots outside the module namespaces (``prefix`` names each root)."""
        w = graph.walk(roots, seen, set(missing), max_depth=self.max_depth, deadline=self.deadline)
        if not w.complete:
            self.incomplete.append(f"{hint_root} graph {w.reason}")
        samples = {i: o for i, o in missing.items() if i in w.found}
        for i, chains in graph.chains(w, samples, PATHS_PER_ENTRY).items():
            found = cls.found.get(i)
            if found is None:
                continue
            for chain in chains:
                text, kinds = render(prefix[id(chain[0])], chain)
                out.setdefault(i, []).append(
                    {
                        "root": root,
                        "text": text,
                        "hint": hint(found, hint_root, kinds, None, None),
                        "depth": len(chain),
                        # A thread's frame and local, or the probed holder, then the steps.
                        "steps": len(kinds) + (2 if root == "thread" else 1),
                        "object_id": i,
                        "_ids": frozenset(map(id, chain)),
                    }
                )

    def _other_path(self, found: Found, cut_short: bool = False) -> dict:
        if cut_short:
            # Not a claim that nothing holds it: the search stopped before it could know.
            text = "not found before the search stopped (see the scan's incomplete note)"
        elif self.collect:
            text = (
                "not reachable from any module, running thread, signal handler or trace hook: "
                "held outside the gc graph (C extension, atexit, ...)"
            )
        else:
            text = (
                "not reachable from any module or running thread: held by a garbage cycle "
                "(gc.collect() frees it) or outside the gc graph"
            )
        return {
            "root": "other",
            "text": text,
            "hint": hint(found, "unsearched" if cut_short else "other", [], None, None),
            "depth": 0,
            "steps": 0,
            "object_id": id(found.obj),
        }

    # -- the document --------------------------------------------------------------------------
    def _document(
        self,
        cls: Classifier,
        entries: dict[tuple, _Entry],
        paths: dict[int, list[dict]],
        running: list,
        started: float,
    ) -> dict:
        by_module: dict[str, list[dict]] = {}
        # (module, generation) -> the reported stale objects and their summed sizes (the
        # timeline: what each generation still has alive).
        groups: dict[tuple[str, int | None], tuple[list[object], list[int]]] = {}
        for e in entries.values():
            f = e.found
            ps = [p for o in e.objs for p in paths.get(id(o), [])]
            if f.carrier is not None:
                # A method of a stale class is reported with its class unless something else
                # holds it directly.
                ps = [p for p in ps if id(f.carrier) not in p.get("_ids", (id(f.carrier),))]
                if not ps:
                    continue
            ps = [{k: v for k, v in p.items() if k != "_ids"} for p in ps]
            objs, size = groups.setdefault((f.owner, f.generation), ([], [0, 0]))
            objs.extend(e.objs)
            size[0] += e.count
            size[1] += e.size
            # Module paths first, shortest first; a step only gc can name goes last.
            ps.sort(key=lambda p: (p["root"] != "module", "__import__" in p["text"], p["depth"]))
            by_module.setdefault(f.owner, []).append(
                {
                    "kind": f.kind,
                    "qualname": f.qualname,
                    "type": f.tname,
                    "generation": f.generation,
                    "count": e.count,
                    "size": e.size,
                    "evidence": f.evidence.to_json(),
                    "paths": _dedupe(ps)[:PATHS_PER_ENTRY],
                }
            )
        for thread, frame, found in running:
            if found is None:
                continue
            code = frame.f_code
            objs, size = groups.setdefault((found.owner, found.generation), ([], [0, 0]))
            objs.append(frame)
            size[0] += 1
            size[1] += safe.sizeof(frame)
            by_module.setdefault(found.owner, []).append(
                {
                    "kind": "code",
                    "qualname": found.qualname,
                    "type": "frame",
                    "generation": found.generation,
                    "count": 1,
                    "size": safe.sizeof(frame),
                    "evidence": found.evidence.to_json(),
                    "paths": [
                        {
                            "root": "thread",
                            "text": f"thread {thread!r} > {code.co_name}() {code.co_filename}:"
                            f"{frame.f_lineno}",
                            "hint": hint(found, "thread", [], None, None),
                            "depth": 0,
                            "steps": 1,  # the thread runs it
                        }
                    ],
                }
            )
        timeline = self._timeline(groups)
        del groups
        records = cls.records
        names = set(by_module) | {n for n, r in records.items() if _reloaded(r)}
        modules = []
        for name in sorted(names):
            stale = by_module.get(name, [])
            stale.sort(
                key=lambda s: (
                    _KIND_ORDER.get(s["kind"], 9),
                    s["qualname"],
                    s["generation"] if s["generation"] is not None else -1,
                )
            )
            modules.append(self._module(cls, name, records.get(name), stale))
            _add_timeline(modules[-1], timeline)
        return {
            "format": FORMAT,
            "version": VERSION,
            "process": {
                "pid": os.getpid(),
                "python": safe.PY_VERSION,
                "argv": [a if type(a) is str else "?" for a in list(sys.argv)],
                "executable": sys.executable,
            },
            "taken_at": iso(started),
            "modules": modules,
        }

    def _timeline(
        self, groups: dict[tuple[str, int | None], tuple[list[object], list[int]]]
    ) -> dict[tuple[str, int | None], dict[str, Any]]:
        """(module, generation) -> its stale count, their bytes and what they retain."""
        keys = list(groups)
        stale_ids = {id(o) for objs, _ in groups.values() for o in objs}
        t0 = time.perf_counter()
        kept = retained.retained(
            ((groups[k][0], groups[k][1][1]) for k in keys), stale_ids, deadline=self.deadline
        )
        self.retained_s = time.perf_counter() - t0
        out: dict[tuple[str, int | None], dict[str, Any]] = {}
        for k, r in zip(keys, kept):
            n, nbytes = groups[k][1]
            fig: dict[str, Any] = {"stale": n, "stale_bytes": nbytes, "retained_bytes": None}
            if r is not None:
                fig["retained_bytes"] = r.bytes
                fig["retained_objects"] = r.objects
                if r.capped:
                    fig["retained_capped"] = True
            out[k] = fig
        return out

    def _module(
        self, cls: Classifier, name: str, rec: ModuleRecord | None, stale: list[dict]
    ) -> dict:
        if rec is None:
            at = self.recorder.installed_at if self.recorder is not None else time.time()
            mod = cls.current.get(name)
            return {
                "name": name,
                "file": safe.module_file(mod) if mod is not None else None,
                "current_generation": 0,
                "generations": [
                    {
                        "number": 0,
                        "started_at": iso(at),
                        "source_sha256": None,
                        "kind": "arrival",
                        "status": "unknown",
                        "trigger": None,
                        "error": None,
                    }
                ],
                "leftover_names": [],
                "stale": stale,
                "warnings": [],
                # Its executions before recording (or without it) were not seen: the stale
                # objects came from earlier ones, by evidence, their numbers unknown.
                "generations_known": False,
            }
        return {
            "name": name,
            "file": rec.file,
            "current_generation": rec.current.number,
            "generations": [
                {
                    "number": g.number,
                    "started_at": iso(g.started_at),
                    "source_sha256": g.sha256,
                    "kind": g.kind,
                    "status": g.status,
                    "trigger": g.trigger,
                    "error": g.error,
                }
                for g in rec.generations
            ],
            "leftover_names": _leftovers(cls, rec),
            "stale": stale,
            "warnings": list(dict.fromkeys(rec.warnings)),
        }

    def _sources(self) -> dict[str, dict[int, str]]:
        out: dict[str, dict[int, str]] = {}
        if self.recorder is None:
            return out
        for name, rec in list(self.recorder.records.items()):
            texts = {g.number: g.text for g in rec.generations if g.text is not None}
            if texts and _reloaded(rec):
                out[name] = texts
        return out


def _add_timeline(module: dict, timeline: dict[tuple[str, int | None], dict[str, Any]]) -> None:
    """Each generation's figures on its entry (zero when it has nothing alive); those of
    objects whose generation is unknown (made before recording) on the module."""
    name = module["name"]
    for g in module["generations"]:
        fig = timeline.get((name, g["number"]))
        if fig is None:
            fig = {"stale": 0, "stale_bytes": 0, "retained_bytes": 0, "retained_objects": 0}
        g.update(fig)
    unknown = timeline.get((name, None))
    if unknown is not None:
        module["unknown_generation"] = unknown


def _subclasses(root: type) -> list[type]:
    """``root`` and every live subclass of it (through ``type.__subclasses__``, never a
    metaclass's own method)."""
    out: list[type] = []
    seen: set[int] = set()
    stack = [root]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        out.append(t)
        stack.extend(type.__subclasses__(t))
    return out


def _hashes_by_identity(metas: list[type]) -> bool:
    """True when no metaclass defines ``__eq__`` or ``__hash__``: then a set of classes can be
    searched without running any user code."""
    for meta in metas:
        d = safe.class_dict(meta)
        if meta is not type and ("__eq__" in d or "__hash__" in d):
            return False
    return True


def _of_types(objs: list[object], types: list[type], metas: list[type]) -> list[object]:
    """The objects whose exact type is one of ``types``, in slices that run in C: between
    slices the interpreter may switch threads, so the process's other threads never wait for
    a whole pass (see ``graph.SLICE``)."""
    if _hashes_by_identity(metas):
        wanted = set(types).__contains__
        return _select(objs, lambda part: map(wanted, map(type, part)))
    wanted_ids = {id(t) for t in types}.__contains__
    return _select(objs, lambda part: map(wanted_ids, map(id, map(type, part))))


def _select(
    objs: list[object], selectors: Callable[[Iterator[object]], Iterator[bool]]
) -> list[object]:
    out: list[object] = []
    items, probe = iter(objs), iter(objs)
    for _ in range(0, len(objs), graph.SLICE):
        out.extend(compress(islice(items, graph.SLICE), selectors(islice(probe, graph.SLICE))))
    return out


def _own_ids(
    entries: dict[tuple, _Entry], targets: dict[int, object], samples: dict[int, object]
) -> set[int]:
    """Ids of the scan's containers that hold stale objects (not holders to report)."""
    ours = {id(targets), id(samples), id(entries)}
    ours.update(id(e.objs) for e in entries.values())
    return ours


def _own_containers(
    cls: Classifier,
    entries: dict[tuple, _Entry],
    targets: dict[int, object],
    samples: dict[int, object],
) -> list[object]:
    """The scan's containers that hold stale objects, so that their references are not taken
    for holders (``graph.outside_counts``)."""
    out: list[object] = [targets, samples]
    out.extend(e.objs for e in entries.values())
    out.extend(f for i, f in cls.found.items() if i in targets)
    return out


def _drop_own(ours: set[int]) -> Callable[[object], bool]:
    """A test for the scan's own objects among the referrers of a stale object."""

    def drop(r: object) -> bool:
        t = type(r)
        if id(r) in ours or t is Found or t is _Entry:
            return True
        return t is FrameType and _ours(r.f_code.co_filename)  # type: ignore[attr-defined]

    return drop


def _reloaded(rec: ModuleRecord) -> bool:
    return any(g.kind in ("reload", "reimport") for g in rec.generations)


def _leftovers(cls: Classifier, rec: ModuleRecord) -> list[str]:
    cur = rec.current
    ns = cls.namespace(rec.name)
    if ns is None or cur.stored is None or cur.kind not in ("reload",):
        return []
    out = []
    for k, v in dict.items(ns):
        if type(k) is not str or k not in cur.carried or k in cur.stored:
            continue
        if k.startswith("__") and k.endswith("__"):
            continue
        if issubclass(type(v), ModuleType) and safe.module_name(v) == f"{rec.name}.{k}":
            continue  # a submodule the import system set on its package
        out.append(k)
    return sorted(out)


def _dedupe(paths: list[dict]) -> list[dict]:
    seen: set[str] = set()
    out = []
    for p in paths:
        if p["text"] not in seen:
            seen.add(p["text"])
            out.append(p)
    return out


def _holder_type(chain: list[object]) -> str | None:
    if len(chain) < 2:
        return None
    return safe.type_name(type(chain[-2]))


def _thread_names() -> dict[int, str]:
    names: dict[int, str] = {}
    threading = sys.modules.get("threading")
    active = getattr(threading, "_active", None) if threading is not None else None
    if type(active) is not dict:
        return names
    for tid, thread in list(dict.items(active)):
        d = safe.instance_dict(thread)
        name = dict.get(d, "_name") if d is not None else None
        if type(name) is str:
            names[tid] = name
    return names


def _probes() -> list[tuple[str, object]]:
    """(expression, object) for holders outside the gc graph that can be asked about."""
    out: list[tuple[str, object]] = []
    signal = sys.modules.get("signal")
    if signal is not None:
        for sig in signal.valid_signals():
            try:
                handler = signal.getsignal(sig)
                name = signal.Signals(sig).name
            except (ValueError, OSError):
                continue
            if handler is None or type(handler) is int or isinstance(handler, signal.Handlers):
                continue
            if handler is signal.default_int_handler:
                continue
            out.append((f"signal.getsignal(signal.{name})", handler))
    for expr, getter in (("sys.gettrace()", sys.gettrace), ("sys.getprofile()", sys.getprofile)):
        hook = getter()
        if hook is not None:
            out.append((expr, hook))
    return out


def _frames(frame: FrameType | None) -> Iterator[FrameType]:
    while frame is not None:
        if not _ours(frame.f_code.co_filename):
            yield frame
        frame = frame.f_back


def _locals(frame: FrameType) -> list[tuple[str, object]]:
    # Reading f_locals on 3.11/3.12 leaves a snapshot dict on the frame; we only get here when
    # some stale object is not reachable from any module, and only read frames outside the agent.
    try:
        return [(k, v) for k, v in frame.f_locals.items() if type(k) is str]
    except Exception:
        return []


def scan(
    recorder: Recorder | None,
    *,
    collect: bool = True,
    max_depth: int = MAX_DEPTH,
    time_budget: float = TIME_BUDGET_S,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, Any], dict[str, dict[int, str]]]:
    """The report document and the recorded source texts of reloaded modules; ``progress``
    hears the number of objects scanned, once, as soon as it is known."""
    return Scan(
        recorder,
        collect=collect,
        max_depth=max_depth,
        time_budget=time_budget,
        progress=progress,
    ).run()
