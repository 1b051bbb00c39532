"""One scan: find the stale objects, walk the heap once for their paths, build the document."""

from __future__ import annotations

import gc
import os
import sys
import time
from itertools import compress, islice, repeat
from operator import is_, not_
from types import FrameType, FunctionType, ModuleType

from . import blindspots, exact, forksafe, frozen, graph, native, paths, retained, safe
from . import evidence as ev
from .hints import hint
from .paths import module_root_step, render
from .recorder import ModuleRecord, Recorder
from .stale import (
    CODE_TYPES,
    OLD_GENERATION,
    Classifier,
    Found,
    instance_evidence,
    instance_finding,
)

TYPE_CHECKING = False  # typing is not imported at run time: loading must stay cheap
if TYPE_CHECKING:
    from collections.abc import Callable, Container, Iterator
    from typing import Any

FORMAT = "reloadscope-report"
VERSION = 1
PATHS_PER_ENTRY = 3
MAX_DEPTH = 100
TIME_BUDGET_S = 120.0
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_KIND_ORDER = {"module": 0, "class": 1, "function": 2, "instance": 3, "code": 4, "other": 5}
# Instances of a stale class are listed one by one (a record each, searched by id) only while
# they are few: up to this many per class, and this many for all classes together.  Beyond
# that a class's instances are counted and sized in bulk, and the walk looks for the few it
# shows by their class (``graph.Kinds``): a scan's memory then grows with what it shows, not
# with how many instances there are.
LISTED_PER_CLASS = 1024
LISTED_TOTAL = 4096
_object_sizeof = object.__sizeof__
_type_flags = type.__dict__["__flags__"].__get__
_TYPE_SUBCLASS = 1 << 31


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))


def _ours(filename: object) -> bool:
    return type(filename) is str and filename.startswith(_PACKAGE_DIR)


class _Entry:
    __slots__ = ("count", "counts", "found", "group", "kinds", "listed", "objs", "other", "size")

    def __init__(self, found: Found) -> None:
        self.found = found
        self.objs: list[object] = []
        self.count = 0
        self.size = 0
        # Classes whose instances this entry counts without listing them (``_Tally``): the
        # walk finds its samples among those by class and appends them to ``objs`` after
        # the ``listed`` objects the scan found itself.
        self.kinds: list[type] = []
        self.counts: list[int] = []  # how many instances of each of ``kinds``
        self.listed = 0
        self.group = -1  # its group in the walk's ``graph.Kinds``
        self.other: dict | None = None  # the path of instances no walk found, if any

    def unlisted(self) -> int:
        """Instances counted here that are not in ``objs``."""
        return self.count - len(self.objs)

    def unlisted_by_class(self) -> dict[int, int]:
        """id(class) -> how many of its instances counted here are not in ``objs``."""
        out = {id(c): n for c, n in zip(self.kinds, self.counts)}
        for o in self.objs[self.listed :]:
            out[id(type(o))] -= 1
        return out


class _Tally:
    """The instances of one stale class: how many, their summed size, and the instances
    themselves while they are few (None once the class is counted in bulk)."""

    __slots__ = ("cls", "count", "objs", "size")

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.count = 0
        self.size = 0
        self.objs: list[object] | None = []


