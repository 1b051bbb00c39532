"""Breadth-first walks of the gc graph, batched so the per-object work runs in C.

``gc.get_referrers`` costs one heap pass per call, so walking backwards from each stale object
is hopeless on a large heap.  Instead one forward walk from the roots visits every reachable
object once, level by level, with ``gc.get_referents(*frontier)`` doing the per-object work in
C.  Only the levels are kept; the parents of the few objects we report are found afterwards by
searching the level above, again in batches.  A walk may also defer big containers (not expand
them): ``exact`` decides when its paths are still the shortest.  ``referrers`` and
``dominated`` serve that decision, for a handful of objects.
"""

from __future__ import annotations

import _thread
import gc
import sys
import time
from bisect import bisect_right
from itertools import compress, count, filterfalse, repeat
from operator import is_, ne, not_

from . import native, safe

TYPE_CHECKING = False  # typing is not imported at run time: loading must stay cheap
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from collections.abc import Set as AbstractSet
    from typing import Any

_is_tracked = gc.is_tracked
_get_referents = safe.referents  # gc.get_referents, never on 3.12's _asyncio
_refcount = sys.getrefcount
CHUNK = 1024
# Small levels (module namespaces and what they hold directly) are expanded in small chunks, so
# that finding a parent there later never rescans a big container's items many times over.
SMALL_CHUNK = 8
SUBCHUNK = 32
SMALL_LEVEL = 20_000
# The search for other holders in a level looks at this many references at most (a level
# holding the application's big containers is not searched twice).
SMALL_FANOUT = 200_000
# Whole-heap passes go in slices of this many objects (a few milliseconds each): a thread of
# the process waits for the GIL at most that long, not for a whole pass.
SLICE = 65536
# The first walk of a scan does not expand an object holding more references than this (see
# ``exact``).
DEFER_FANOUT = 10_000


def pause() -> None:
    """Let the process's other threads run now (between the slices of a whole-heap pass): the
    interpreter would otherwise hand over the GIL only after a switch interval's wait.  With
    no other thread started (a thread a C library attached waits that interval at most), no
    wait: each costs a system call and a GIL hand-over."""
    if _threads_started is not None and _threads_started() == 0:
        return
    time.sleep(0)


_threads_started = getattr(_thread, "_count", None)  # threads started, but the main one


class Kinds:
    """Objects a walk looks for by their class rather than by id: for each group (the classes
    of one report entry whose instances are counted but not listed), the first ``want``
    instances the walk reaches, which are the shallowest.  A group whose samples are all
    found stops being looked for, unless it was given a ``quota``: then the walk goes on
    until it has reached that many of its instances (``reached`` says how many it did).  The
    scan holds none of the other instances, so they stay as cheap to walk as any object
    with a single holder."""

    __slots__ = ("found", "group_of", "left", "members", "quota", "reached")

    def __init__(self) -> None:
        self.group_of: dict[int, int] = {}  # id(class) -> group, for groups still wanting
        self.members: list[list[int]] = []  # group -> ids of its classes
        self.left: list[int] = []  # group -> samples still wanted
        self.quota: list[int] = []  # group -> instances to reach (0: samples only)
        self.reached: list[int] = []  # group -> instances reached
        self.found: list[list[object]] = []  # group -> its samples, shallowest first

    def add(self, classes: Iterable[object], want: int, quota: int = 0) -> int:
        g = len(self.members)
        ids = [id(c) for c in classes]
        self.members.append(ids)
        self.left.append(want)
        self.quota.append(quota)
        self.reached.append(0)
        self.found.append([])
        if want > 0 or quota > 0:
            for i in ids:
                self.group_of[i] = g
        return g

    def wanted(self) -> bool:
        return bool(self.group_of)

    def _take(self, g: int, obj: object, where: tuple[int, int], found: dict) -> None:
        if id(obj) in found:
            return
        self.reached[g] += 1
        if self.left[g] > 0:
            self.found[g].append(obj)
            found[id(obj)] = where
            self.left[g] -= 1
        if self.left[g] <= 0 and self.reached[g] >= self.quota[g]:
            for i in self.members[g]:
                self.group_of.pop(i, None)

    def among(self, objs: list[object]) -> bool:
        """Whether ``objs`` holds a wanted instance (in C: most slices hold none)."""
        wanted = self.group_of
        return bool(wanted) and not wanted.keys().isdisjoint(map(id, map(type, objs)))

    def pick(self, objs: list[object], level: int, base: int, found: dict) -> None:
        """Take the wanted instances among ``objs``, which sit at ``base`` onwards in
        ``level``."""
        if not self.among(objs):
            return
        wanted = self.group_of
        hits = list(compress(count(), map(wanted.__contains__, map(id, map(type, objs)))))
        groups = set(wanted.values())
        if len(groups) == 1:
            g = groups.pop()
            if self.left[g] <= 0:
                # Only counting what it reaches (each instance is new in its level once).
                self.reached[g] += len(hits)
                if self.reached[g] >= self.quota[g]:
                    for i in self.members[g]:
                        wanted.pop(i, None)
                return
        for offset in hits:
            g_of = wanted.get(id(type(objs[offset])))
            if g_of is not None:
                self._take(g_of, objs[offset], (level, base + offset), found)
            if not wanted:
                return


