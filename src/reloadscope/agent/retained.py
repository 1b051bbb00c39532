"""What a set of stale objects alone keeps alive ("retained"), by reference counts only.

For each set (the stale objects one generation of a module still has alive) the objects reached
from it are collected, breadth first, up to a bound.  An object is *retained* by the set when
every reference to it comes from the set or from other retained objects: its reference count,
less the references the set and the other candidates hold (counted from what they hold, with
``gc.get_referents``), is zero.  Candidates that fail are dropped and what they hold is counted
again, until nothing changes (as the cyclic collector's own reckoning does).

This only ever errs low, so the figure is a lower bound:
- a reference gc cannot see (a running frame's local on 3.11+, a C extension's) keeps an object
  out, as it should: such an object is not held by the set alone;
- module namespaces, classes and the other stale objects are never expanded or counted (a class
  or namespace is held by its module; another stale object has an entry of its own);
- a code object's constants are followed (``co_consts``), nothing else it holds;
- past ``limit`` objects or the deadline the walk stops, and the figure says it is capped.

Nothing here calls user code: ``type()``, ``id()``, ``gc.get_referents``, reference counts and
the built-in types' own ``__sizeof__`` for exact built-in containers.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from itertools import compress, repeat
from operator import and_, is_, not_
from types import CodeType, ModuleType

from . import graph, safe

TYPE_CHECKING = False  # typing is not imported at run time: loading must stay cheap
if TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Set as AbstractSet

LIMIT = 20_000  # objects collected for all sets of one scan together (see the README: cost)
_get_referents = safe.referents  # gc.get_referents, never on 3.12's _asyncio
_refcount = sys.getrefcount
# Exact built-in types whose own __sizeof__ counts their items' storage (never user code).
_CODE = CodeType
_flags = type.__dict__["__flags__"].__get__
_BITS = repeat(1 << 31)  # Py_TPFLAGS_TYPE_SUBCLASS: a class, whatever its metaclass
# Measured by their own __sizeof__: exact built-in containers (their item storage), and the
# built-in types object.__sizeof__ gets wrong (safe.OWN_SIZEOF).
_CONTAINERS = (list, dict, set, frozenset, bytearray, *safe.OWN_SIZEOF)
_object_sizeof = object.__sizeof__


class Retained:
    """The bytes one set retains: ``bytes`` (its own sizes included), ``objects`` beyond the
    set, and ``capped`` when the bound stopped the walk (then a looser lower bound)."""

    __slots__ = ("bytes", "capped", "objects")

    def __init__(self, nbytes: int, objects: int, capped: bool) -> None:
        self.bytes = nbytes
        self.objects = objects
        self.capped = capped


def available() -> bool:
    """Whether reference counts can tell (not on free-threaded builds: see graph's probe)."""
    return bool(graph._SINGLE_HOLDER)


def _referents(objs: list[object]) -> list[object]:
    """What ``objs`` hold, as ``gc.get_referents`` sees it, plus each code object's constants
    (a code object is not a gc container), in chunks (see ``graph.CHUNK``)."""
    out: list[object] = []
    for k in range(0, len(objs), graph.CHUNK):
        part = objs[k : k + graph.CHUNK]
        out.extend(_get_referents(*part))
        if id(_CODE) in map(id, map(type, part)):  # not `in map(type, ...)`: == on classes
            out.extend(o.co_consts for o in part if type(o) is _CODE)
    return out


def _sizes(objs: list[object]) -> int:
    """Their sizes summed: ``object.__sizeof__`` (as the scan measures its entries), and for
    exact built-in containers their own ``__sizeof__``, which counts their item storage."""
    total = sum(map(_object_sizeof, objs))
    types = list(map(type, objs))
    present = set(map(id, types))  # by id: hashing a class may run its metaclass's __hash__
    for t in _CONTAINERS:
        if id(t) not in present:
            continue
        mine = list(compress(objs, map(is_, types, repeat(t))))
        if mine:
            total += sum(map(t.__sizeof__, mine)) - sum(map(_object_sizeof, mine))
    return total


def _skipped() -> set[int]:
    """Ids never expanded: the namespaces of the modules in sys.modules, and the modules."""
    out: set[int] = set()
    for mod in list(dict.values(sys.modules)):
        out.add(id(mod))
        if issubclass(type(mod), ModuleType):
            ns = safe.module_dict(mod)
            if ns is not None:
                out.add(id(ns))
    return out


def retained(
    groups: Iterable[tuple[list[object], int]],
    stale_ids: set[int],
    *,
    limit: int = LIMIT,
    deadline: float | None = None,
    stale_classes: AbstractSet[int] = frozenset(),
) -> list[Retained | None]:
    """For each ``(objects, their summed size)`` in ``groups``: what they retain, or None when
    reference counts cannot tell.  ``stale_ids``: every reported stale object (none of them is
    counted as retained by another set); ``stale_classes``: ids of stale classes whose
    instances (stale objects the scan did not list) are not counted either."""
    groups = list(groups)
    if not groups:
        return []  # (nothing to measure: the namespaces are not even listed)
    if not available():
        return [None] * len(groups)
    skip = _skipped()
    skip.update(stale_ids)
    left = limit
    out: list[Retained | None] = []
    for objs, own in groups:
        if left <= 0 or (deadline is not None and time.monotonic() > deadline):
            out.append(Retained(own, 0, True))
            continue
        r = _one(objs, skip, left, deadline, stale_classes)
        left -= r.objects
        r.bytes += own
        out.append(r)
    return out


def _one(
    objs: list[object],
    skip: set[int],
    limit: int,
    deadline: float | None,
    stale_classes: AbstractSet[int] = frozenset(),
) -> Retained:
    seen = set(skip)
    seen.update(map(id, objs))
    nodes: list[object] = []  # the only references this function keeps to the candidates
    capped = False
    expanded = 0  # nodes[:expanded] had their referents listed (all, unless capped)
    frontier: list[object] = objs
    while frontier:
        raw = _referents(frontier)
        if len(nodes) + len(raw) > limit:
            del raw[max(limit - len(nodes), 0) + 1 :]  # one more than fits: it is capped
        fresh = dict(zip(map(id, raw), raw))
        del raw
        keys = fresh.keys() - seen
        seen.update(keys)
        found = list(map(fresh.__getitem__, keys))
        del fresh, keys
        # Classes are held by their modules (and a stale one is an entry of its own).
        nxt = list(compress(found, map(not_, map(and_, map(_flags, map(type, found)), _BITS))))
        del found
        if stale_classes and not stale_classes.isdisjoint(map(id, map(type, nxt))):
            # Instances of stale classes are stale objects themselves, never retained.
            nxt = [o for o in nxt if id(type(o)) not in stale_classes]
        if len(nodes) + len(nxt) > limit or (deadline is not None and time.monotonic() > deadline):
            capped = True
            del nxt[max(limit - len(nodes), 0) :]
            expanded = len(nodes)
            nodes.extend(nxt)
            break
        expanded = len(nodes)
        nodes.extend(nxt)
        frontier = nxt
    del frontier, nxt
    if not nodes:
        return Retained(0, 0, capped)
    if not capped:
        expanded = len(nodes)  # the last level was expanded too: it found nothing new
    ids = list(map(id, nodes))
    # References besides ``nodes`` (and the reading), per candidate.
    counts = graph.holder_counts(nodes)
    index = dict(zip(ids, range(len(nodes))))
    # A candidate with one reference has it from the set or a candidate: the one it was
    # reached from.  The others' references from inside are counted.
    multi = {i for i, c in counts.items() if c != 1}
    inside: Counter[int] = Counter(filter(multi.__contains__, map(id, _referents(objs))))
    # (Not those of candidates the bound left unexpanded: fewer counted, never too many.)
    inside.update(filter(multi.__contains__, map(id, _referents(nodes[:expanded]))))
    alive = dict.fromkeys(ids, True)
    wave = [i for i in multi if counts[i] > inside[i]]
    for i in wave:
        alive[i] = False
    while wave:  # what the dropped ones hold is held from outside the set too
        dropped = [nodes[index[i]] for i in wave]
        gone = Counter(filter(index.__contains__, map(id, _referents(dropped))))
        del dropped
        wave = []
        for i, n in gone.items():
            if alive[i]:
                inside[i] = (1 if i not in multi else inside[i]) - n
                if counts[i] > inside[i]:
                    alive[i] = False
                    wave.append(i)
    kept = list(compress(nodes, alive.values()))
    total = _sizes(kept)
    n = len(kept)
    del kept
    graph.release([nodes])
    return Retained(total, n, capped)