class Scan:
    def __init__(
        self,
        recorder: Recorder | None,
        *,
        collect: bool = True,
        max_depth: int = MAX_DEPTH,
        time_budget: float = TIME_BUDGET_S,
        full_walk: bool = False,
        judge_all: bool = False,
        progress: Callable[[int], None] | None = None,
        keep_findings: bool = False,
    ) -> None:
        self.recorder = recorder
        # The classifier, kept after the run for repair.py (it holds the stale objects: one
        # request only); None unless asked for.
        self.keep_findings = keep_findings
        self.findings: Classifier | None = None
        self.full_walk = full_walk  # always walk everything (the reference the tests compare with)
        # Judge every function one by one, none passed over in bulk (the same reference).
        self.judge_all = judge_all
        self.collect = collect
        self.max_depth = max_depth
        self.deadline = 0.0
        self.time_budget = time_budget
        self.incomplete: list[str] = []
        # What the classification did (the tests check that the cheap paths were taken): the
        # functions it saw and those it judged one by one, the code objects whose place the
        # index looked at, whether the index was made from scratch (1) or from the one kept
        # since the last scan (0).
        self.functions_seen = 0
        self.functions_judged = 0
        self.codes_indexed = 0
        self.index_rebuilt = 0
        self.classes_seen = 0  # and the classes it saw, and those it judged one by one
        self.classes_judged = 0
        self.walks = 0  # module-graph walks the last run needed (1, or 2 when the first was cut)
        self.engine = "python"  # or "native": which code ran the hot loops of the last run
        self.doubt: str | None = None  # why the first walk's paths were not taken as shortest
        # Levels of the first walk the second took over instead of building them again.
        self.levels_reused = 0
        self.n_objects = 0
        self.retained_s = 0.0  # how long the timeline's retained figures took
        self.frozen_total = 0  # objects gc.freeze() froze, and how many of them the scan saw
        self.frozen_found = 0
        # Instances of stale classes the scan listed one by one, and those counted in bulk
        # (of which only the samples the walks found were ever held).
        self.instances_listed = 0
        self.instances_counted = 0
        self.instances_sampled = 0
        self._tallies: dict[int, _Tally] = {}
        self._listed_budget = LISTED_TOTAL
        self.degraded: list[str] = []  # what a lack of memory cost this scan (blind spots)
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
        except MemoryError:
            pass  # raised again below, once this frame no longer holds what the scan made
        finally:
            if automatic:
                if not gc.isenabled():
                    gc.enable()
                forksafe.gc_paused = False
        raise OutOfMemory(self.n_objects)

    def _run(self) -> tuple[dict[str, Any], dict[str, dict[int, str]]]:
        # Which code ran the scan's hot loops (native.py); results are the same either way.
        self.engine = "native" if native.get() is not None else "python"
        started = time.time()
        t0 = time.perf_counter()
        self.deadline = time.monotonic() + self.time_budget
        if self.collect:
            gc.collect()
        objs = gc.get_objects()
        # gc.freeze() hides objects from that list: reach them (frozen.py).
        more, self.frozen_total, self.frozen_found = frozen.unlisted(
            objs, deadline=lambda: time.monotonic() > self.deadline
        )
        objs.extend(more)
        del more
        n_objects = self.n_objects = len(objs)
        if self.progress is not None:
            try:
                self.progress(n_objects)
            except Exception:
                pass  # a progress line is never worth a scan
        cls = Classifier(self.recorder)
        self._classify(cls, objs)
        if self.keep_findings:
            self.findings = cls
        graph.release([objs])  # emptied in slices: freeing it at once holds the GIL
        del objs
        running = self._running_frames(cls)
        entries = self._entries(cls)
        paths: dict[int, list[dict]] | None
        try:
            paths = self._paths(cls, entries)
        except MemoryError:
            paths = None  # out of the except block first: its traceback holds the walk
        if paths is None:
            paths = {}
            for e in entries.values():
                e.other = None
            self.incomplete.append("module graph not searched: out of memory")
            self.degraded.append(
                "the process ran out of memory while the scan searched for paths: the stale "
                "objects are counted and listed, without the paths that hold them"
            )
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
        for said in (
            blindspots.frozen(self.frozen_total, self.frozen_found),
            blindspots.subinterpreters(),
        ):
            if said is not None:
                out.append(said)
        out.extend(self.degraded)
        return out

    def _classify(self, cls: Classifier, objs: list[object]) -> None:
        modules = _subclasses(ModuleType)
        metas = _subclasses(type)
        # Classes recording saw an earlier generation make: their instances are counted in
        # the same pass (not kept: there may be millions), so a second pass is needed only
        # for classes found stale otherwise.  (Not metaclasses: their instances are classes,
        # which this pass picks as such.)
        early = [c for c in cls.recorded_old_classes() if not _type_flags(c) & _TYPE_SUBCLASS]
        early_tallies = {id(c): _Tally(c) for c in early}
        wanted = modules + metas + [FunctionType, *CODE_TYPES] + early
        helper = native.get()
        functions: list[object]
        fields: bytearray | None
        wrappers: list[object] | None
        if helper is not None:
            found_classes, found_modules, codes, fields, wrappers = self._pick_native(
                helper, objs, modules, metas, early_tallies
            )
            functions = objs  # (where the positions in ``fields`` point)
            n_functions = native.count(fields)
        else:
            fields = None
            wrappers = None
            picked = self._pick(objs, wanted, metas, early_tallies)
            # Split by exact type, in C: a process holds tens of thousands of functions.
            kinds = list(map(type, picked))
            functions = list(compress(picked, map(is_, kinds, repeat(FunctionType))))
            meta_ids = {id(t) for t in metas}.__contains__
            found_classes = list(compress(picked, map(meta_ids, map(id, kinds))))
            module_ids = {id(t) for t in modules}.__contains__
            found_modules = list(compress(picked, map(module_ids, map(id, kinds))))
            code_ids = {id(t) for t in CODE_TYPES}.__contains__
            codes = list(compress(picked, map(code_ids, map(id, kinds))))
            del picked, kinds
            n_functions = len(functions)
        del early
        # Old module objects first: their dicts tell the functions they made.
        cls.modules(found_modules)
        # Only the functions that can be stale are judged one by one (``Sources.index``, then
        # ``functions_worth_judging``), unless every one is (the tests' reference).
        judged: list[FunctionType]
        if self.judge_all:
            judged = functions if fields is None else native.functions(objs, fields)  # type: ignore[assignment]
        else:
            key = _index_key(self.recorder, cls.sources)
            judged = cls.functions_worth_judging(cls.sources.index(functions, key, fields))  # type: ignore[arg-type]
        self.functions_seen = n_functions
        self.functions_judged = len(judged)
        self.codes_indexed = cls.sources.stats["codes"]
        self.index_rebuilt = cls.sources.stats["rebuilt"]
        del functions
        for fn in judged:
            cls.function(fn)
        del judged
        for o in codes:
            cls.code_object(o)
        cls.leftovers()
        del codes
        cls.classes(found_classes, wrappers)  # type: ignore[arg-type]
        del wrappers
        self.classes_seen = len(found_classes)
        self.classes_judged = cls.classes_judged
        stale = {id(f.obj): f.obj for f in cls.found.values() if f.kind == "class"}
        tallies: dict[int, _Tally] = {}
        for i, early_tally in early_tallies.items():
            if i in stale:
                tallies[i] = early_tally
            elif early_tally.objs:
                # Not stale after all (kept on purpose): what it listed is free again.
                self._listed_budget += len(early_tally.objs)
        del early_tallies
        # The instances of the others: counted and sized in one more pass.
        later = {i: _Tally(c) for i, c in stale.items() if i not in tallies}  # type: ignore[arg-type]
        if later:
            self._count_instances(objs, later, metas, stale)
            tallies.update(later)
        del later
        self._tallies = tallies
        listed: list[object] = []
        for tally in tallies.values():
            if tally.objs is not None:
                listed.extend(tally.objs)
                tally.objs = []  # now held by their findings
            else:
                self.instances_counted += tally.count
        self.instances_listed = len(listed)
        cls.instances(listed)

    def _pick(
        self,
        objs: list[object],
        types: list[type],
        metas: list[type],
        tallies: dict[int, _Tally],
    ) -> list[object]:
        """The objects whose exact type is one of ``types``, except the instances of the
        classes of ``tallies``, which are counted there instead; in slices that run in C,
        with the process's other threads let in between (they never wait for a whole pass,
        see ``graph.SLICE``)."""
        if _hashes_by_identity(metas):
            wanted = set(types).__contains__
            select = lambda part: map(wanted, map(type, part))  # noqa: E731
            is_counted = {t.cls for t in tallies.values()}.__contains__
            counted = lambda part: map(is_counted, map(type, part))  # noqa: E731
        else:
            wanted_ids = {id(t) for t in types}.__contains__
            select = lambda part: map(wanted_ids, map(id, map(type, part)))  # noqa: E731
            counted_ids = tallies.keys().__contains__
            counted = lambda part: map(counted_ids, map(id, map(type, part)))  # noqa: E731
        out: list[object] = []
        items, probe = iter(objs), iter(objs)
        for _ in range(0, len(objs), graph.SLICE):
            chosen = list(compress(islice(items, graph.SLICE), select(islice(probe, graph.SLICE))))
            if tallies and chosen:
                mask = list(counted(chosen))
                if True in mask:
                    self._tally(list(compress(chosen, mask)), tallies, tallies)
                    chosen = list(compress(chosen, map(not_, mask)))
                del mask
            out.extend(chosen)
            del chosen
            graph.pause()
        return out

    def _pick_native(
        self,
        helper: Any,
        objs: list[object],
        modules: list[type],
        metas: list[type],
        tallies: dict[int, _Tally],
    ) -> tuple[list[object], list[object], list[object], bytearray, list[object]]:
        """``_pick`` and the split by kind that follows it, by the native helper: the same
        lists (each in the order of ``objs``), the same tallies; but for the functions, the
        addresses of the ``__code__`` and ``__globals__`` of each and its position in
        ``objs``, read while the pass has it at hand (for the index: ``Sources.index``; a
        process holds tens of thousands of functions, which are not listed); and every static
        and class method and property (``Classifier.classes``)."""
        wrappers: list[object] = []
        classes: list[object] = []
        found_modules: list[object] = []
        codes: list[object] = []
        counted: list[object] = []
        # A class counted in ``tallies`` is first: its instances are counted, whatever else
        # its type is (a stale subclass of ModuleType).
        pairs: list[tuple[type, list[object] | None]] = [(t.cls, counted) for t in tallies.values()]
        pairs += [(t, found_modules) for t in modules]
        pairs += [(t, classes) for t in metas]
        pairs += [(FunctionType, None)] + [(t, codes) for t in CODE_TYPES]  # (fields: not listed)
        pairs += [(t, wrappers) for t in (staticmethod, classmethod, property)]
        types = tuple(t for t, _ in pairs)
        outs = tuple(out for _, out in pairs)
        del pairs
        fields = bytearray()
        for start in range(0, len(objs), graph.SLICE):
            helper.pick(objs, start, start + graph.SLICE, types, outs, FunctionType, fields)
            if counted:
                self._tally(counted, tallies, tallies)
                counted.clear()
            graph.pause()
        return classes, found_modules, codes, fields, wrappers

    def _count_instances(
        self,
        objs: list[object],
        tallies: dict[int, _Tally],
        metas: list[type],
        stale: dict[int, object],
    ) -> None:
        """Count and size the instances of the classes of ``tallies`` among ``objs``, in
        slices (see ``_pick``), keeping the instances only while they are few (none that
        is a stale class itself: ``stale``)."""
        classes = [t.cls for t in tallies.values()]
        if _hashes_by_identity(metas):
            wanted = set(classes).__contains__
            select = lambda part: map(wanted, map(type, part))  # noqa: E731
        else:
            wanted_ids = set(tallies).__contains__
            select = lambda part: map(wanted_ids, map(id, map(type, part)))  # noqa: E731
        items, probe = iter(objs), iter(objs)
        for _ in range(0, len(objs), graph.SLICE):
            hits = list(compress(islice(items, graph.SLICE), select(islice(probe, graph.SLICE))))
            if hits:
                self._tally(hits, tallies, stale)
            del hits
            graph.pause()

    def _tally(self, hits: list[object], tallies: dict[int, _Tally], stale: Container[int]) -> None:
        types = list(map(type, hits))
        first = types[0]
        if all(map(is_, types, repeat(first))):
            groups: list[tuple[type, list[object]]] = [(first, hits)]
        else:
            distinct = {id(t): t for t in types}
            groups = [
                (t, list(compress(hits, map(is_, types, repeat(t))))) for t in distinct.values()
            ]
        del types
        for t, objs in groups:
            tally = tallies[id(t)]
            if _type_flags(t) & _TYPE_SUBCLASS:
                # Its instances are classes: a stale one among them stays a class; the rest
                # are few, and always listed (the walk looks for classes by id).
                objs = [o for o in objs if id(o) not in stale]
                tally.count += len(objs)
                tally.size += sum(map(safe.sizeof, objs))
                if tally.objs is not None:
                    tally.objs.extend(objs)
                continue
            tally.count += len(objs)
            try:
                tally.size += sum(map(_object_sizeof, objs))
            except Exception:
                tally.size += sum(map(safe.sizeof, objs))
            if tally.objs is None:
                continue
            fits = len(tally.objs) + len(objs) <= LISTED_PER_CLASS
            if fits and len(objs) <= self._listed_budget:
                tally.objs.extend(objs)
                self._listed_budget -= len(objs)
            else:
                # Too many to list: counted in bulk from now on.
                self._listed_budget += len(tally.objs)
                tally.objs = None

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

    def _entries(self, cls: Classifier) -> dict[tuple, _Entry]:
        entries: dict[tuple, _Entry] = {}
        found = cls.found
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
        # The instances counted in bulk: the entry their findings would have made.
        for t in self._tallies.values():
            c = found.get(id(t.cls))
            if t.objs is not None or not t.count or c is None:
                continue
            bulk_key: tuple = (c.owner, "instance", c.qualname, c.qualname, c.generation)
            bulk_key += (OLD_GENERATION, id(None), ev.MADE_BY_STALE)
            e = entries.get(bulk_key)
            if e is None:
                e = entries[bulk_key] = _Entry(instance_finding(None, c, instance_evidence(c)))
            e.count += t.count
            e.size += t.size
            e.kinds.append(t.cls)
            e.counts.append(t.count)
        self._tallies = {}  # their classes must have no holder the scan does not account for
        for e in entries.values():
            e.listed = len(e.objs)
        return entries

    # -- instances counted in bulk -------------------------------------------------------------
    def _kinds(
        self,
        entries: dict[tuple, _Entry],
        want: dict[int, int] | None = None,
        quota: dict[int, int] | None = None,
    ) -> graph.Kinds:
        """What a walk looks for by class: for each entry with instances counted in bulk,
        as many as it shows (``want``: id(entry) -> how many, for a walk that looks for the
        rest of what earlier walks did not find; ``quota``: id(entry) -> how many of its
        instances the walk should reach, to tell whether some are held nowhere it looks)."""
        kinds = graph.Kinds()
        for e in entries.values():
            if e.kinds:
                n = PATHS_PER_ENTRY if want is None else want.get(id(e), 0)
                e.group = kinds.add(e.kinds, n, (quota or {}).get(id(e), 0))
        return kinds

    def _adopt(
        self,
        kinds: graph.Kinds,
        entries: dict[tuple, _Entry],
        cls: Classifier,
        targets: dict[int, object],
    ) -> dict[int, object]:
        """Make the samples a walk found by class stale objects of the scan like the listed
        ones: a finding each, in their entry and in ``targets``.  Returns them."""
        new: dict[int, object] = {}
        for e in entries.values():
            if not e.kinds or e.group < 0:
                continue
            for o in kinds.found[e.group]:
                if id(o) in targets:
                    continue
                c = cls.found.get(id(type(o)))
                if c is None:
                    continue
                cls.found[id(o)] = instance_finding(o, c, e.found.evidence)
                e.objs.append(o)
                targets[id(o)] = new[id(o)] = o
                self.instances_sampled += 1
            kinds.found[e.group] = []
        return new

    def _forget_samples(
        self, entries: dict[tuple, _Entry], cls: Classifier, targets: dict[int, object]
    ) -> None:
        """Undo ``_adopt``: a later walk looks for the samples again."""
        for e in entries.values():
            for o in e.objs[e.listed :]:
                cls.found.pop(id(o), None)
                targets.pop(id(o), None)
                self.instances_sampled -= 1
            del e.objs[e.listed :]

    def _missing_samples(self, entries: dict[tuple, _Entry]) -> dict[int, int]:
        """id(entry) -> how many more samples an entry counted in bulk could show."""
        out = {}
        for e in entries.values():
            if e.kinds:
                more = min(PATHS_PER_ENTRY, e.count) - len(e.objs)
                if more > 0 and e.unlisted() > 0:
                    out[id(e)] = min(more, e.unlisted())
        return out

    # -- paths ---------------------------------------------------------------------------------
    def _paths(self, cls: Classifier, entries: dict[tuple, _Entry]) -> dict[int, list[dict]]:
        """id(object) -> its paths, for a few sample objects of each entry."""
        targets = {id(o): o for e in entries.values() for o in e.objs}
        out: dict[int, list[dict]] = {}
        kinds = self._kinds(entries)
        if not targets and not kinds.wanted():
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
            kinds=kinds,
        )
        self._adopt(kinds, entries, cls, targets)
        self.walks = 1
        samples: dict[int, object] = {}
        found_chains: dict[int, list[list[object]]] = {}
        filtered = False  # the objects the walk did not reach are not missing
        if w.gave_up:
            self.doubt = "the first walk saw most of the heap"
        else:
            samples = self._samples(entries, w.found)
            # Methods held only through their stale class are settled by the proof below
            # (with one holder search for all), or send the scan to the full walk.
            found_chains = self._chains(w, cls, entries, targets, samples, around=not w.deferred)
            if w.deferred and w.complete:
                if self._missing_samples(entries):
                    # Fewer samples than an entry shows, and it has more instances: those may
                    # be in the deferred containers (listed ones would be samples not found).
                    self.doubt = "a sample without a module path may be inside a deferred container"
                else:
                    self.doubt = self._doubt(
                        w, seen, cls, entries, targets, samples, found_chains, roots
                    )
                if self.doubt is None:
                    # What this walk did not reach may sit in a deferred container: it is not
                    # "missing" (held outside the module graph).
                    targets = {i: o for i, o in targets.items() if i in w.found}
                    filtered = True
        if self.doubt is not None:
            # Some path may run through a big container: walk everything.
            self.walks = 2
            # The first walk's levels above the first it built otherwise (a big container
            # deferred) are the full walk's own: it goes on from there (``graph.walk``).
            keep = len(w.levels) if w.diverged is None else w.diverged
            graph.release(w.levels[keep:])
            w.deferred_objs.clear()
            self._forget_samples(entries, cls, targets)
            samples = {}  # nothing of the first walk may hold the samples it found
            found_chains = {}
            first_seen, seen = seen, set()
            roots, root_key = self._module_roots(seen)
            kinds = self._kinds(entries)
            w = graph.walk(
                roots,
                seen,
                set(targets),
                max_depth=self.max_depth,
                deadline=self.deadline,
                kinds=kinds,
                resume=(w, keep, first_seen),
            )
            del first_seen
            self.levels_reused = w.reused
            self._adopt(kinds, entries, cls, targets)
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
        # Entries counted in bulk whose samples the module walk did not all find (it looked
        # everywhere it could: the others are held elsewhere).
        want = {} if filtered else self._missing_samples(entries)
        # id(entry) -> its instances not reached yet: the walks below count them, so that
        # the entry says when some are held where no walk looks (as a listed one would).
        left = {id(e): e.unlisted() for e in entries.values() if id(e) in want}
        bulk = _Bulk(entries, targets)
        if missing or left:
            reached = self._thread_paths(cls, missing, seen, out, bulk, want, left)
            missing = {i: o for i, o in missing.items() if i not in out}
            left = {k: n - reached.get(k, 0) for k, n in left.items()}
            left = {k: n for k, n in left.items() if n > 0}
            want = self._missing_samples(entries)
        if missing or left:
            reached = self._probed_paths(cls, missing, seen, out, bulk, want, left)
            left = {k: n - reached.get(k, 0) for k, n in left.items()}
            left = {k: n for k, n in left.items() if n > 0}
        for i in missing:
            if i not in out and i in cls.found:
                out[i] = [self._other_path(cls.found[i], cut_short=not w.complete)]
        for e in entries.values():
            if id(e) in left:
                # Instances no walk reached; they are not listed, so none is named.
                e.other = self._other_path(e.found, cut_short=not w.complete)
                e.other["object_id"] = None
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
        groups = [(e.objs, e.found.carrier, e.unlisted_by_class()) for e in entries.values()]
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
        bulk: _Bulk,
        want: dict[int, int],
        quota: dict[int, int],
    ) -> dict[int, int]:
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
        named = (roots, prefix)
        return self._extra_paths(cls, missing, seen, out, named, "thread", bulk, want, quota)

    def _probed_paths(
        self,
        cls: Classifier,
        missing: dict[int, object],
        seen: set[int],
        out: dict,
        bulk: _Bulk,
        want: dict[int, int],
        quota: dict[int, int],
    ) -> dict[int, int]:
        """Holders gc cannot see but Python can ask about: signal handlers, trace hooks."""
        roots: list[object] = []
        prefix: dict[int, str] = {}
        for expr, obj in _probes():
            if id(obj) not in prefix:
                prefix[id(obj)] = expr
                roots.append(obj)
        named = (roots, prefix)
        return self._extra_paths(cls, missing, seen, out, named, "probe", bulk, want, quota)

    def _extra_paths(
        self,
        cls: Classifier,
        missing: dict[int, object],
        seen: set[int],
        out: dict[int, list[dict]],
        where: tuple[list[object], dict[int, str]],
        hint_root: str,
        bulk: _Bulk,
        want: dict[int, int],
        quota: dict[int, int],
    ) -> dict[int, int]:
        """Paths from roots outside the module namespaces (``where``: the roots, and the
        name of each root by its id), for the ``missing`` objects and ``want`` more samples
        of entries counted in bulk (``_kinds``).  Returns id(entry) -> how many of its
        instances this walk reached."""
        roots, prefix = where
        root = "thread" if hint_root == "thread" else "other"
        by_class = self._kinds(bulk.entries, want, quota)
        w = graph.walk(
            roots,
            seen,
            set(missing),
            max_depth=self.max_depth,
            deadline=self.deadline,
            kinds=by_class,
        )
        if not w.complete:
            self.incomplete.append(f"{hint_root} graph {w.reason}")
        samples = {i: o for i, o in missing.items() if i in w.found}
        samples.update(self._adopt(by_class, bulk.entries, cls, bulk.targets))
        reached = {id(e): by_class.reached[e.group] for e in bulk.entries.values() if e.kinds}
        del by_class
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
        return reached

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
        partial: set[tuple[str, int | None]] = set()
        counted: list[int] = []  # ids of the classes whose instances were counted in bulk
        for e in entries.values():
            f = e.found
            ps = [p for o in e.objs for p in paths.get(id(o), [])]
            if e.other is not None:
                ps.append(e.other)
            if f.carrier is not None:
                # A method of a stale class is reported with its class unless something else
                # holds it directly.
                ps = [p for p in ps if id(f.carrier) not in p.get("_ids", (id(f.carrier),))]
                if not ps:
                    continue
            ps = [{k: v for k, v in p.items() if k != "_ids"} for p in ps]
            objs, size = groups.setdefault((f.owner, f.generation), ([], [0, 0]))
            objs.extend(e.objs)
            if e.unlisted() > 0:
                # Only its samples are at hand: what the others retain is not counted.
                partial.add((f.owner, f.generation))
                counted.extend(map(id, e.kinds))
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
        timeline = self._timeline(groups, partial, set(counted))
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
        self,
        groups: dict[tuple[str, int | None], tuple[list[object], list[int]]],
        partial: set[tuple[str, int | None]] = frozenset(),  # type: ignore[assignment]
        counted: set[int] = frozenset(),  # type: ignore[assignment]
    ) -> dict[tuple[str, int | None], dict[str, Any]]:
        """(module, generation) -> its stale count, their bytes and what they retain.
        ``partial``: groups of which only some instances are at hand (a lower bound, capped);
        ``counted``: ids of the classes whose instances are stale objects not listed."""
        keys = list(groups)
        stale_ids = {id(o) for objs, _ in groups.values() for o in objs}
        t0 = time.perf_counter()
        kept: list[retained.Retained | None] | None
        try:
            kept = retained.retained(
                ((groups[k][0], groups[k][1][1]) for k in keys),
                stale_ids,
                deadline=self.deadline,
                stale_classes=counted,
            )
        except MemoryError:
            kept = None  # out of the except block first (see _run)
        if kept is None:
            kept = [None] * len(keys)
            self.degraded.append(
                "the process ran out of memory while the scan measured what the stale objects "
                "retain: those figures are missing"
            )
        self.retained_s = time.perf_counter() - t0
        out: dict[tuple[str, int | None], dict[str, Any]] = {}
        for k, r in zip(keys, kept):
            n, nbytes = groups[k][1]
            fig: dict[str, Any] = {"stale": n, "stale_bytes": nbytes, "retained_bytes": None}
            if r is not None:
                fig["retained_bytes"] = r.bytes
                fig["retained_objects"] = r.objects
                if r.capped or k in partial:
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
                "leftover_names": sorted(cls.leftover_names.get(name, ())),
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
            "leftover_names": sorted(
                set(_leftovers(cls, rec)) | cls.leftover_names.get(rec.name, set())
            ),
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