def _probe_single_holder() -> int:
    """The reference count that ``Walk`` reads for an object with exactly one holder (0: the
    counts cannot tell, so every object takes the checked path).

    An object whose refcount shows one holder can be reached only through that holder, so it
    needs no visited-set check: most containers in a heap are like that, and skipping the hash
    table for them is what makes the walk cheap.  Counts read from C by ``map(getrefcount,
    ...)`` are exact on GIL builds (3.10-3.15 alike); free-threaded builds (biased and deferred
    counts) may read otherwise, so they never take it.  Otherwise the running interpreter is
    asked, not its version: fresh objects with one holder and with several must read as
    expected, through the very expressions the walk uses.
    """
    if safe.FREE_THREADED:
        # Decided by the build, never by sys._is_gil_enabled() (true on a free-threaded
        # build run with PYTHON_GIL=1, whose counts stay biased and deferred).
        return 0
    alone: list[object] = [0]
    shared: list[object] = [1]
    holder = [[alone], shared, shared]
    del alone
    refs = list(filter(_is_tracked, _get_referents(holder)))
    counts = dict(zip(map(id, refs), map(_refcount, refs)))
    nested = [r for r in refs if r is not shared]
    if len(refs) != 3 or len(nested) != 1:
        return 0
    single = counts[id(nested[0])]
    # ``shared``: two references from ``holder``, two from ``refs``, and the name.
    if counts[id(shared)] != single + 3:
        return 0
    inner = list(filter(_is_tracked, _get_referents(nested[0])))
    if len(inner) != 1 or list(map(_refcount, inner)) != [single]:
        return 0
    return single


_SINGLE_HOLDER = _probe_single_holder()


class Walk:
    """The levels of one breadth-first walk and where each target was first reached.

    ``ends[k]`` records, for each frontier chunk (of ``chunk[k]`` objects) expanded to build
    level ``k``, where its discoveries end in ``levels[k]``: the parent of ``levels[k][i]`` is
    in chunk ``bisect_right(ends[k], i)`` of level ``k - 1``.
    """

    def __init__(self) -> None:
        self.levels: list[list[object]] = []
        self.ends: list[list[int]] = [[]]
        self.chunk: list[int] = [CHUNK]
        self.found: dict[int, tuple[int, int]] = {}  # id(target) -> (level, position)
        self.deferred: dict[int, int] = {}  # id(object not expanded) -> its level
        self.deferred_objs: list[object] = []  # those objects (also in ``levels``)
        self.gave_up = False
        self.complete = True
        self.reason = ""
        # The depth of the first level a deferring walk built otherwise than a full walk
        # would (a big container deferred, or a chunk expanded in parts): the levels above
        # it are a full walk's (see ``resume``).  None: every level is.
        self.diverged: int | None = None
        self.reused = 0  # levels taken from an earlier walk (``resume``)


