"""Breadth-first walks of the gc graph, batched so the per-object work runs in C.

``gc.get_referrers`` costs one heap pass per call, so walking backwards from each stale object
is hopeless on a large heap.  Instead one forward walk from the roots visits every reachable
object once, level by level, with ``gc.get_referents(*frontier)`` doing the per-object work in
C.  Only the levels are kept; the parents of the few objects we report are found afterwards by
searching the level above, again in batches.
"""

from __future__ import annotations

import gc
import sys
import time
from bisect import bisect_right
from collections.abc import Iterable
from itertools import compress, repeat
from operator import is_

_is_tracked = gc.is_tracked
_get_referents = gc.get_referents
_refcount = sys.getrefcount
CHUNK = 1024
SMALL_LEVEL = 20_000

# An object whose refcount shows one holder can be reached only through that holder, so it
# needs no visited-set check: most containers in a heap are like that, and skipping the hash
# table for them is what makes the walk cheap.  The count is exact on GIL builds up to 3.13;
# elsewhere (borrowed stack references, deferred counts) every object takes the checked path.
_SINGLE_HOLDER = (
    3 if sys.version_info < (3, 14) and getattr(sys, "_is_gil_enabled", lambda: True)() else 0
)


class Walk:
    """The levels of one breadth-first walk and where each target was first reached.

    ``ends[k]`` records, for each frontier chunk expanded to build level ``k``, where its
    discoveries end in ``levels[k]``: the parent of ``levels[k][i]`` is in chunk
    ``bisect_right(ends[k], i)`` of level ``k - 1``.
    """

    def __init__(self) -> None:
        self.levels: list[list[object]] = []
        self.ends: list[list[int]] = [[]]
        self.found: dict[int, int] = {}  # id(target) -> level
        self.complete = True
        self.reason = ""


def walk(
    roots: Iterable[object],
    seen: set[int],
    targets: set[int],
    *,
    max_depth: int,
    deadline: float,
) -> Walk:
    """Visit everything reachable from ``roots`` not in ``seen`` (updated in place).

    Stops early once every target is found.  Targets must be referenced by the caller too
    (so they never look single-held).
    """
    result = Walk()
    level0 = []
    for r in roots:
        if id(r) not in seen:
            seen.add(id(r))
            level0.append(r)
    remaining = set(targets)
    _note(result, remaining, {id(r) for r in level0}, 0)
    frontier = level0
    result.levels.append(level0)
    single = (_SINGLE_HOLDER).__eq__
    depth = 0
    while frontier and remaining:
        if depth >= max_depth:
            result.complete = False
            result.reason = f"stopped at depth {max_depth}"
            break
        if time.monotonic() > deadline:
            result.complete = False
            result.reason = f"time budget exhausted at depth {depth}"
            break
        depth += 1
        nxt: list[object] = []
        ends: list[int] = []
        for start in range(0, len(frontier), CHUNK):
            refs = _get_referents(*frontier[start : start + CHUNK])
            refs = list(compress(refs, map(_is_tracked, refs)))
            # refs now holds each object once more, and getrefcount's argument once more.
            counts = list(map(_refcount, refs))
            nxt.extend(compress(refs, map(single, counts)))
            shared = list(compress(refs, map(_SINGLE_HOLDER.__ne__, counts)))
            if shared:
                by_id = dict(zip(map(id, shared), shared))
                new = by_id.keys() - seen
                if new:
                    seen.update(new)
                    nxt.extend(map(by_id.__getitem__, new))
                    if remaining:
                        _note(result, remaining, new, depth)
            ends.append(len(nxt))
        if not nxt:
            break
        result.levels.append(nxt)
        result.ends.append(ends)
        frontier = nxt
    return result


def _note(result: Walk, remaining: set[int], new: set[int], depth: int) -> None:
    hits = remaining & new
    if hits:
        remaining -= hits
        for i in hits:
            result.found[i] = depth


