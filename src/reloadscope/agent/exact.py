"""Whether a walk that did not expand the big containers still gave the shortest paths.

The first walk of a scan defers objects holding many references (an application's big lists
and dicts) instead of expanding them.  When the stale objects do not live inside those, the
paths it found are the shortest ones anyway, and the full walk, which visits every object the
big containers hold, is not needed.  This module decides that, from these facts:

1. Let ``L`` be the shallowest level at which an object was deferred.  Any path that goes
   through what a deferred object holds is at least ``L + 1`` long, so an object the walk
   reached at depth ``k <= L + 1`` has no shorter path; and at least ``L + 2`` long unless
   a deferred container holds the object itself, which one pass over what those containers
   hold tells (``_held_by_deferred``).
2. An object reached as a single holder's only referent (not in the walk's ``seen``) can only
   be reached through that holder: if the holder's depth is exact, so is its own.
3. A stale object itself is held by the scan too.  Its reference count less the scan's own
   references (counted from the scan's containers, ``graph.outside_counts``) and those of
   what it dominates (a class's ``__mro__``, its descriptors) says how many holders it has:
   when that is its chain's parent alone, or stale objects whose depths are proven (a class
   held by its instances), no other holder can be closer.
4. Only what those counts cannot explain (a holder gc cannot see, a frame's local) costs one
   ``gc.get_referrers`` pass for all such objects: a deferred holder at level ``m`` offers
   ``min(m, L + 1) + 1``; any other holder is no closer than ``min(k - 1, L + 1)``.
5. The objects of an entry not shown must be no closer than those shown: the look into the
   deferred containers of fact 1 settles that for any number of them when they are at most
   one step past ``L + 1``; a few deeper ones are proven one by one.  The instances of a
   class counted in bulk (not listed) are settled the same way by class: the walk reached
   them after the samples, and the look into the deferred containers asks what they hold by
   class; such a class's holders are counted with its unlisted instances (one reference each).

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
    groups: list[tuple[list[object], object | None, dict[int, int]]],
    samples: dict[int, object],
    chains: dict[int, list[list[object]]],
    targets: set[int] | dict[int, object],
    drop: Callable[[object], bool],
    own: list[object] | None = None,
) -> str | None:
    """None when the paths ``chains`` holds for ``samples`` are the shortest ones, else why
    they may not be.

    ``groups`` lists, per report entry, its objects, the stale class whose methods it
    holds (or None) and, for the classes whose instances it counts without listing them
    all (the walk found its samples among those by class, ``graph.Kinds``), id(class) -> how
    many of its instances are not listed; ``samples`` are the objects chosen to show, the
    shallowest of each entry (the others of an entry must be proven no closer); ``targets``
    holds the ids of all stale objects; ``drop`` recognises the scan's own containers among
    referrers, and ``own`` lists those that may hold stale objects (their references are
    counted, see ``graph.outside_counts``).
    """
    if not w.deferred:
        return None
    exact_depth = min(w.deferred.values()) + 1
    carrier_of: dict[int, object] = {}
    others: dict[int, object] = {}  # objects not shown whose depth must be exact as well
    unshown: dict[int, int] = {}  # id(object not shown) -> the depth it must not beat
    # id(class) -> the depth its instances not listed must not beat
    unshown_kinds: dict[int, int] = {}
    # id(class) -> (instances not listed, a depth none of them is closer than)
    unlisted: dict[int, tuple[int, int]] = {}
    for objs, carrier, not_listed in groups:
        ids = [id(o) for o in objs]
        if not any(i in w.found for i in ids):
            return "an entry has no object outside the deferred containers"
        shown = [w.found[i][0] for i in ids if i in samples and i in w.found]
        kinds = [k for k, n in not_listed.items() if n > 0]
        if kinds:
            # Those the walk reached came after the samples; the others are in deferred
            # containers, or closer only when one holds them directly (checked below).
            unlisted.update((k, (not_listed[k], max(shown))) for k in kinds)
            if max(shown) > exact_depth:
                # The instances not listed were not searched one by one: only a look into
                # the deferred containers, by class, can settle them.
                if not _one_step_enough(w, exact_depth, max(shown)):
                    return "an object not shown may be closer, through a deferred container"
                for k in kinds:
                    unshown_kinds[k] = max(max(shown), unshown_kinds.get(k, 0))
        if len(shown) < len(ids) and max(shown) > exact_depth:
            # One of the others might be closer through a deferred container.  Looking one
            # step into the deferred containers settles that when they are deep enough;
            # otherwise each of the others is proven no closer: affordable for a few.
            if _one_step_enough(w, exact_depth, max(shown)):
                unshown.update((i, max(shown)) for i in ids if i not in samples)
            elif len(ids) > PROVE_OTHERS or any(i not in w.found for i in ids):
                return "an object not shown may be closer, through a deferred container"
            else:
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
    obj = chain = first = None  # type: ignore[assignment]  # no reference the census misses
    if not doubtful and not unshown and not unshown_kinds:
        return None
    # From here on the walk's levels are not needed, and they would count as holders.
    graph.release(w.levels)
    extra: dict[int, int] = {}
    for paths in chains.values():
        for path in paths:
            _count(extra, path)
    mine = [*(own or ()), chains, need, others, samples, carrier_of]
    mine.extend(c for cs in chains.values() for c in cs)
    mine.extend(groups)
    known = targets if type(targets) is dict else need
    counted = {id(c[j]): c[j] for c, j in doubtful.values()}
    counted.update((i, known[i]) for i in unshown if i in known)
    nodes = list(counted.values())
    del counted  # the list alone may hold them while they are counted
    outside = graph.outside_counts(nodes, mine)
    del nodes
    near: dict[int, int] = {}  # id(node) -> its depth, for nodes settled by a look one step in
    reached = [o for i, o in known.items() if i in w.found and i not in w.deferred]
    for i in [i for i in doubtful if i not in carried]:
        if _sole_holder(doubtful[i], outside, extra):
            del doubtful[i]
        elif doubtful[i][1] <= exact_depth + 1:
            # Any holder reached through a deferred container is at least ``exact_depth``
            # deep: only a deferred container holding the node itself could be closer.
            near[i] = doubtful.pop(i)[1]
    # Deeper nodes whose holders are all stale objects the walk reached (a class held by its
    # instances): no holder is closer when each one's depth is proven in turn.
    settled = True
    while settled:
        settled = False
        for i in [i for i in doubtful if i not in carried]:
            n, bound = unlisted.get(i, (0, 0))
            held = _accounted(i, reached, outside, extra, n)
            if held is not None:
                depth = doubtful[i][1]
                pending = None
                if not n or bound >= depth - 1:  # its instances not listed are no closer
                    pending = _proven(w, held, depth, exact_depth, chains, doubtful, unshown)
                if pending is not None:
                    del doubtful[i]
                    near.update(pending)
                    settled = True
            del held
    for i in list(carried):
        if _inside_carrier(doubtful[i], carrier_of[i], outside, extra):
            del doubtful[i]
            carried.discard(i)
    if near:
        # Holders the walk reached are no closer; when they account for every reference,
        # no deferred container holds the node.
        near = {i: k for i, k in near.items() if _accounted(i, reached, outside, extra) is None}
    del reached
    # What must not be held by a deferred container directly (id -> the depth it would beat):
    # not an object whose one holder is the one the walk reached it through.
    look = dict(unshown)
    for i, k in near.items():
        look[i] = max(k, look.get(i, 0))
    look = {i: k for i, k in look.items() if not _walked_holder_only(i, w, known, outside, extra)}
    if look and _held_by_deferred(w, exact_depth, look):
        return "a deferred container holds a stale object directly"
    if unshown_kinds and _kinds_held_by_deferred(w, exact_depth, unshown_kinds):
        return "a deferred container holds an instance not shown directly"
    w.deferred_objs.clear()
    if not doubtful:
        return None
    if not unlisted.keys().isdisjoint(doubtful):
        # Its instances hold it, and the scan did not list them: asking for its holders
        # would list them all.  The full walk settles it instead.
        return "a stale class whose instances are not listed may be closer through one"
    own_ids = {id(carrier_of), id(groups), id(doubtful), id(others), id(need), id(chains)}
    own_ids.update(id(c) for cs in chains.values() for c in cs)
    own_ids.update(map(id, mine))
    own_ids.add(id(outside))

    def drop_own(r: object) -> bool:
        return id(r) in own_ids or drop(r)

    holders = graph.referrers([c[j] for c, j in doubtful.values()], drop_own)
    for hs in holders.values():
        _count(extra, hs)
    for i, (chain, j) in doubtful.items():
        carrier = carrier_of.get(i) if i in carried else None
        why = _closer(w, exact_depth, chain, j, holders.get(i, []), carrier, extra)
        if why is not None:
            return why
    return None


def _one_step_enough(w: graph.Walk, exact_depth: int, depth: int) -> bool:
    """Whether objects that no deferred container holds directly are no closer than
    ``depth``: every path through a deferred container at (effective) level ``m`` is at
    least ``m + 1`` long, and ``m + 2`` unless the container holds the object itself."""
    return all(min(m, exact_depth) + 2 >= depth for m in w.deferred.values())


def _held_by_deferred(w: graph.Walk, exact_depth: int, unshown: dict[int, int]) -> bool:
    """Whether a deferred container holds an object of ``unshown`` directly at a depth it
    would beat (one pass over what those containers hold, in C)."""
    for c in w.deferred_objs:
        m = min(w.deferred[id(c)], exact_depth)
        wanted = {i for i, depth in unshown.items() if m + 1 < depth}
        if wanted and not graph.holds_none(wanted, graph.referents_of(c)):
            return True
    return False


def _kinds_held_by_deferred(w: graph.Walk, exact_depth: int, kinds: dict[int, int]) -> bool:
    """Whether a deferred container holds an instance of a class of ``kinds`` (id -> the
    depth its instances must not beat) directly, at a depth it would beat."""
    for c in w.deferred_objs:
        m = min(w.deferred[id(c)], exact_depth)
        wanted = {k for k, depth in kinds.items() if m + 1 < depth}
        if wanted and not graph.holds_no_instance(wanted, graph.referents_of(c)):
            return True
    return False


def _sole_holder(
    at: tuple[list[object], int], outside: dict[int, int], extra: dict[int, int]
) -> bool:
    """Whether ``chain[j - 1]`` is the only holder of ``chain[j]`` apart from the scan and
    what only ``chain[j]`` reaches: then no other holder can offer a shorter path."""
    chain, j = at
    left = outside.get(id(chain[j]))
    if left is None:
        return False
    inside, inner = graph.dominated(chain[j], extra, chain[j])
    parent = graph.refs_to(chain[j], [chain[j - 1]])
    return parent > 0 and id(chain[j - 1]) not in inside and left - inner == parent


def _walked_holder_only(
    i: int,
    w: graph.Walk,
    known: dict[int, object],
    outside: dict[int, int],
    extra: dict[int, int],
) -> bool:
    """Whether the object with id ``i``, which the walk reached, has one holder besides the
    scan and what only it reaches: the one the walk reached it through, never deferred."""
    node = known.get(i)
    left = outside.get(i)
    if node is None or left is None or i not in w.found:
        return False
    return left - graph.dominated(node, extra, node)[1] == 1


def _accounted(
    i: int,
    reached: list[object],
    outside: dict[int, int],
    extra: dict[int, int],
    unlisted: int = 0,
) -> list[object] | None:
    """The holders of the node with id ``i`` when its references all come from the scan,
    from what only it reaches, from ``reached`` (objects the walk reached, none deferred)
    and from ``unlisted`` instances of it (a class: one reference each, the scan counted
    them); None when something else holds it too."""
    node = next((o for o in reached if id(o) == i), None)
    left = outside.get(i)
    if node is None or left is None:
        return None
    inside, inner = graph.dominated(node, extra, node)
    holders = [o for o in reached if id(o) not in inside and graph.refs_to(node, [o])]
    if left - inner - unlisted != graph.refs_to(node, holders):
        return None
    return holders


def _proven(
    w: graph.Walk,
    holders: list[object],
    depth: int,
    exact_depth: int,
    chains: dict[int, list[list[object]]],
    doubtful: dict[int, tuple[list[object], int]],
    unshown: dict[int, int],
) -> dict[int, int] | None:
    """Whether no holder of a node at ``depth`` can be closer than ``depth - 1``: each is
    within the exact depth, or one step beyond it (returned, id -> depth: a look into the
    deferred containers must confirm those), or an object not shown that is proven no
    closer than its entry's samples (``unshown``), or shown with a chain whose every
    doubtful node is settled.  None when one is not."""
    pending: dict[int, int] = {}
    for h in holders:
        d = w.found[id(h)][0]
        if min(d, exact_depth) >= depth - 1 or unshown.get(id(h), -1) >= depth - 1:
            continue
        if d <= exact_depth + 1:
            pending[id(h)] = d
            continue
        shown = chains.get(id(h))
        if id(h) in doubtful or not shown or len(shown[0]) != d + 1:
            return None
        if any(id(n) in doubtful for n in shown[0][exact_depth + 1 :]):
            return None
    return pending


def _inside_carrier(
    at: tuple[list[object], int],
    carrier: object,
    outside: dict[int, int],
    extra: dict[int, int],
) -> bool:
    """Whether only the stale class ``carrier`` (and what only it reaches) holds the method
    ``chain[j]``: then it is reported with its class, and no holder outside is missed."""
    chain, j = at
    left = outside.get(id(chain[j]))
    if left is None:
        return False
    return left > 0 and left == graph.dominated(carrier, extra, chain[j])[1]


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
        inside = graph.dominated(carrier, extra)[0]
        if not all(id(h) in inside for h in holders):
            return "a method of a stale class is held outside it"
        return None
    parent, parent_depth = chain[j - 1], j - 1
    inside = graph.dominated(chain[j], extra)[0]
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