def walk(
    roots: Iterable[object],
    seen: set[int],
    targets: set[int],
    *,
    max_depth: int,
    deadline: float,
    defer_fanout: int | None = None,
    give_up_after: int | None = None,
    kinds: Kinds | None = None,
    resume: tuple[Walk, int, set[int]] | None = None,
) -> Walk:
    """Visit everything reachable from ``roots`` not in ``seen`` (updated in place).

    Stops early once every target is found.  Targets must be referenced by the caller too
    (so they never look single-held).  With ``defer_fanout``, an object below the roots that
    holds more references than that is not expanded: it is recorded in ``Walk.deferred``
    and what only it holds is not visited (see ``exact`` for when the result still holds).
    With ``give_up_after``, the walk stops (``gave_up``) once it has visited that many
    objects: a deferring walk that has seen most of the heap saves little over a full one.
    With ``kinds``, the first instances of some classes are found too (``Kinds``), and the
    walk goes on until they are.

    An object is in ``seen`` after the walk exactly when it was reached through the checked
    path (more than one holder) or is a root: one that is not had a single holder.

    ``resume`` = (an earlier walk from the same roots, a number of its first levels, its
    ``seen``): a full walk (no ``defer_fanout``, no ``kinds``) takes those levels as its own
    instead of building them again, when they are what it would build (``Walk.diverged``)
    and nothing else holds what lies below them (the caller released the earlier walk's
    deeper levels): the result is the full walk's, object for object.
    """
    result = Walk()
    level0 = []
    for r in roots:
        if id(r) not in seen:
            seen.add(id(r))
            level0.append(r)
    remaining = set(targets)
    if resume is not None and (defer_fanout is not None or (kinds is not None and kinds.wanted())):
        resume = None
    if resume is not None:
        old, keep, old_seen = resume
        first = old.levels[0] if old.levels else []
        if not (0 < keep <= len(old.levels) and len(first) == len(level0)) or not all(
            map(is_, first, level0)
        ):
            resume = None
    if resume is None:
        for pos, r in enumerate(level0):
            if id(r) in remaining:
                remaining.discard(id(r))
                result.found[id(r)] = (0, pos)
        if kinds is not None:
            kinds.pick(level0, 0, 0, result.found)
        result.levels.append(level0)
    else:
        _take_levels(result, old, keep, seen, old_seen, remaining)
    del level0, resume
    frontier = result.levels[-1]
    expander = _Expander(result, seen, remaining, defer_fanout, kinds)

    def wanted() -> bool:
        return bool(remaining) or (kinds is not None and kinds.wanted())

    depth = len(result.levels) - 1
    visited = sum(map(len, result.levels))
    while frontier and wanted():
        if depth >= max_depth:
            result.complete = False
            result.reason = f"stopped at depth {max_depth}"
            break
        if time.monotonic() > deadline:
            result.complete = False
            result.reason = f"time budget exhausted at depth {depth}"
            break
        depth += 1
        expander.depth = depth
        nxt: list[object] = []
        ends: list[int] = []
        size = CHUNK if len(frontier) > SMALL_LEVEL else SMALL_CHUNK
        for start in range(0, len(frontier), size):
            expander.expand_range(frontier, start, start + size, nxt)
            ends.append(len(nxt))
        if not nxt:
            break
        result.levels.append(nxt)
        result.ends.append(ends)
        result.chunk.append(size)
        frontier = nxt
        visited += len(nxt)
        if give_up_after is not None and visited > give_up_after and wanted():
            result.gave_up = True
            break
    return result


def _take_levels(
    w: Walk, old: Walk, keep: int, seen: set[int], old_seen: set[int], remaining: set[int]
) -> None:
    """Make ``old``'s first ``keep`` levels ``w``'s, as a full walk would have built them: the
    objects of those levels reached through the checked path are in ``old_seen`` (an object
    with a single holder appears once in a walk, so it is in no walk's ``seen``), and the
    targets among them were found where they stand (a target is always reached through the
    checked path: its caller holds it too)."""
    w.levels = old.levels[:keep]
    w.ends = old.ends[:keep]
    w.chunk = old.chunk[:keep]
    w.reused = keep
    for k, lvl in enumerate(w.levels):
        # The set methods look each id up in C (a level may be big: a first walk that gave up).
        if k:
            seen.update(old_seen.intersection(map(id, lvl)))
        hits = remaining.intersection(map(id, lvl)) if remaining else None
        if hits:
            for pos in compress(count(), map(hits.__contains__, map(id, lvl))):
                remaining.discard(id(lvl[pos]))
                w.found[id(lvl[pos])] = (k, pos)


