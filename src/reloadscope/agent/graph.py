"""Breadth-first walks of the gc graph, batched so the per-object work runs in C.

``gc.get_referrers`` costs one heap pass per call, so walking backwards from each stale object
is hopeless on a large heap.  Instead one forward walk from the roots visits every reachable
object once, level by level, with ``gc.get_referents(*frontier)`` doing the per-object work in
C.  Only the levels are kept; the parents of the few objects we report are found afterwards by
searching the level above, again in batches.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable
from itertools import compress

_is_tracked = gc.is_tracked
_get_referents = gc.get_referents
CHUNK = 512


class Walk:
    """The levels of one breadth-first walk and where each target was first reached."""

    def __init__(self) -> None:
        self.levels: list[list[object]] = []
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

    Stops early once every target is found.
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
        for start in range(0, len(frontier), 4096):
            refs = _get_referents(*frontier[start : start + 4096])
            refs = list(compress(refs, map(_is_tracked, refs)))
            by_id = dict(zip(map(id, refs), refs))
            new = by_id.keys() - seen
            if new:
                seen.update(new)
                nxt.extend(map(by_id.__getitem__, new))
                _note(result, remaining, new, depth)
        if not nxt:
            break
        result.levels.append(nxt)
        frontier = nxt
    return result


def _note(result: Walk, remaining: set[int], new: set[int] | frozenset[int], depth: int) -> None:
    hits = remaining & new
    if hits:
        remaining -= hits
        for i in hits:
            result.found[i] = depth


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


def chains(
    w: Walk, targets: dict[int, object], per_target: int, slack: int = 2
) -> dict[int, list[list[object]]]:
    """For each target, up to ``per_target`` chains [root, ..., target], shortest first.

    Chains differ in the last holder: holders are looked for in the level above the target
    and ``slack`` levels below it, so a second holder a step or two further away is shown too.
    Above the holder each chain follows the first parent found.
    """
    level_of = {i: w.found[i] for i in targets if i in w.found}
    search: dict[int, dict[int, object]] = {}
    for i, k in level_of.items():
        for lvl in range(max(k - 1, 0), min(k + slack, len(w.levels))):
            if k > 0:
                search.setdefault(lvl, {})[i] = targets[i]
    holders: dict[int, list[tuple[int, object]]] = {}
    for lvl in sorted(search):
        for i, ps in find_parents(w.levels[lvl], search[lvl], per_target).items():
            got = holders.setdefault(i, [])
            for p in ps:
                if len(got) < per_target and p is not targets[i]:
                    got.append((lvl, p))
    # Walk every chosen holder up to a root, one batched search per level.
    need: dict[int, dict[int, object]] = {}
    for hs in holders.values():
        for lvl, h in hs:
            if lvl > 0:
                need.setdefault(lvl, {})[id(h)] = h
    parent_of: dict[int, object] = {}
    for lvl in range(max(need, default=0), 0, -1):
        wanted = need.get(lvl, {})
        for i, ps in find_parents(w.levels[lvl - 1], wanted, 1).items():
            parent_of[i] = ps[0]
            if lvl - 1 > 0:
                need.setdefault(lvl - 1, {})[id(ps[0])] = ps[0]
    out: dict[int, list[list[object]]] = {}
    for i, obj in targets.items():
        if i not in level_of:
            continue
        if level_of[i] == 0:
            out[i] = [[obj]]
            continue
        paths = []
        for _, holder in holders.get(i, []):
            chain = [obj, holder]
            node = holder
            while id(node) in parent_of:
                node = parent_of[id(node)]
                chain.append(node)
            if any(n is obj for n in chain[1:]):
                continue  # the holder is only reached through the target itself
            chain.reverse()
            paths.append(chain)
        out[i] = paths
    return out
