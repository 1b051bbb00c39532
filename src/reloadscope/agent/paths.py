"""Turning a chain of objects into a labelled path: an evaluable expression and a hint.

Each step is a template with a hole (``HOLE``) for the expression of the holder, so that both
suffixes (``.name``, ``[0]``) and wrappers (``list(...)[2]``) compose.  Only the objects on a
reported path are named, and only through C-level descriptors of built-in types.
"""

from __future__ import annotations

import functools
from collections import deque
from itertools import compress, count, islice, pairwise, repeat
from operator import is_
from types import (
    BuiltinMethodType,
    CellType,
    CodeType,
    CoroutineType,
    FrameType,
    FunctionType,
    GeneratorType,
    MappingProxyType,
    MethodType,
    ModuleType,
    TracebackType,
)

from . import native, safe
from .graph import SLICE, pause

TYPE_CHECKING = False  # typing is not imported at run time: loading must stay cheap
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

HOLE = "\x00"

# Step kinds (the hint reads them).
ATTR, ITEM, INDEX, CLASS, BASE, CLOSURE, FUNC, SELF, PARTIAL, WRAPPED, GC, FRAME, SKIP = (
    "attr",
    "item",
    "index",
    "class",
    "base",
    "closure",
    "func",
    "self",
    "partial",
    "wrapped",
    "gc",
    "frame",
    "skip",
)

Step = tuple[str, str]  # (kind, template)

# The n-th item of a set, or the n-th key or value of a dict, as a suffix (so a path still starts
# with the module's name): an iterator's pickle protocol returns the remaining items as a list,
# in the order iteration gives them.
_NTH = ".__iter__().__reduce__()[1][0]"

_FUNC_ATTRS = (
    "__code__",
    "__globals__",
    "__defaults__",
    "__kwdefaults__",
    "__closure__",
    "__module__",
    "__doc__",
    "__name__",
    "__qualname__",
    "__builtins__",
    # 3.12+ and 3.14+ (PEP 649's annotate function: plain getters, never the annotations,
    # whose getter would call it).
    *(n for n in ("__type_params__", "__annotate__") if n in vars(FunctionType)),
)
_FUNCTION_TYPE_ATTRS = frozenset(dir(FunctionType))


async def _agen() -> Any:  # pragma: no cover - only its type is used
    yield


_AsyncGenType = type(_agen())
# Keyed by id: looking a user's class up in a dict would hash it (a metaclass __hash__ runs).
_GEN_ATTRS = {
    id(GeneratorType): ("gi_frame", "gi_code"),
    id(CoroutineType): ("cr_frame", "cr_code", "cr_await"),
    id(_AsyncGenType): ("ag_frame", "ag_code", "ag_await"),
}
_BaseExc_attrs = tuple(
    (name, BaseException.__dict__[name])
    for name in ("__traceback__", "__context__", "__cause__", "args")
)


def _attr(name: str) -> Step:
    return ATTR, HOLE + "." + name


class _Positions:
    """Positions in big sequences on reported paths, found for all children at once (one pass
    over each sequence, in C), checked again when asked for (the sequence may have changed)."""

    BIG = 4096

    def __init__(self, chains: Iterable[list[object]] = ()) -> None:
        self.maps: dict[int, dict[int, int]] = {}
        wanted: dict[int, tuple[object, set[int]]] = {}
        for chain in chains:
            for parent, child in pairwise(chain):
                t = type(parent)
                seq: Any = parent  # an exact list or tuple: its own C length
                if (t is list or t is tuple) and len(seq) >= self.BIG:
                    wanted.setdefault(id(parent), (parent, set()))[1].add(id(child))
        for key, (seq, ids) in wanted.items():
            t = type(seq)
            m = self.maps[key] = {}
            # In slices, with the other threads let in between (a million items in one C
            # call would keep them waiting longer than a whole gc.get_objects()).
            helper = native.get()
            for start in range(0, len(seq), SLICE):
                if helper is not None:
                    for i in helper.where(seq, start, start + SLICE, ids):
                        m.setdefault(id(t.__getitem__(seq, i)), i)
                else:
                    part = t.__getitem__(seq, slice(start, start + SLICE))
                    for i in compress(count(start), map(ids.__contains__, map(id, part))):
                        m.setdefault(id(part[i - start]), i)
                    del part
                if len(m) == len(ids):
                    break
                pause()
        del wanted

    def find(self, seq: Any, child: object) -> int | None:
        """Index of ``child`` in ``seq``, an exact list or tuple (its own C methods only)."""
        t: Any = type(seq)
        i = self.maps.get(id(seq), {}).get(id(child))
        if i is not None:
            try:
                if t.__getitem__(seq, i) is child:
                    return i
            except IndexError:
                pass
        return _position(t.__iter__(seq), child)


_positions: _Positions | None = None


class positions:
    """Render paths in this block with big sequences indexed on demand (dropped at the end:
    nothing of the target is kept between scans).  A class, not contextlib: the agent loads
    as few modules as it can."""

    def __init__(self, chains: Iterable[list[object]] = ()) -> None:
        self.chains = chains

    def __enter__(self) -> None:
        global _positions
        _positions = _Positions(self.chains)
        self.chains = ()

    def __exit__(self, *exc: object) -> None:
        global _positions
        _positions = None