class _Expander:
    """Expands one frontier chunk into the next level (a class rather than a closure: a
    recursive closure is a reference cycle, which would keep the walk's levels, and with them
    one extra reference to every object, alive until the next collection)."""

    __slots__ = (
        "defer_fanout",
        "deferred",
        "deferred_objs",
        "depth",
        "found",
        "kinds",
        "native",
        "native_single",
        "remaining",
        "seen",
        "walk",
    )

    def __init__(
        self,
        w: Walk,
        seen: set[int],
        remaining: set[int],
        defer_fanout: int | None,
        kinds: Kinds | None = None,
    ) -> None:
        self.kinds = kinds if kinds is not None and kinds.wanted() else None
        self.walk = w
        self.found = w.found
        self.deferred = w.deferred
        self.deferred_objs = w.deferred_objs
        self.seen = seen
        self.remaining = remaining
        self.defer_fanout = defer_fanout
        self.depth = 0
        # The native helper does ``_take``'s work for a chunk, in one call (native.py).
        self.native, self.native_single = _native_walker()

    def expand_range(self, level: list[object], start: int, stop: int, nxt: list[object]) -> None:
        """``expand(level[start:stop], nxt)``; the native helper reads the range in place."""
        helper = self.native
        if helper is not None:
            most = SLICE
            if self.defer_fanout is not None and self.depth > 1:
                most = min(most, self.defer_fanout)
            base = len(nxt)
            skip = _never_traversed()
            took = helper.expand(
                level,
                start,
                stop,
                self.seen,
                nxt,
                self.native_single,
                most,
                skip,
                self.remaining,
                self.found,
                self.depth,
            )
            if took >= 0:
                if self.kinds is not None and len(nxt) > base:
                    self.kinds.pick(nxt[base:], self.depth, base, self.found)
                return
            # More references than one call takes: the Python code decides.
        self.expand(level[start:stop], nxt)

    def expand(self, part: list[object], nxt: list[object]) -> None:
        helper = self.native
        raw = _get_referents(*part)
        limit = self.defer_fanout
        if limit is not None and self.depth > 1 and len(raw) > limit:
            del raw
            if self.walk.diverged is None:
                self.walk.diverged = self.depth
            if len(part) == 1:
                self._defer(part[0])
                return
            # Built-in containers tell their size: defer the big ones without asking again;
            # any other object holding that much is found by halving.
            big = {id(o): o for o in part if _fanout(o) > limit}
            for o in big.values():
                self._defer(o)
            rest = [o for o in part if id(o) not in big] if big else part
            if big:
                if rest:
                    self.expand(rest, nxt)
                return
            half = len(rest) // 2
            self.expand(rest[:half], nxt)
            self.expand(rest[half:], nxt)
            return
        if len(raw) <= SLICE:
            refs = list(filter(_is_tracked, raw))
            del raw
            self._take(refs, nxt, _SINGLE_HOLDER)
            return
        # A big container: what it holds goes in slices, so that the interpreter can switch
        # threads between them (no other thread waits for all of it).  ``raw`` stays alive
        # meanwhile: it holds each object once more.
        for start in range(0, len(raw), SLICE):
            if helper is not None:
                base = len(nxt)
                helper.take(
                    raw,
                    start,
                    start + SLICE,
                    self.seen,
                    nxt,
                    self.native_single,
                    self.remaining,
                    self.found,
                    self.depth,
                )
                if self.kinds is not None and len(nxt) > base:
                    self.kinds.pick(nxt[base:], self.depth, base, self.found)
            else:
                refs = list(filter(_is_tracked, raw[start : start + SLICE]))
                self._take(refs, nxt, _SINGLE_HOLDER + 1)
                del refs
            pause()

    def _take(self, refs: list[object], nxt: list[object], single: int) -> None:
        """Append the objects of ``refs`` not visited yet to ``nxt``; ``single`` is the
        reference count an object with one holder reads here."""
        # refs holds each object once more, and getrefcount's argument once more:
        # ``several[i]`` is true when refs[i] has more than one holder.
        several = list(map(ne, map(_refcount, refs), repeat(single)))
        singles = several.count(False)
        kinds = self.kinds
        if kinds is not None and kinds.among(refs):
            base = len(nxt)
            self._add(refs, several, singles, nxt)
            kinds.pick(nxt[base:], self.depth, base, self.found)
            return
        self._add(refs, several, singles, nxt)

    def _add(
        self, refs: list[object], several: list[bool], singles: int, nxt: list[object]
    ) -> None:
        if singles == len(several):
            nxt.extend(refs)
            return
        if singles:
            nxt.extend(compress(refs, map(not_, several)))
        shared = list(compress(refs, several))
        seen = self.seen
        if seen.issuperset(map(id, shared)):
            return  # all visited already (most often one class, held by each instance)
        by_id = dict(zip(map(id, shared), shared))
        # In the order first reached (as the native helper adds them).
        new = list(filterfalse(seen.__contains__, by_id))
        if new:
            seen.update(new)
            base = len(nxt)
            nxt.extend(map(by_id.__getitem__, new))
            remaining = self.remaining
            if remaining and not remaining.isdisjoint(new):
                for offset, i in enumerate(new):
                    if i in remaining:
                        remaining.discard(i)
                        self.found[i] = (self.depth, base + offset)

    def _defer(self, obj: object) -> None:
        self.deferred[id(obj)] = self.depth - 1
        self.deferred_objs.append(obj)