class OutOfMemory(MemoryError):
    """The scan ran out of memory in the process it scans: it gave up, and left everything
    as it was (what it allocated is freed)."""

    def __init__(self, objects: int) -> None:
        heap = f" of {objects:,} objects" if objects else ""
        super().__init__(
            f"the process ran out of memory during the scan of its heap{heap}: the scan gave "
            "up and changed nothing; free memory in it or raise its memory limit, then try again"
        )


class _Bulk:
    """The entries and stale objects of one scan, for the walks that look for samples of
    instances counted in bulk."""

    __slots__ = ("entries", "targets")

    def __init__(self, entries: dict[tuple, _Entry], targets: dict[int, object]) -> None:
        self.entries = entries
        self.targets = targets


def _index_key(recorder: Recorder | None, sources: ev.Sources) -> object:
    """What the index kept between scans is valid for (None: keep nothing).  Recording must
    be on: it counts the modules of libraries loaded (each may compile code again at a place
    the index saw once), and it is that count, for this recorder and these library
    directories, that the kept index belongs to."""
    serial = getattr(recorder, "serial", None)  # None: no recorder, or an older agent's
    if serial is None:
        return None
    return (serial, recorder.library_loads, sources.library)  # type: ignore[union-attr]


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


def _own_ids(
    entries: dict[tuple, _Entry], targets: dict[int, object], samples: dict[int, object]
) -> set[int]:
    """Ids of the scan's containers that hold stale objects (not holders to report)."""
    ours = {id(targets), id(samples), id(entries)}
    ours.update(id(e.objs) for e in entries.values())
    ours.update(id(e.kinds) for e in entries.values())
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
    out.extend(e.kinds for e in entries.values() if e.kinds)
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
            # type(), not isinstance(): that would read a user object's __class__.
            if handler is None or type(handler) is int or type(handler) is signal.Handlers:
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