def _position(items: Iterable[object], child: object) -> int | None:
    """Index of the first of ``items`` that is ``child`` itself, searched in C (a big container
    on a path costs milliseconds, not a Python loop per item)."""
    try:
        return next(compress(count(), map(is_, items, repeat(child))), None)
    except Exception:  # changed size while we looked
        return None


def _gc_step(parent: object, child: object) -> Step:
    for i, r in enumerate(safe.referents(parent)):
        if r is child:
            return GC, f"__import__('gc').get_referents({HOLE})[{i}]"
    return GC, f"<unnamed reference of {HOLE}>"


def _dict_step(d: dict, child: object) -> Step | None:
    i = _position(dict.values(d), child)
    if i is not None:
        kr = safe.key_repr(_nth(dict.keys(d), i))
        if kr is not None:
            return ITEM, f"{HOLE}[{kr}]"
        return ITEM, f"{HOLE}.values(){_NTH}[{i}]"
    i = _position(dict.keys(d), child)
    if i is not None:
        return ITEM, f"{HOLE}{_NTH}[{i}]"
    return None


def _dict_key(d: dict, child: object) -> object:
    """The key under which ``d`` holds ``child`` (None if not a value)."""
    i = _position(dict.values(d), child)
    return None if i is None else _nth(dict.keys(d), i)


def _nth(items: Iterable[object], i: int) -> object:
    try:
        return next(islice(items, i, None), None)
    except Exception:
        return None


def _named(owner: object, d: dict, child: object, allow_attr: bool) -> Step | None:
    """Step from ``owner`` (module, class, instance, function) into ``owner.__dict__``'s value."""
    k = _dict_key(d, child)
    if k is not None and allow_attr and safe.is_identifier(k):
        return ATTR, f"{HOLE}.{k}"
    inner = _dict_step(d, child)
    if inner is None:
        return None
    return inner[0], inner[1].replace(HOLE, HOLE + ".__dict__", 1)


def _class_attr_ok(value: object) -> bool:
    """``Cls.name`` gives back the stored value itself (no descriptor transforms it)."""
    t = type(value)
    return t is FunctionType or safe.is_class(value) or not safe.type_has_get(value)


def step(parent: object, child: object, grandchild: object | None = None) -> tuple[Step, bool]:
    """The step from ``parent`` to ``child``.

    Returns (step, merged): ``merged`` is True when the step already went through ``child`` (a
    ``__dict__``) into ``grandchild``.
    """
    t = type(parent)
    # Namespaces: go straight to the attribute when we can.
    if type(child) is dict and grandchild is not None:
        merged = _through_dict(parent, child, grandchild)
        if merged is not None:
            return merged, True
    if t is dict or safe.is_dict_subclass(parent):
        s = _dict_step(parent, child)  # type: ignore[arg-type]
        if s is not None:
            return s, False
    if t is MappingProxyType:
        return (SKIP, HOLE), False
    if t is list or t is tuple:
        finder = _positions
        if finder is not None:
            i = finder.find(parent, child)
        else:
            i = _position(t.__iter__(parent), child)  # type: ignore[arg-type]
        if i is not None:
            return (INDEX, f"{HOLE}[{i}]"), False
    if t is deque:
        i = _position(deque.__iter__(parent), child)  # type: ignore[arg-type]
        if i is not None:
            return (INDEX, f"{HOLE}[{i}]"), False
    if t is set or t is frozenset:
        it: Any = t.__iter__
        for i, x in enumerate(it(parent)):
            if x is child:
                return (INDEX, f"{HOLE}{_NTH}[{i}]"), False
    if t is CellType:
        return (CLOSURE, HOLE + ".cell_contents"), False
    if t is MethodType:
        if parent.__func__ is child:  # type: ignore[attr-defined]
            return (FUNC, HOLE + ".__func__"), False
        if parent.__self__ is child:  # type: ignore[attr-defined]
            return (SELF, HOLE + ".__self__"), False
    if t is BuiltinMethodType and parent.__self__ is child:  # type: ignore[attr-defined]
        return (SELF, HOLE + ".__self__"), False
    if t is FunctionType:
        if parent.__closure__ is not None and parent.__closure__ is child:  # type: ignore[attr-defined]
            return (CLOSURE, HOLE + ".__closure__"), False
        for name in _FUNC_ATTRS:
            if getattr(parent, name, None) is child:
                return _attr(name), False
    if (t is staticmethod or t is classmethod) and parent.__func__ is child:  # type: ignore[attr-defined]
        return (FUNC, HOLE + ".__func__"), False
    if t is property:
        for name in ("fget", "fset", "fdel"):
            if getattr(parent, name) is child:
                return _attr(name), False
    if t is functools.partial:
        if parent.func is child:  # type: ignore[attr-defined]
            return (PARTIAL, HOLE + ".func"), False
        for name in ("args", "keywords"):
            if getattr(parent, name) is child:
                return _attr(name), False
    if id(t) in _GEN_ATTRS:
        for name in _GEN_ATTRS[id(t)]:
            if getattr(parent, name, None) is child:
                return _attr(name), False
    if t is FrameType:
        for name in ("f_back", "f_code", "f_globals", "f_builtins"):
            if getattr(parent, name) is child:
                return _attr(name), False
        locs = _frame_locals(parent)  # type: ignore[arg-type]
        for k, v in locs:
            if v is child:
                return (FRAME, f"{HOLE}.f_locals[{k!r}]"), False
    if t is TracebackType:
        for name in ("tb_frame", "tb_next"):
            if getattr(parent, name) is child:
                return _attr(name), False
    if t is ModuleType and child is safe.module_dict(parent):
        return _attr("__dict__"), False
    if safe.is_class(parent):
        s = _class_step(parent, child)  # type: ignore[arg-type]
        if s is not None:
            return s, False
    elif child is type(parent):
        return (CLASS, HOLE + ".__class__"), False
    else:
        s = _instance_step(parent, child)
        if s is not None:
            return s, False
    return _gc_step(parent, child), False