def _never_traversed() -> object | None:
    """The object the native helper must not traverse, as ``safe.referents`` never gives it
    to ``gc.get_referents`` (3.12's _asyncio module), or None."""
    return dict.get(sys.modules, "_asyncio") if safe._TRAVERSE_GUARD else None


def _native_walker() -> tuple[Any, int]:
    """The native helper and the reference count it reads for one holder, or (None, 0)."""
    if not _SINGLE_HOLDER:
        return None, 0  # counts cannot tell: every object takes the checked path
    helper = native.get()
    return (helper, native.single()) if helper is not None else (None, 0)


def _fanout(obj: object) -> int:
    """How many references a built-in container holds (0 for any other object)."""
    t = type(obj)
    sized: Any = obj  # an exact built-in container: its own C length, no user code
    if t is list or t is tuple or t is set or t is frozenset:
        return len(sized)
    if t is dict:
        return 2 * len(sized)
    return 0


class _Parents:
    """The parents of objects on reported paths, found for many objects at once.

    The chunk that discovered an object is known from ``ends``; all objects whose parents lie
    in the same chunk are looked for in one pass over what that chunk holds, in batched
    sub-chunks, so a chunk holding a big container is scanned once per level, not once per
    path through it."""

    def __init__(self, w: Walk) -> None:
        self.w = w
        self.known: dict[tuple[int, int], tuple[int, object] | None] = {}

    def resolve(self, keys: Iterable[tuple[int, int]]) -> None:
        """Find the parents of the objects at (level, position) ``keys``, up to the roots."""
        w = self.w
        todo = {k for k in keys if k[0] > 0 and k not in self.known}
        while todo:
            level = max(k[0] for k in todo)
            now = {k for k in todo if k[0] == level}
            todo -= now
            size = w.chunk[level]
            by_chunk: dict[int, dict[int, int]] = {}  # chunk -> id(object) -> its position
            for _, pos in now:
                n = bisect_right(w.ends[level], pos)
                by_chunk.setdefault(n, {})[id(w.levels[level][pos])] = pos
            for n, left in by_chunk.items():
                base = n * size
                for offset in self._assign(level, base, size, left):
                    todo.add((level - 1, base + offset))
                for pos in left.values():
                    self.known[(level, pos)] = None
                del left
            todo = {k for k in todo if k[0] > 0 and k not in self.known}

    def _assign(self, level: int, base: int, size: int, left: dict[int, int]) -> list[int]:
        """Find, in the chunk of ``levels[level - 1]`` starting at ``base``, the parents of the
        ``left`` objects of ``level`` (id -> position; removed as they are found).  Returns
        the parents' offsets in the chunk."""
        chunk = _unexpanded_as_none(self.w, self.w.levels[level - 1][base : base + size])
        used: list[int] = []
        helper = native.get() if _SINGLE_HOLDER else None
        if helper is not None:
            # The same search, each sub-chunk in one call (which of its objects hold which
            # of the ids still looked for, in the order the Python code reads them).
            skip = _never_traversed()
            for sub in range(0, len(chunk), SUBCHUNK):
                part = chunk[sub : sub + SUBCHUNK]
                last = -1
                for offset, i in helper.holding(part, set(left), skip)[0]:
                    if i not in left:
                        continue
                    self.known[(level, left.pop(i))] = (base + sub + offset, part[offset])
                    if offset != last:
                        used.append(sub + offset)
                        last = offset
                if not left:
                    return used
            return used
        wanted = left.keys()
        # A small level's chunk (module namespaces, the application's big containers) is
        # read object by object at once: asking the whole chunk first would read a big
        # container there twice.
        sift = size > SMALL_CHUNK
        for sub in range(0, len(chunk), SUBCHUNK):
            part = chunk[sub : sub + SUBCHUNK]
            if sift and holds_none(wanted, _get_referents(*part)):
                continue
            for offset, p in enumerate(part):
                hits = _hits(wanted, _get_referents(p))
                for i in hits:
                    self.known[(level, left.pop(i))] = (base + sub + offset, p)
                if hits:
                    used.append(sub + offset)
                if not left:
                    return used
        return used


def _fewest_referents(objs: list[object]) -> int:
    """A lower bound on ``len(gc.get_referents(*objs))``: an exact list reports each item,
    an exact dict at least each value (their own C lengths, no user code)."""
    sized: list[Any] = [o for o in objs if type(o) is list or type(o) is dict]
    return sum(map(len, sized))