def _search(chunk: list[object], obj: object) -> object | None:
    """The first object of ``chunk`` that refers to ``obj``."""
    for p in chunk:
        if any(map(is_, _get_referents(p), repeat(obj))):
            return p
    return None


def first_parents(w: Walk, level: int, wanted: dict[int, object]) -> dict[int, object]:
    """For objects of ``levels[level]``, the object of the level above that discovered them."""
    out: dict[int, object] = {}
    if level == 0 or not wanted:
        return out
    objs = w.levels[level]
    above = w.levels[level - 1]
    ends = w.ends[level]
    ids = set(wanted)
    for pos in compress(range(len(objs)), map(ids.__contains__, map(id, objs))):
        j = bisect_right(ends, pos)
        parent = _search(above[j * CHUNK : (j + 1) * CHUNK], objs[pos])
        if parent is not None:
            out[id(objs[pos])] = parent
    return out


def find_parents(
    level: list[object], wanted: dict[int, object], per_child: int
) -> dict[int, list[object]]:
    """Objects in ``level`` that refer to each wanted object (at most ``per_child`` each)."""
    parents: dict[int, list[object]] = {}
    if not wanted:
        return parents
    wanted_ids = wanted.keys()
    for start in range(0, len(level), CHUNK):
        chunk = level[start : start + CHUNK]
        if not (wanted_ids & set(map(id, _get_referents(*chunk)))):
            continue
        for p in chunk:
            for r in _get_referents(p):
                i = id(r)
                if i in wanted_ids:
                    got = parents.setdefault(i, [])
                    if len(got) < per_child and not any(g is p for g in got):
                        got.append(p)
    return parents


def chains(w: Walk, targets: dict[int, object], per_target: int) -> dict[int, list[list[object]]]:
    """For each target, up to ``per_target`` chains [root, ..., target], shortest first.

    Chains differ in the last holder: the one that first reached the target, and others in
    the target's level and the one above when those are small (module namespaces always
    are), so that a ``from m import f`` copy in three modules shows three holders.  Above the
    holder each chain follows the first parent.
    """
    level_of = {i: w.found[i] for i in targets if i in w.found}
    holders: dict[int, list[tuple[int, object]]] = {}
    by_level: dict[int, dict[int, object]] = {}
    search: dict[int, dict[int, object]] = {}
    for i, k in level_of.items():
        if k == 0:
            continue
        by_level.setdefault(k, {})[i] = targets[i]
        for lvl in (k - 1, k):
            if lvl < len(w.levels) and len(w.levels[lvl]) <= SMALL_LEVEL:
                search.setdefault(lvl, {})[i] = targets[i]
    for lvl, wanted in search.items():
        for i, ps in find_parents(w.levels[lvl], wanted, per_target).items():
            holders[i] = [(lvl, p) for p in ps]
            if lvl > 0:
                for p in ps:
                    by_level.setdefault(lvl, {})[id(p)] = p
    # One pass per level, deepest first: the first holder of each target, then every holder's
    # parent, up to the roots.
    up: dict[int, object] = {}
    need = by_level
    for lvl in range(max(need, default=0), 0, -1):
        wanted = need.get(lvl, {})
        for i, p in first_parents(w, lvl, wanted).items():
            up[i] = p
            if i in targets and level_of.get(i) == lvl:
                got = holders.setdefault(i, [])
                if not any(h is p for _, h in got):
                    got.insert(0, (lvl - 1, p))
                    del got[per_target:]
            if lvl - 1 > 0:
                need.setdefault(lvl - 1, {})[id(p)] = p
    out: dict[int, list[list[object]]] = {}
    for i, obj in targets.items():
        if i not in level_of:
            continue
        if level_of[i] == 0:
            out[i] = [[obj]]
            continue
        paths = []
        for lvl, holder in holders.get(i, []):
            chain = [obj, holder]
            node, k = holder, lvl
            while k > 0 and id(node) in up:
                node = up[id(node)]
                chain.append(node)
                k -= 1
            if k == 0 and not any(n is obj for n in chain[1:]):
                chain.reverse()
                paths.append(chain)
        out[i] = paths
    return out