def _class_step(cls: type, child: object) -> Step | None:
    if child is safe.class_dict(cls):
        return _attr("__dict__")
    bases = type.__dict__["__bases__"].__get__(cls)
    for i, b in enumerate(bases):
        if b is child:
            return BASE, f"{HOLE}.__bases__[{i}]"
    if child is bases:
        return BASE, HOLE + ".__bases__"
    if child is safe.class_mro(cls):
        return BASE, HOLE + ".__mro__"
    if child is type(cls):
        return CLASS, HOLE + ".__class__"
    return None


def _instance_step(obj: object, child: object) -> Step | None:
    if issubclass(type(obj), BaseException):
        for name, desc in _BaseExc_attrs:
            try:
                if desc.__get__(obj) is child:
                    return _attr(name)
            except Exception:
                pass
    for name, value in safe.slot_items(obj):
        if value is child:
            return _attr(name)
    d = safe.instance_dict(obj)
    if d is not None:
        if d is child:
            return _attr("__dict__")
        k = _dict_key(d, child)
        if k is not None:
            if safe.is_identifier(k) and not safe.has_attribute_in_type(obj, k):  # type: ignore[arg-type]
                return ATTR, f"{HOLE}.{k}"
            inner = _dict_step(d, child)
            if inner is not None:
                return inner[0], inner[1].replace(HOLE, HOLE + ".__dict__", 1)
    return None


def _through_dict(owner: object, d: dict, child: object) -> Step | None:
    """``owner -> owner.__dict__ -> child`` as one step when ``d`` is ``owner``'s namespace."""
    t = type(owner)
    if t is ModuleType or (safe.is_class(type(owner)) and issubclass(t, ModuleType)):
        if d is safe.module_dict(owner):
            return _named(owner, d, child, True)
        return None
    if safe.is_class(owner):
        if d is safe.class_dict(owner):  # type: ignore[arg-type]
            return _named(owner, d, child, _class_attr_ok(child))
        return None
    if t is FunctionType:
        if d is owner.__dict__:
            k = _dict_key(d, child)
            ok = type(k) is str and k not in _FUNCTION_TYPE_ATTRS
            s = _named(owner, d, child, ok)
            if s is not None and k == "__wrapped__":
                return WRAPPED, s[1]
            return s
        return None
    if t in (staticmethod, classmethod, functools.partial, CodeType):
        return None
    if d is _peek_instance_dict(owner):
        k = _dict_key(d, child)
        ok = safe.is_identifier(k) and not safe.has_attribute_in_type(owner, k)  # type: ignore[arg-type]
        return _named(owner, d, child, ok)
    return None


def _peek_instance_dict(obj: object) -> dict | None:
    # Only called when gc already showed a dict referent, so this creates nothing new.
    return safe.instance_dict(obj)


def _frame_locals(frame: FrameType) -> list[tuple[str, object]]:
    try:
        return list(frame.f_locals.items())
    except Exception:
        return []


def render(prefix: str, chain: list[object]) -> tuple[str, list[str]]:
    """Expression for ``chain[-1]`` starting from ``prefix`` (the expression of ``chain[0]``),
    and the kinds of the steps taken."""
    text = prefix
    kinds: list[str] = []
    i = 0
    while i < len(chain) - 1:
        grandchild = chain[i + 2] if i + 2 < len(chain) else None
        (kind, tmpl), merged = step(chain[i], chain[i + 1], grandchild)
        text = tmpl.replace(HOLE, text, 1)
        kinds.append(kind)
        i += 2 if merged else 1
    return text, kinds


def module_root_step(module_key: str, ns: dict, child: object) -> tuple[str, str]:
    """Expression of the first step out of a module namespace (``pkg.mod.name``)."""
    k = _dict_key(ns, child)
    if safe.is_identifier(k):
        return f"{module_key}.{k}", ATTR
    s = _dict_step(ns, child)
    if s is None:
        return f"{module_key}.<?>", GC
    return s[1].replace(HOLE, module_key + ".__dict__", 1), ITEM