def _unexpanded_as_none(w: Walk, objs: list[object]) -> list[object]:
    """``objs`` with the deferred ones replaced by None (which holds nothing), positions kept:
    a deferred object discovered nothing, and asking it again would scan all it holds."""
    if not w.deferred:
        return objs
    skip = w.deferred
    return [None if id(o) in skip else o for o in objs]


def _chain_up(parents: _Parents, level: int, pos: int) -> list[object] | None:
    """[root, ..., levels[level][pos]] following first parents (resolved beforehand)."""
    chain = [parents.w.levels[level][pos]]
    while level > 0:
        hit = parents.known.get((level, pos))
        if hit is None:
            return None
        pos, parent = hit
        chain.append(parent)
        level -= 1
    chain.reverse()
    return chain


def _holders(
    w: Walk, level: list[object], wanted: dict[int, object], per_child: int
) -> dict[int, list[tuple[int, object]]]:
    """(position, object) of the objects in ``level`` that refer to each wanted object.

    Best effort: the search stops once it has looked at ``SMALL_FANOUT`` references."""
    out: dict[int, list[tuple[int, object]]] = {}
    ids = set(wanted)
    budget = SMALL_FANOUT
    helper = native.get() if _SINGLE_HOLDER else None
    skip = _never_traversed()
    for start in range(0, len(level), CHUNK):
        chunk = _unexpanded_as_none(w, level[start : start + CHUNK])
        if _fewest_referents(chunk) > budget:
            break  # as below, without reading a big container first
        if helper is not None:
            # The same search in one call: which objects of the chunk hold which ids, in the
            # order the Python code below reads them, and how many references it has.
            pairs, n = helper.holding(chunk, ids, skip)
            budget -= n
            if budget < 0:
                break
            for offset, i in pairs:
                p = chunk[offset]
                got = out.setdefault(i, [])
                if len(got) < per_child and not any(h is p for _, h in got):
                    got.append((start + offset, p))
            continue
        refs = _get_referents(*chunk)
        budget -= len(refs)
        if budget < 0:
            break
        if ids.isdisjoint(map(id, refs)):
            continue
        del refs
        for offset, p in enumerate(chunk):
            refs = _get_referents(p)
            if ids.isdisjoint(map(id, refs)):
                continue
            for r in compress(refs, map(ids.__contains__, map(id, refs))):
                got = out.setdefault(id(r), [])
                if len(got) < per_child and not any(h is p for _, h in got):
                    got.append((start + offset, p))
    return out


def chains(
    w: Walk,
    targets: dict[int, object],
    per_target: int,
    avoid: dict[int, object] | None = None,
    drop: Callable[[object], bool] | None = None,
    mine: list[object] | None = None,
) -> dict[int, list[list[object]]]:
    """For each target, up to ``per_target`` chains [root, ..., target], shortest first.

    The first chain follows the walk's first parents.  Other chains end in other holders in
    the target's level or the one above when those levels are small (module namespaces always
    are), so that a ``from m import f`` copy in three modules shows three holders.

    ``avoid`` maps some targets to an object their chains should not pass through (a method's
    stale class: only a holder outside it is worth reporting).  When every chain found passes
    through it, the target's holders are asked for (``referrers``, with ``drop`` removing the
    caller's own) and the shortest chains to those the walk reached are used instead.
    """
    others = _other_holders(w, targets, per_target)
    parents = _Parents(w)
    # One pass for all: a chunk holding a big container is read once, not once per call.
    keys = [w.found[i] for i in targets if i in w.found]
    keys.extend((lvl, pos) for hs in others.values() for lvl, pos, _ in hs)
    parents.resolve(keys)
    del keys
    out: dict[int, list[list[object]]] = {}
    for i, obj in targets.items():
        if i not in w.found:
            continue
        level, pos = w.found[i]
        first = _chain_up(parents, level, pos)
        paths = [first] if first is not None else []
        for lvl, hpos, holder in sorted(others.get(i, []), key=lambda x: x[0]):
            if len(paths) >= per_target:
                break
            if any(len(c) > 1 and c[-2] is holder for c in paths):
                continue
            up = _chain_up(parents, lvl, hpos)
            if up is not None and not any(n is obj for n in up):
                paths.append([*up, obj])
        out[i] = paths
    if avoid:
        blocked = {
            i: a
            for i, a in avoid.items()
            if i in out and all(any(n is a for n in c) for c in out[i])
        }
        if blocked:
            _around(w, parents, targets, blocked, per_target, drop or (lambda r: False), out, mine)
    return out


