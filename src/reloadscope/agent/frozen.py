"""Objects ``gc.freeze()`` hid from ``gc.get_objects()``, found without unfreezing them.

Pre-fork servers call ``gc.freeze()`` (copy-on-write friendly workers): every object the
collector tracked then moves to a permanent generation that ``gc.get_objects()`` and
``gc.get_referrers()`` never look at, often most of the heap, stale objects included.
``gc.unfreeze()`` would change the process, so they are reached instead: every tracked object
that a listed object, a module, a running frame or a class refers to and that is not listed
itself is frozen; so is every tracked, unlisted object such an object refers to.  The search
goes only through frozen objects (the listed ones are its start), so it costs one
``gc.get_referents`` pass over the heap and an id set of it, and only when something is frozen.

``gc.get_freeze_count()`` says how many there are: when the search finds fewer, the rest are
held only where Python cannot look (C globals, reference counts alone) and the scan says so
(``blindspots.frozen``).  Measured on CPython 3.10-3.15: with the classes (through
``type.__subclasses__``) and their dicts among the starts, all of a plain process's frozen
objects are found; without them about half (descriptors and dicts of built-in types).
"""

from __future__ import annotations

import gc
import sys
from itertools import compress
from types import FrameType
from weakref import getweakrefs

from . import safe

TYPE_CHECKING = False  # typing is not imported at run time: loading must stay cheap
if TYPE_CHECKING:
    from collections.abc import Callable

# Objects per gc.get_referents call: a few milliseconds each, so another thread waits for the
# GIL that long at most.
SLICE = 65536


def freeze_count() -> int:
    """How many objects ``gc.freeze()`` holds (0 where the interpreter cannot say)."""
    count = getattr(gc, "get_freeze_count", None)
    if count is None:
        return 0
    try:
        n = count()
    except Exception:
        return 0
    return n if type(n) is int and n > 0 else 0


def _classes() -> list[object]:
    """Every class, through ``type.__subclasses__`` (no metaclass method runs)."""
    out: list[object] = []
    seen: set[int] = set()
    todo: list[type] = [object]
    subclasses = type.__dict__["__subclasses__"]
    while todo:
        cls = todo.pop()
        if id(cls) in seen:
            continue
        seen.add(id(cls))
        out.append(cls)
        try:
            todo.extend(subclasses(cls))
        except Exception:
            pass
    return out


def _starts() -> list[object]:
    """Roots the collector's lists may lack: modules, running frames, classes and their dicts
    (a built-in type is no tracked object, but what its dict holds may be frozen)."""
    out: list[object] = [sys.modules]
    out.extend(dict.values(sys.modules))  # type: ignore[arg-type]
    for frame in sys._current_frames().values():
        f: FrameType | None = frame
        while f is not None:
            out.append(f)
            f = f.f_back
    frame = f = None  # type: ignore[assignment]
    for cls in _classes():
        out.append(cls)
        out.append(safe.class_dict(cls))  # type: ignore[arg-type]
        out.extend(getweakrefs(cls))  # the interpreter's own (subclass lists) are not tracked
    return out


def unlisted(
    listed: list[object], *, deadline: Callable[[], bool] | None = None
) -> tuple[list[object], int, int]:
    """(the objects found that ``listed`` lacks, how many objects are frozen, how many of
    those found are frozen), given ``listed``, what ``gc.get_objects()`` returned (with
    automatic collections off, as during a scan).  ``([], 0, 0)`` when nothing is frozen.

    Objects made since ``listed`` was taken (by another thread, or the interpreter) are found
    too, and are real objects to judge; they are not counted as frozen: they are in the
    young generation, which is listed once more at the end.  ``deadline``, asked between
    slices, cuts the search short when it answers True."""
    total = freeze_count()
    if not total:
        return [], 0, 0
    is_tracked = gc.is_tracked
    skip = set(map(id, listed))
    found: list[object] = []

    def fresh(objs: list[object]) -> list[object]:
        refs = safe.referents(*objs)
        new = list(compress(refs, map(is_tracked, refs)))
        del refs
        out = []
        for r in new:
            i = id(r)
            if i not in skip:
                skip.add(i)
                out.append(r)
        return out

    starts = _starts()
    skip.update((id(listed), id(starts), id(found)))
    for o in starts:  # a start that is tracked but not listed is one of them itself
        if is_tracked(o) and id(o) not in skip:
            skip.add(id(o))
            found.append(o)
    cut = False
    todo: list[object] = []
    for chunk in (listed, starts):
        for i in range(0, len(chunk), SLICE):
            todo.extend(fresh(chunk[i : i + SLICE]))
            if deadline is not None and deadline():
                cut = True
                break
    del starts
    while todo and not cut:
        found.extend(todo)
        nxt: list[object] = []
        for i in range(0, len(todo), SLICE):
            nxt.extend(fresh(todo[i : i + SLICE]))
            if deadline is not None and deadline():
                cut = True
                break
        todo = nxt
    found.extend(todo)
    del todo
    skip.clear()
    young = set(map(id, gc.get_objects(0)))
    young.discard(id(found))
    frozen = len(found) - sum(map(young.__contains__, map(id, found)))
    return found, total, frozen
