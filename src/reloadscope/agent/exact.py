"""Whether a walk that did not expand the big containers still gave the shortest paths.

The first walk of a scan defers objects holding many references (an application's big lists
and dicts) instead of expanding them.  When the stale objects do not live inside those, the
paths it found are the shortest ones anyway, and the full walk, which visits every object the
big containers hold, is not needed.  This module decides that, from three facts:

1. Let ``L`` be the shallowest level at which an object was deferred.  Any path that goes
   through what a deferred object holds is at least ``L + 1`` long, so an object the walk
   reached at depth ``k <= L + 1`` has no shorter path.
2. An object reached as a single holder's only referent (not in the walk's ``seen``) can only
   be reached through that holder: if the holder's depth is exact, so is its own.
3. A stale object itself is held by the scan too, so its holders are asked for (one
   ``gc.get_referrers`` pass for all samples).  Holders it dominates (reached from it through
   single holders: a class's ``__mro__``, its methods' descriptors) never shorten a path to
   it; a deferred holder at level ``m`` offers ``min(m, L + 1) + 1``; any other holder is no
   closer than ``min(k - 1, L + 1)`` (the walk would have reached the object earlier).

Any doubt sends the scan to walk everything: the cost of a wrong answer the other way would
be a path that is not the shortest, the cost of a doubt only time.
"""

from __future__ import annotations

from . import graph, safe

TYPE_CHECKING = False  # typing is not imported at run time: loading must stay cheap
if TYPE_CHECKING:
    from collections.abc import Callable

PROVE_OTHERS = 32


def doubt(
    w: graph.Walk,
    seen: set[int],
    groups: list[tuple[list[object], object | None]],
    samples: dict[int, object],
    chains: dict[int, list[list[object]]],
    targets: set[int] | dict[int, object],
    drop: Callable[[object], bool],
) -> str | None:
    """None when the paths ``chains`` holds for ``samples`` are the shortest ones, else why
    they may not be.

    ``groups`` lists, per report entry, its objects and the stale class whose methods it
    holds (or None); ``samples`` are the objects chosen to show, the shallowest of each entry
    (the others of a small entry must be proven no closer, so their depths are checked too);
    ``targets`` holds the ids of all stale objects; ``drop`` recognises the scan's own
    containers among referrers.
    """
    if not w.deferred:
        return None
    exact_depth = min(w.deferred.values()) + 1
    carrier_of: dict[int, object] = {}
    others: dict[int, object] = {}  # objects not shown whose depth must be exact as well
    for objs, carrier in groups:
        ids = [id(o) for o in objs]
        if not any(i in w.found for i in ids):
            return "an entry has no object outside the deferred containers"
        shown = [w.found[i][0] for i in ids if i in samples and i in w.found]
        if len(shown) < len(ids) and max(shown) > exact_depth:
            # One of the others might be closer through a deferred container, unless each of
            # them is proven no closer: affordable for a few.
            if len(ids) > PROVE_OTHERS or any(i not in w.found for i in ids):
                return "an object not shown may be closer, through a deferred container"
            others.update((id(o), o) for o in objs if id(o) not in samples)
        if carrier is not None:
            carrier_of.update(dict.fromkeys(ids, carrier))
    if others:
        more = graph.chains(w, others, 1)
        chains = {**more, **chains}
    need = {**others, **samples}
    # id -> (chain, index): nodes whose holders must be asked for.  Those with a carrier on
    # their chain are reported only if some path avoids the class.
    doubtful: dict[int, tuple[list[object], int]] = {}
    carried: set[int] = set()
    for i, obj in need.items():
        if i not in w.found:
            return "a sample without a module path may be inside a deferred container"
        k = w.found[i][0]
        first = chains.get(i, [])
        chain = first[0] if first else None
        if chain is None or len(chain) != k + 1 or chain[-1] is not obj:
            return "no chain of the walk's depth"
        carrier = carrier_of.get(i)
        if carrier is not None and all(any(n is carrier for n in c) for c in first):
            # A method is shown only when something outside its class holds it: whatever
            # its depth, its holders decide (the full walk would look around the class).
            doubtful[i] = (chain, k)
            carried.add(i)
            continue
        if k <= exact_depth:
            continue
        doubtful[i] = (chain, k)
        for j in range(exact_depth + 1, k):
            # A node reached through the checked path has several holders (or is a stale
            # object, which the scan holds too: then its own holders decide).
            if id(chain[j]) in seen:
                if id(chain[j]) not in targets:
                    return "a node with several holders beyond the exact depth"
                doubtful.setdefault(id(chain[j]), (chain, j))
    if not doubtful:
        return None
    # From here on the walk's levels are not needed, and they would count as holders.
    w.levels.clear()
    extra: dict[int, int] = {}
    for paths in chains.values():
        for path in paths:
            _count(extra, path)
    own = {id(carrier_of), id(groups), id(doubtful), id(others), id(need), id(chains)}
    own.update(id(c) for cs in chains.values() for c in cs)

    def drop_own(r: object) -> bool:
        return id(r) in own or drop(r)

    holders = graph.referrers([c[j] for c, j in doubtful.values()], drop_own)
    for hs in holders.values():
        _count(extra, hs)
    for i, (chain, j) in doubtful.items():
        carrier = carrier_of.get(i) if i in carried else None
        why = _closer(w, exact_depth, chain, j, holders.get(i, []), carrier, extra)
        if why is not None:
            return why
    return None


def _closer(
    w: graph.Walk,
    exact_depth: int,
    chain: list[object],
    j: int,
    holders: list[object],
    carrier: object | None,
    extra: dict[int, int],
) -> str | None:
    """Why a holder of ``chain[j]`` may offer a shorter path than ``chain[j - 1]`` (None if
    none does).  A function of its own so that no loop variable outlives it: an object held by
    a leftover local would look held twice to the next ``dominated``."""
    if carrier is not None:
        inside = graph.dominated(carrier, extra)
        if not all(id(h) in inside for h in holders):
            return "a method of a stale class is held outside it"
        return None
    parent, parent_depth = chain[j - 1], j - 1
    inside = graph.dominated(chain[j], extra)
    for h in holders:
        if h is parent or id(h) in inside:
            continue
        level = w.deferred.get(id(h))
        if level is not None:
            if min(level, exact_depth) < parent_depth:
                return "a deferred container holds a sample"
        elif parent_depth > exact_depth:
            return f"a sample has another holder ({safe.type_name(type(h))})"
    return None


def _count(extra: dict[int, int], objs: list[object]) -> None:
    """Add one reference per occurrence in ``objs`` (a function, so that no loop variable of
    the caller keeps the last object alive: that would be a reference nobody counted)."""
    for o in objs:
        extra[id(o)] = extra.get(id(o), 0) + 1