def _other_holders(
    w: Walk, targets: dict[int, object], per_target: int
) -> dict[int, list[tuple[int, int, object]]]:
    """id(target) -> (level, position, holder) of its holders in its level or the one above,
    when those are small.  (A function of its own: what it builds refers to the targets, and
    must be gone before anyone asks who holds them.)"""
    search: dict[int, dict[int, object]] = {}
    for i, (k, _) in w.found.items():
        if i in targets and k > 0:
            for lvl in (k - 1, k):
                if lvl < len(w.levels) and len(w.levels[lvl]) <= SMALL_LEVEL:
                    search.setdefault(lvl, {})[i] = targets[i]
    others: dict[int, list[tuple[int, int, object]]] = {}
    for lvl, wanted in search.items():
        for i, hs in _holders(w, w.levels[lvl], wanted, per_target).items():
            others.setdefault(i, []).extend((lvl, pos, h) for pos, h in hs)
    return others


def _around(
    w: Walk,
    parents: _Parents,
    targets: dict[int, object],
    blocked: dict[int, object],
    per_target: int,
    drop: Callable[[object], bool],
    out: dict[int, list[list[object]]],
    mine: list[object] | None = None,
) -> None:
    """Chains to ``blocked`` targets that avoid the object each maps to, through whatever
    holds them that the walk reached (one ``referrers`` pass, then one pass over the levels).
    ``mine`` lists the caller's containers that hold targets (see ``outside_counts``)."""
    if mine is not None:
        # A method only its class holds needs no holder search: it is shown with its class.
        listed = [*mine, targets, blocked, out, *out.values()]
        listed.extend(c for cs in out.values() for c in cs)
        counts = outside_counts([targets[i] for i in blocked], listed)
        del listed
        for i in [i for i in blocked if i in counts]:
            # The walk's levels hold each object it reached once.
            left = counts[i] - (1 if i in w.found else 0)
            if left > 0 and left == _class_refs(targets[i], blocked[i]):
                del blocked[i]
        if not blocked:
            return
    own = {id(lvl) for lvl in w.levels}  # and the chains made so far: they hold the targets
    own.update(id(c) for cs in out.values() for c in cs)
    holders = referrers([targets[i] for i in blocked], lambda r: id(r) in own or drop(r))
    # A holder already on a chain (the class's dict) offers nothing new: look for the others.
    on_chains = {id(c[-2]) for i in blocked for c in out[i] if len(c) > 1}
    holders = {i: [h for h in hs if id(h) not in on_chains] for i, hs in holders.items()}
    if not any(holders.values()):
        return
    where = _locate(w, {id(h) for hs in holders.values() for h in hs})
    parents.resolve(where.values())
    for i, hs in holders.items():
        obj, avoided = targets[i], blocked[i]
        found = []
        for h in hs:
            if id(h) not in where:
                continue
            up = _chain_up(parents, *where[id(h)])
            if up is not None and not any(n is avoided or n is obj for n in up):
                found.append([*up, obj])
        found.sort(key=len)
        if found:
            out[i] = found[:per_target]


def _class_refs(method: object, cls: object) -> int:
    """References to ``method`` from the class ``cls`` itself: its dict, and the
    staticmethod, classmethod and property objects there."""
    if not safe.is_class(cls):
        return -1
    d = safe.class_dict(cls)  # type: ignore[arg-type]
    wrappers = [v for v in dict.values(d) if _is_wrapper(type(v))]
    return refs_to(method, [d, *wrappers])


def _is_wrapper(t: type) -> bool:
    return t is staticmethod or t is classmethod or t is property


def _locate(w: Walk, ids: set[int]) -> dict[int, tuple[int, int]]:
    """id -> (level, position) of the objects with these ids that the walk reached, in one
    pass over the levels that runs in C."""
    out: dict[int, tuple[int, int]] = {}
    left = set(ids)
    for k, lvl in enumerate(w.levels):
        for start in range(0, len(lvl), SLICE):
            if not left:
                return out
            part = lvl[start : start + SLICE]
            for pos in compress(count(start), map(left.__contains__, map(id, part))):
                out[id(lvl[pos])] = (k, pos)
            del part
            left -= out.keys()
    return out


def holds_none(keys: AbstractSet[int], refs: list[object]) -> bool:
    """Whether no object of ``refs`` has an id in ``keys`` (in slices, see ``SLICE``)."""
    if len(refs) <= SLICE:
        return keys.isdisjoint(map(id, refs))
    for start in range(0, len(refs), SLICE):
        if not keys.isdisjoint(map(id, refs[start : start + SLICE])):
            return False
    return True


def holds_no_instance(classes: AbstractSet[int], refs: list[object]) -> bool:
    """Whether no object of ``refs`` is an instance of a class with an id in ``classes``."""
    for start in range(0, len(refs), SLICE):
        if not classes.isdisjoint(map(id, map(type, refs[start : start + SLICE]))):
            return False
    return True


def _hits(keys: AbstractSet[int], refs: list[object]) -> set[int]:
    """The ids in ``keys`` of objects in ``refs`` (in slices, see ``SLICE``)."""
    # ``set.intersection`` of an iterable looks each id up in C (no call per item).
    wanted = set(keys)
    if len(refs) <= SLICE:
        return wanted.intersection(map(id, refs))
    out: set[int] = set()
    for start in range(0, len(refs), SLICE):
        out.update(wanted.intersection(map(id, refs[start : start + SLICE])))
    return out


def release(levels: list[list[object]]) -> None:
    """Empty the walk's levels in slices: freeing a million references at once would hold
    the interpreter that long."""
    for lvl in levels:
        while lvl:
            del lvl[-SLICE:]
    levels.clear()


def referrers(objs: list[object], drop: Callable[[object], bool]) -> dict[int, list[object]]:
    """id(obj) -> the distinct objects that refer to it, for each of ``objs``, in one heap pass
    (its cost grows with ``len(objs)``: keep it short).  ``drop`` removes the caller's own."""
    sentinel = _Sentinel()
    ids = {id(o) for o in objs}
    out: dict[int, list[object]] = {}
    for r in gc.get_referrers(*objs, sentinel):
        # On 3.13 the argument tuple itself shows up; it ends with the sentinel.
        if type(r) is tuple and r and r[-1] is sentinel:
            continue
        if r is objs or drop(r):
            continue
        for i in {id(x) for x in _get_referents(r)} & ids:
            out.setdefault(i, []).append(r)
    return out


def dominated(
    obj: object, extra: dict[int, int], node: object = None, limit: int = 50_000
) -> tuple[set[int], int]:
    """Ids of ``obj`` and the objects every path to which passes through it: those reached
    from it through single holders only; and how many references to ``node`` they hold.
    ``extra[id]`` counts references the caller holds itself (such an object is single-held
    when its count exceeds the usual by exactly that)."""
    target = id(node)
    n = 0
    out: set[int] = set()
    frontier = [obj]
    base = _SINGLE_HOLDER
    while frontier and len(out) < limit:
        raw = _get_referents(*frontier)
        if node is not None:
            n += list(map(id, raw)).count(target)
        refs = list(filter(_is_tracked, raw))
        del raw
        counts = list(map(_refcount, refs))
        frontier = [
            r
            for r, c in zip(refs, counts)
            if base and c == base + extra.get(id(r), 0) and id(r) not in out
        ]
        out.update(map(id, frontier))
    out.add(id(obj))
    return out, n


def referents_of(obj: object) -> list[object]:
    return _get_referents(obj)


def holder_counts(nodes: list[object]) -> dict[int, int]:
    """id -> how many references each of ``nodes`` has, besides this reading (``nodes``, its
    argument) and any the caller's frames hold: ``nodes`` must be the only way the caller
    reaches them (a node in a local variable would count once more, which only errs high)."""
    if not _SINGLE_HOLDER:
        return {}
    overhead = _SINGLE_HOLDER - 1
    return dict(zip(map(id, nodes), (c - overhead for c in map(_refcount, nodes))))


def outside_counts(nodes: list[object], mine: list[object]) -> dict[int, int]:
    """id -> references to each of ``nodes`` from outside the scan: its reference count less
    those the scan's own containers ``mine`` really hold (counted from what they hold, so
    never too many).  A holder of the scan's that is not listed, or one gc cannot see, makes
    a count too high, never too low: that only costs a ``referrers`` pass.  Empty when
    reference counts cannot tell."""
    counts = holder_counts(nodes)
    if not counts:
        return {}
    # Each container once, however often it is listed.
    for container in {id(c): c for c in mine}.values():
        for r in _get_referents(container):
            i = id(r)
            if i in counts:
                counts[i] -= 1
    return counts


def refs_to(node: object, holders: Iterable[object]) -> int:
    """How many references ``holders`` hold to ``node`` (each counted as often as it holds
    it, as the reference count does)."""
    target = id(node)
    return sum(list(map(id, _get_referents(h))).count(target) for h in holders)


class _Sentinel:
    __slots__ = ()
