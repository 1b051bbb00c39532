"""Repair: make what holds a stale object hold the current one (SPEC: ``"reloadscope-fix-plan"``).

Built on a scan's findings only (a repair built on a false finding would corrupt the user's
state), in three steps:

1. **The current object** of each stale function, class or module: the object its module
   binds to the same qualified name now, read through the module's and classes' own dicts,
   of the same kind, and itself not stale (``current``).
2. **The holders**: one heap pass finds every object that refers to a stale one
   (``_referrers``).  Each referrer is a change or a reason (``_Planner.holder``): a module
   namespace, an exact ``dict`` or ``list``, an instance's or a class's ``__dict__`` is
   rebound; a bound method is rebuilt on the current function and its own holders rebound; an
   instance of a stale class gets ``__class__``, a subclass defined elsewhere ``__bases__``;
   anything else (a tuple, a ``functools.partial``, a closure cell, a set, a frame, a C
   object) says why it cannot be.
3. **Apply** (``apply``): the plan is made again, then each reviewed change is carried out only
   if its holder still holds the stale object where the plan saw it; nothing is guessed.

What runs no user code, and why:

- Objects are compared by identity only; the only hashing is of dict keys, and a dict is
  written only when every key in it is of a built-in type (str, int, ..., tuples of those),
  so that no user ``__hash__`` or ``__eq__`` can run during the write's probe.
- Writes go through the C-level slots: ``dict.__setitem__`` on exact dicts (module, instance
  and registry dicts), ``list.__setitem__`` on exact lists, ``type.__setattr__`` on a class
  whose metaclass is ``type`` for a name ``type`` itself does not define, ``object``'s
  ``__class__`` setter (CPython's layout check), ``type``'s ``__bases__`` setter for classes
  whose metaclass, and whose subclasses' metaclasses, are ``type`` (no ``mro()`` override).
- Names come from ``safe``: no ``repr``, ``getattr`` or ``isinstance`` on user objects.

A replaced old object loses a reference: if that was its last, it is freed once every change
is made (or, in a cycle, by the scan after them), as Python frees anything: a ``__del__`` of
what only it held runs then, as it would when the process restarts.  That is the one user
hook an apply may run (never a plan); the result counts those objects (``"freed"``).
"""

from __future__ import annotations

import gc
import os
import sys
import time
from _weakref import ref as _weakref
from types import FunctionType, MemberDescriptorType, MethodType, ModuleType

from . import frozen, graph, safe
from .paths import module_root_step, render
from .scan import Scan
from .stale import LEFTOVER, Found

TYPE_CHECKING = False  # typing is not imported at run time: loading must stay cheap
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

    from .recorder import Recorder

FORMAT = "reloadscope-fix-plan"
VERSION = 1

# Actions, in the order ``apply`` carries them out: classes first (so that instances and
# references move onto classes that already have their new bases), references last.
SET_BASES, SET_CLASS, REBIND, REBIND_METHOD, REMOVE = (
    "set-bases",
    "set-class",
    "rebind",
    "rebind-method",
    "remove-leftover",
)
_ORDER = {SET_BASES: 0, SET_CLASS: 1, REBIND: 2, REBIND_METHOD: 2, REMOVE: 3}
_MISSING = object()
# Names type.__setattr__ finds on the metaclass (type, then object) first: a data descriptor
# there (``__class__``, ``__name__``, ``__bases__``...) would run instead of the dict write.
_TYPE_ATTRS = frozenset(vars(type)) | frozenset(vars(object))
_OBJECT_SETATTR = object.__dict__["__setattr__"]
_set_class = object.__dict__["__class__"].__set__
_set_bases = type.__dict__["__bases__"].__set__
_get_bases = type.__dict__["__bases__"].__get__
_int_attr = {n: type.__dict__[n].__get__ for n in ("__basicsize__", "__itemsize__")}
_int_attr.update(
    {n: type.__dict__[n].__get__ for n in ("__dictoffset__", "__weakrefoffset__", "__flags__")}
)
_HAVE_GC = 1 << 14
_MANAGED = (1 << 2) | (1 << 4)  # Py_TPFLAGS_MANAGED_DICT / MANAGED_WEAKREF (3.12+)
_PAUSE_EVERY = 4096  # referrers examined one by one between pauses (see graph.pause)
# For a few targets gc.get_referrers finds their referrers in one pass in C, several times
# faster than slicing the heap through gc.get_referents; but it compares every reference with
# each target in turn, so past _IN_C_MAX targets the sliced pass is faster.  Not on 3.12, whose
# traversal of _asyncio's module state is unsafe (safe._TRAVERSE_GUARD).
_IN_C = not safe._TRAVERSE_GUARD
_IN_C_MAX = 32


def builtin_key(key: object) -> bool:
    """True when hashing and comparing ``key`` runs no user code."""
    t = type(key)
    if safe.one_of(t, safe.SAFE_KEY_TYPES):
        return True
    if t is tuple:
        return all(map(builtin_key, key))  # type: ignore[call-overload]
    return False


def _all_builtin_keys(d: dict, cache: dict[int, bool] | None = None) -> bool:
    """Every key of ``d`` of a built-in type (``cache``: id(d) -> the answer, within a plan)."""
    if cache is None:
        return all(map(builtin_key, dict.keys(d)))
    ok = cache.get(id(d))
    if ok is None:
        ok = cache[id(d)] = all(map(builtin_key, dict.keys(d)))
    return ok


def _instance_write_refused(t: type, key: object) -> str:
    """Why ``obj.key = value`` for an instance of ``t`` cannot be done as a write to its
    ``__dict__`` ("" when it can): ``t`` overrides ``__setattr__`` (the program wants its code
    to see every write), or a data descriptor of ``t`` handles that name (the program never
    reads the dict entry; setting it would call the descriptor's ``__set__``)."""
    found, hook = safe.lookup_in_mro(t, "__setattr__")
    if found and hook is not _OBJECT_SETATTR:
        return "its class overrides __setattr__: writing around it is not done"
    if type(key) is not str:
        return "an attribute named by a non-str key: not rewritten"
    found, desc = safe.lookup_in_mro(t, key)
    if found and (
        safe.lookup_in_mro(type(desc), "__set__")[0]
        or safe.lookup_in_mro(type(desc), "__delete__")[0]
    ):
        return f"a data descriptor of its class handles .{key}: its __set__ would run"
    return ""


def current(
    f: Found, stale: dict[int, Found], keys_ok: dict[int, bool] | None = None
) -> tuple[object | None, str]:
    """(the current object of the stale ``f``, "") or (None, why there is none); ``keys_ok``
    caches the dicts' key checks (see ``_all_builtin_keys``)."""
    mod = dict.get(sys.modules, f.owner)
    if mod is None or not issubclass(type(mod), ModuleType):
        return None, f"module {f.owner} is no longer in sys.modules: no current object"
    if f.kind == "module":
        if mod is f.obj or id(mod) in stale:
            return None, f"sys.modules[{f.owner!r}] is this old module itself"
        return mod, ""
    if f.kind not in ("function", "class"):
        return None, f"a stale {f.kind} has no current counterpart to point at"
    if "<locals>" in f.qualname or "<" in f.qualname:
        return None, "defined inside a function call: there is no current object of that name"
    ns = safe.module_dict(mod)
    if ns is None or not _all_builtin_keys(ns, keys_ok):
        return None, f"module {f.owner}'s namespace cannot be read safely"
    obj: object = ns
    parts = f.qualname.split(".")
    for n, part in enumerate(parts):
        d = ns if n == 0 else (safe.class_dict(obj) if safe.is_class(obj) else None)  # type: ignore[arg-type]
        if d is None:
            return None, f"{f.owner}.{'.'.join(parts[:n])} is not a class any more"
        if n and not _all_builtin_keys(d, keys_ok):
            return None, f"{f.owner}.{'.'.join(parts[:n])}'s namespace cannot be read safely"
        obj = dict.get(d, part, _MISSING)
        if obj is _MISSING:
            return (
                None,
                f"{f.owner} no longer defines {'.'.join(parts[: n + 1])} (deleted or renamed)",
            )
    if type(obj) is staticmethod or type(obj) is classmethod:
        obj = obj.__func__
    if f.kind == "function" and type(obj) is not FunctionType:
        return None, f"{f.owner}.{f.qualname} is no longer a function"
    if f.kind == "class" and not safe.is_class(obj):
        return None, f"{f.owner}.{f.qualname} is no longer a class"
    if obj is f.obj or id(obj) in stale:
        return (
            None,
            f"{f.owner}.{f.qualname} still names an old object (the reload did not redefine it)",
        )
    return obj, ""


def _layout(cls: type) -> tuple[int, ...]:
    flags = _int_attr["__flags__"](cls)
    return (
        _int_attr["__basicsize__"](cls),
        _int_attr["__itemsize__"](cls),
        _int_attr["__dictoffset__"](cls),
        _int_attr["__weakrefoffset__"](cls),
        flags & (_HAVE_GC | _MANAGED),
    )


def _slot_names(cls: type) -> list[str]:
    out = []
    for base in safe.class_mro(cls):
        for k, v in dict.items(safe.class_dict(base)):
            if type(v) is MemberDescriptorType and type(k) is str:
                out.append(k)
    return sorted(out)


def class_change_refused(old: type, new: type) -> str:
    """Why ``obj.__class__ = new`` would not be safe or would be refused ("" when it is fine):
    both classes plain (metaclass ``type``) with the layout CPython compares."""
    if type(old) is not type or type(new) is not type:
        return "its metaclass is not type (a metaclass may run code on the change)"
    if _layout(old) != _layout(new) or _slot_names(old) != _slot_names(new):
        return "the new class lays its instances out differently (__slots__ or a C base changed)"
    return ""


def _subclasses_plain(cls: type) -> bool:
    todo, seen = [cls], set()
    while todo:
        c = todo.pop()
        if id(c) in seen:
            continue
        seen.add(id(c))
        if type(c) is not type:
            return False
        todo.extend(type.__subclasses__(c))
    return True


class Plan:
    """A repair plan: ``changes`` and ``cannot`` as documents, and the operations behind the
    changes (strong references: a plan lives for one request only)."""

    def __init__(self) -> None:
        self.changes: list[dict[str, Any]] = []
        self.cannot: list[dict[str, Any]] = []
        self.ops: list[tuple] = []  # parallel to changes
        self.freed_with_others = 0
        self.report: dict[str, Any] = {}
        self.blind: list[str] = []

    def document(self) -> dict[str, Any]:
        changes = sorted(
            range(len(self.changes)),
            key=lambda i: (_ORDER[self.changes[i]["action"]], self.changes[i]["where"]),
        )
        return {
            "format": FORMAT,
            "version": VERSION,
            "process": dict(self.report.get("process", {})),
            "changes": [self.changes[i] for i in changes],
            "cannot": sorted(self.cannot, key=lambda c: (c["module"], c["qualname"], c["where"])),
            "freed_with_others": self.freed_with_others,
            "stale": _stale_count(self.report),
            "blind_spots": list(self.blind),
            "applicable": True,
        }


def _stale_count(report: dict[str, Any]) -> int:
    return sum(s.get("count", 1) for m in report.get("modules", []) for s in m.get("stale", []))


class _Planner:
    def __init__(self, recorder: Recorder | None, *, remove_leftovers: bool, collect: bool) -> None:
        self.recorder = recorder
        self.remove_leftovers = remove_leftovers
        self.collect = collect
        self.plan = Plan()
        self.stale: dict[int, Found] = {}
        self.current: dict[int, object] = {}
        self.why_none: dict[int, str] = {}
        self.leftovers: dict[str, set[str]] = {}
        self.module_of_ns: dict[int, str] = {}
        self._index: dict[str, int] = {}  # change key -> its position
        self._cannot_index: dict[tuple, int] = {}
        self._set_class: list[int] = []  # positions of the set-class changes
        self._classes: dict[int, int] = {}  # id(old class) -> its set-class change
        self.interior: set[int] = set()
        self.held_by_stale: set[int] = set()  # stale objects other stale objects hold
        self.owners: dict[int, object] = {}
        self.class_tuples: set[int] = set()
        self.keys_ok: dict[int, bool] = {}  # id(dict) -> all its keys of built-in types
        self.unlisted = 0

    # -- the plan ------------------------------------------------------------------------------
    def run(self) -> Plan:
        s = Scan(self.recorder, collect=self.collect, keep_findings=True)
        self.plan.report, _ = s.run()
        cls = s.findings
        s.findings = None
        if cls is None:
            return self.plan
        self.stale = _defined_there(dict(cls.found))
        self.leftovers = cls.leftover_names
        del cls
        self.plan.blind = list(self.plan.report.get("scan", {}).get("blind_spots", []))
        for i, f in self.stale.items():
            obj, why = current(f, self.stale, self.keys_ok)
            head = f.qualname.partition(".")[0]
            if obj is None and (f.reason == LEFTOVER or head in self.leftovers.get(f.owner, ())):
                why = (
                    f"{f.owner} no longer defines {f.qualname} (its namespace keeps the old one "
                    "under a leftover name): there is no current object to point at"
                )
            if obj is None:
                self.why_none[i] = why
            else:
                self.current[i] = obj
        for key, mod in list(dict.items(sys.modules)):
            ns = safe.module_dict(mod) if issubclass(type(mod), ModuleType) else None
            if ns is not None and type(key) is str and id(ns) not in self.module_of_ns:
                self.module_of_ns[id(ns)] = key
        heap = gc.get_objects()
        more, _, _ = frozen.unlisted(heap)
        heap.extend(more)
        self.unlisted = len(more)  # the last ones of heap: gc.get_referrers misses them
        del more
        targets = {
            i: f.obj for i, f in self.stale.items() if f.kind in ("function", "class", "module")
        }
        self.interior = _interior(self.stale)
        own = {id(heap), id(targets), id(self.stale), id(self.current), id(self.interior)}
        refs = _referrers(heap, targets, own)
        # Bound methods of stale functions, rebuilt on the current function: their holders are
        # rebound to the rebuilt method (a second, smaller pass).
        methods: dict[int, tuple[MethodType, MethodType | None, Found]] = {}
        pending: list[tuple[object, object, Found, object | None, str]] = []
        for i, holders in refs.items():
            f = self.stale[i]
            for r in holders:
                if type(r) is f.obj and f.kind == "class":
                    pass  # an instance of the stale class (itself stale): migrated
                elif id(r) in self.interior or self._old_part(r):
                    self.held_by_stale.add(i)
                    continue  # part of an old generation: it goes with it
                elif _agent_own(r):
                    continue
                if type(r) is MethodType and r.__func__ is f.obj:
                    new = self.current.get(i)
                    rebuilt = MethodType(new, r.__self__) if new is not None else None  # type: ignore[arg-type]
                    methods[id(r)] = (r, rebuilt, f)
                    continue
                pending.append((r, f.obj, f, self.current.get(i), self.why_none.get(i, "")))
        del refs
        if methods:
            more_refs = _referrers(heap, {i: m[0] for i, m in methods.items()}, own | {id(methods)})
            for i, holders in more_refs.items():
                m, rebuilt, f = methods[i]
                for r in holders:
                    if id(r) in self.interior or self._old_part(r) or id(r) in methods:
                        continue
                    why = self.why_none.get(id(f.obj), "")
                    pending.append((r, m, f, rebuilt, why))
            del more_refs
        # Whose __dict__ each dict that holds a stale object is (a class's, a function's, an
        # instance's), in one more pass; module namespaces are known already.
        dicts = {
            id(r): r for r, *_ in pending if type(r) is dict and id(r) not in self.module_of_ns
        }
        own |= {id(pending), id(dicts)}
        self.owners = _owners(heap, dicts, own, self.unlisted) if dicts else {}
        pending = self._wrappers(heap, pending, own)
        # The __bases__ and __mro__ tuples of classes (their class is changed itself).
        self.class_tuples = _class_tuples(r for r, *_ in pending)
        graph.release([heap])
        del heap, dicts
        handled: set[int] = set()
        unnamed: dict[int, tuple[object, list]] = {}
        for r, old, f, new, why in pending:
            handled.add(id(f.obj))
            self.holder(r, old, f, new, why, unnamed)
        del pending
        self._name_unnamed(unnamed)
        self._unreached(handled)
        return self.plan

    def _wrappers(self, heap: list[object], pending: list[tuple], own: set[int]) -> list[tuple]:
        """A decorator's wrapper (``functools.wraps``: ``__wrapped__`` in its ``__dict__``)
        around a stale function is current code holding old code: its holders are rebound to
        what the module binds under that name now (the new wrapper), and the wrapper's own
        ``__dict__`` and closure cells are not holders to change (one more, smaller pass)."""
        wrappers: dict[int, tuple[FunctionType, Found, object | None, str]] = {}
        for r, old, f, new, why in pending:
            w = self.owners.get(id(r)) if type(r) is dict else None
            wraps = type(w) is FunctionType and dict.get(r, "__wrapped__", _MISSING) is old
            if wraps and id(w) not in self.stale and new is not None and new is not w:
                wrappers[id(w)] = (w, f, new, why)  # type: ignore[assignment]
        if not wrappers:
            return pending
        parts: set[int] = set()
        for w, *_ in wrappers.values():
            parts.add(id(w.__dict__))
            for cell in w.__closure__ or ():
                parts.add(id(cell))
        kept = [p for p in pending if id(p[0]) not in parts]
        refs = _referrers(heap, {i: v[0] for i, v in wrappers.items()}, own | {id(wrappers)})
        for i, holders in refs.items():
            w, f, new, why = wrappers[i]
            for r in holders:
                if id(r) in self.interior or self._old_part(r) or id(r) in wrappers:
                    continue
                kept.append((r, w, f, new, why))
        return kept

    def _old_part(self, r: object) -> bool:
        """``r`` is a stale function, class, module...: it goes with its generation.  A stale
        instance is not: it is migrated to the current class, and what it holds rebound."""
        f = self.stale.get(id(r))
        return f is not None and f.kind != "instance"

    def holder(
        self, r: Any, old: Any, f: Found, new: object | None, why: str, unnamed: dict
    ) -> None:
        """One referrer ``r`` of the stale ``old``: a change, a reason, or nothing (it is stale
        itself, or part of a stale class)."""
        t = type(r)
        if f.kind == "class" and t is old:
            self._instance(r, old, f, new, why)
            return
        if f.kind == "class" and safe.is_class(r):
            self._subclass(r, old, f, new, why)
            return
        if t is dict:
            self._dict(r, old, f, new, why, unnamed)
            return
        if t is list:
            for i, x in enumerate(list.copy(r)):
                if x is old:
                    self._change(REBIND, ("list", r, i), old, f, new, why, unnamed)
            return
        if t is tuple and id(r) in self.class_tuples:
            return
        if not safe.is_class(r) and not safe.one_of(t, _NOT_INSTANCES):
            # An instance whose attributes live in its object (3.11+ inline values): its
            # __dict__ is made when asked for, with the same keys and values.
            d = safe.instance_dict(r)
            if d is not None and any(v is old for v in dict.values(d)):
                self._dict(d, old, f, new, why, unnamed, owner=r)
                return
        _unnamed_cannot(unnamed, r, f, _why_not(r, f))

    def _dict(
        self,
        d: dict,
        old: object,
        f: Found,
        new: object | None,
        why: str,
        unnamed: dict,
        owner: Any = None,
    ) -> None:
        module = self.module_of_ns.get(id(d))
        items = list(dict.items(d))
        keys = [k for k, v in items if v is old]
        if any(k is old for k, _ in items):
            _unnamed_cannot(
                unnamed,
                d if owner is None else owner,
                f,
                "a dict key holds it: replacing a key would hash and compare objects",
            )
        if module is None and owner is None:
            owner = self.owners.get(id(d))
        if owner is not None and safe.is_class(owner):
            if id(owner) in self.stale:
                return  # the old class's own namespace
            for k in keys:
                where = f"{safe.class_module(owner) or '?'}.{safe.class_qualname(owner)}.{k}"
                if type(owner) is not type:
                    self._cannot(
                        f,
                        where,
                        "the class's metaclass is not type: setting an attribute may run its code",
                    )
                    continue
                if type(k) is not str or k in _TYPE_ATTRS:
                    self._cannot(
                        f,
                        where,
                        f"type defines {k} itself (a descriptor such as __class__): setting it "
                        "would not just rebind the name",
                    )
                    continue
                if not _all_builtin_keys(d, self.keys_ok):
                    self._cannot(
                        f,
                        where,
                        "the class's namespace has keys of user-defined types: writing to it "
                        "could run their __hash__ or __eq__",
                    )
                    continue
                self._change(REBIND, ("class", owner, k), old, f, new, why, unnamed, where=where)
            return
        if owner is not None and type(owner) is FunctionType:
            for k in keys:
                self._cannot(
                    f,
                    f"{safe.function_qualname(owner)}.__dict__[{safe.key_repr(k)}]",
                    "a function attribute (such as __wrapped__): not rewritten",
                )
            return
        if not _all_builtin_keys(d, self.keys_ok):
            for _ in keys:
                _unnamed_cannot(
                    unnamed,
                    d if owner is None or module is not None else owner,
                    f,
                    "a dict with keys of user-defined types: writing to it could run their "
                    "__hash__ or __eq__",
                )
            return
        for k in keys:
            if module is not None:
                if module == f.owner and (
                    f.reason == LEFTOVER or k in self.leftovers.get(module, ())
                ):
                    self._leftover(d, k, old, f, unnamed)
                    continue
                where = (
                    f"{module}.{k}"
                    if safe.is_identifier(k)
                    else f"{module}.__dict__[{safe.key_repr(k)}]"
                )
                self._change(REBIND, ("dict", d, k), old, f, new, why, unnamed, where=where)
            elif owner is not None:
                refused = _instance_write_refused(type(owner), k)
                if refused:
                    unnamed.setdefault(id(owner), (owner, []))[1].append(
                        ("cannot", ("dict", d, k), f, refused, owner)
                    )
                    continue
                self._change(REBIND, ("dict", d, k), old, f, new, why, unnamed, attr_of=owner)
            else:
                self._change(REBIND, ("dict", d, k), old, f, new, why, unnamed)

    def _leftover(self, d: dict, k: str, old: object, f: Found, unnamed: dict) -> None:
        where = f"{f.owner}.{k}"
        if not self.remove_leftovers:
            self._cannot(
                f,
                where,
                "a leftover name: the module no longer defines it; --remove-leftovers deletes it "
                "(old code may still read it)",
            )
            return
        self._add(REMOVE, ("del", d, k), old, None, f, where, f"del {where}", 1)

    def _instance(self, r: object, old: object, f: Found, new: object | None, why: str) -> None:
        if safe.is_class(r):
            where = f"{safe.class_module(r) or '?'}.{safe.class_qualname(r)}"  # type: ignore[arg-type]
            self._cannot(f, where, "a class made by this old metaclass: not changed")
            return
        if new is None:
            self._cannot(f, f"instances of {f.owner}.{f.qualname}", why, count=1)
            return
        refused = class_change_refused(old, new)  # type: ignore[arg-type]
        if refused:
            self._cannot(f, f"instances of {f.owner}.{f.qualname}", refused, count=1)
            return
        n = self._classes.get(id(old))
        if n is not None:
            self.plan.ops[n][1].append(r)
            self.plan.changes[n]["count"] += 1
            return
        where = f"instances of {f.owner}.{f.qualname} (generation {_gen(f)})"
        if f.generation is None:
            # Old classes of unknown generation (a late agent) told apart by their order.
            same = [c for c in self.plan.changes if c["where"].startswith(where[:-1])]
            if same:
                where = f"{where[:-1]}, old class {len(same) + 1})"
        self._classes[id(old)] = len(self.plan.changes)
        code = f"obj.__class__ = {f.owner}.{f.qualname}"
        self._set_class.append(len(self.plan.changes))
        self._add(SET_CLASS, ("class-of", [r]), old, new, f, where, code, 1)

    def _subclass(self, c: type, old: object, f: Found, new: object | None, why: str) -> None:
        bases = _get_bases(c)
        if not any(b is old for b in bases):
            return  # its __mro__ holds the old class through a base that is changed itself
        where = f"{safe.class_module(c) or '?'}.{safe.class_qualname(c)}.__bases__"
        if new is None:
            self._cannot(f, where, why)
            return
        if type(new) is not type or not _subclasses_plain(c):
            self._cannot(
                f,
                where,
                "a metaclass other than type is involved: changing __bases__ may run its mro()",
            )
            return
        if _layout(old) != _layout(new):  # type: ignore[arg-type]
            self._cannot(f, where, "the new base lays instances out differently")
            return
        new_bases = tuple(new if b is old else b for b in bases)
        names = ", ".join(
            f"{safe.class_module(b) or '?'}.{safe.class_qualname(b)}" for b in new_bases
        )
        code = f"{where} = ({names}{',' if len(new_bases) == 1 else ''})"
        self._add(SET_BASES, ("bases", c, bases, new_bases), old, new, f, where, code, 1)

    def _change(
        self,
        action: str,
        slot: tuple,
        old: object,
        f: Found,
        new: object | None,
        why: str,
        unnamed: dict,
        where: str | None = None,
        attr_of: object | None = None,
    ) -> None:
        if type(old) is MethodType:
            action = REBIND_METHOD
        if new is None:
            if where is None:
                unnamed.setdefault(id(slot[1]), (slot[1], []))[1].append(
                    ("cannot", slot, f, why, attr_of)
                )
            else:
                self._cannot(f, where, why)
            return
        if where is None:
            unnamed.setdefault(
                id(slot[1] if attr_of is None else attr_of),
                (slot[1] if attr_of is None else attr_of, []),
            )[1].append(("change", (action, slot, old, new, f), attr_of))
            return
        self._add(action, slot, old, new, f, where, _code(where, f, action), 1)

    def _add(
        self,
        action: str,
        slot: tuple,
        old: object,
        new: object | None,
        f: Found,
        where: str,
        code: str,
        count: int,
    ) -> None:
        key = f"{action} {where} {f.owner}.{f.qualname}@{f.generation}"
        if key in self._index:
            return
        self._index[key] = len(self.plan.changes)
        self.plan.changes.append(
            {
                "key": key,
                "action": action,
                "where": where,
                "code": code,
                "module": f.owner,
                "qualname": f.qualname,
                "kind": f.kind,
                "generation": f.generation,
                "count": count,
            }
        )
        self.plan.ops.append((slot[0], slot[1], *slot[2:], old, new))

    def _cannot(self, f: Found, where: str, why: str, count: int = 1) -> None:
        key = (where, f.owner, f.qualname, f.generation)
        n = self._cannot_index.get(key)
        if n is not None:
            self.plan.cannot[n]["count"] += count
            return
        self._cannot_index[key] = len(self.plan.cannot)
        self.plan.cannot.append(
            {
                "where": where,
                "module": f.owner,
                "qualname": f.qualname,
                "kind": f.kind,
                "generation": f.generation,
                "count": count,
                "why": why,
            }
        )

    def _name_unnamed(self, unnamed: dict[int, tuple[object, list]]) -> None:
        """Containers and instances that hold stale objects get the shortest path from a
        module that reaches them (one walk for all), or a description."""
        samples = {id(self.plan.ops[n][1][0]): n for n in self._set_class}
        if not unnamed and not samples:
            return
        seen = set(self.stale).difference(samples)
        scan = Scan(self.recorder)
        roots, root_key = scan._module_roots(seen)
        targets = {i: v[0] for i, v in unnamed.items()}
        targets.update((i, self.plan.ops[n][1][0]) for i, n in samples.items())
        w = graph.walk(roots, seen, set(targets), max_depth=100, deadline=time.monotonic() + 30.0)
        found = {i: o for i, o in targets.items() if i in w.found}
        names: dict[int, str] = {}
        with_paths = graph.chains(w, found, 1) if found else {}
        for i, chains in with_paths.items():
            chain = chains[0] if chains else None
            key = root_key.get(id(chain[0])) if chain else None
            if chain is None or key is None or len(chain) < 2:
                continue
            text, _ = module_root_step(key, chain[0], chain[1])  # type: ignore[arg-type]
            names[i], _ = render(text, chain[1:])
        graph.release(w.levels)
        del w, found, with_paths, targets
        for i, n in samples.items():
            change = self.plan.changes[n]
            name = names.get(i)
            cls = f"{change['module']}.{change['qualname']}"
            if change["count"] == 1 and name is not None:
                change["code"] = f"{name}.__class__ = {cls}"
            elif name is not None:
                change["code"] = f"obj.__class__ = {cls}  # each of {change['count']}, e.g. {name}"
            else:
                change["code"] = f"obj.__class__ = {cls}  # each of {change['count']}"
        for i, (holder, items) in unnamed.items():
            name = names.get(i) or _describe(holder)
            for item in items:
                if item[0] == "cannot":
                    _, slot, f, why, attr_of = item
                    self._cannot(f, name + _suffix(slot, attr_of), why)
                else:
                    (action, slot, old, new, f), attr_of = item[1], item[2]
                    where = name + _suffix(slot, attr_of)
                    self._add(action, slot, old, new, f, where, _code(where, f, action), 1)

    def _unreached(self, handled: set[int]) -> None:
        """Stale objects whose referrers the heap pass did not see: a running frame, a
        thread's local (not in the gc graph on 3.11+), a C holder; or only other stale
        objects (they go when those go)."""
        by_id: dict[int, dict[str, Any]] = {}
        for m in self.plan.report.get("modules", []):
            for s in m.get("stale", []):
                for p in s.get("paths", []):
                    oid = p.get("object_id")
                    if oid is not None and oid not in by_id:
                        by_id[oid] = p
                if s.get("type") == "frame":
                    path = s["paths"][0]["text"] if s.get("paths") else "a running frame"
                    self.plan.cannot.append(
                        {
                            "where": path,
                            "module": m["name"],
                            "qualname": s["qualname"],
                            "kind": s["kind"],
                            "generation": s["generation"],
                            "count": 1,
                            "why": "a thread runs this old code until the call returns: "
                            "restart that thread or let it finish",
                        }
                    )
        for i, f in self.stale.items():
            if i in handled or f.kind == "instance":
                continue
            p = by_id.get(i)
            if p is not None and p.get("root") == "thread":
                self._cannot(
                    f, p["text"], "a running frame's local holds it: it goes when that call returns"
                )
            elif p is not None and p.get("root") == "other" and p.get("steps", 0) > 0:
                self._cannot(
                    f, p["text"], "held outside the module graph (a probed hook): not rewritten"
                )
            elif i in self.held_by_stale:
                self.plan.freed_with_others += 1  # its holders are old too: freed with them
            elif p is not None and p.get("root") == "module" and f.kind != "code":
                self._cannot(
                    f, p["text"], "its holders are not in the gc graph reloadscope can write to"
                )
            else:
                self.plan.freed_with_others += 1


def _unnamed_cannot(unnamed: dict, holder: object, f: Found, why: str) -> None:
    """A holder refused as a whole, named (with the others) by ``_name_unnamed``."""
    unnamed.setdefault(id(holder), (holder, []))[1].append(
        ("cannot", ("whole", holder), f, why, None)
    )


def _defined_there(stale: dict[int, Found]) -> dict[int, Found]:
    """The findings a repair acts on: a class defined in another module than the one it is
    stale for (a class of ``__main__`` whose attribute holds an old function of ``plug``,
    found for that "method") is not an old object of that module but a holder of one; it, and
    its instances, are left out (its attributes are then rebound as any class's)."""
    held = {
        i
        for i, f in stale.items()
        if f.kind == "class" and safe.class_module(f.obj) != f.owner  # type: ignore[arg-type]
    }
    if not held:
        return stale
    return {
        i: f
        for i, f in stale.items()
        if i not in held and not (f.kind == "instance" and id(type(f.obj)) in held)
    }


def _gen(f: Found) -> str:
    return "?" if f.generation is None else str(f.generation)


def _code(where: str, f: Found, action: str) -> str:
    target = f"{f.owner}.{f.qualname}"
    if action == REBIND_METHOD:
        return f"{where} = MethodType({target}, {where}.__self__)"
    return f"{where} = {target}"


def _suffix(slot: tuple, attr_of: object | None) -> str:
    kind, _, key = slot[0], slot[1], slot[2] if len(slot) > 2 else None
    if kind == "list":
        return f"[{key}]"
    if kind == "dict" and attr_of is not None and safe.is_identifier(key):
        return f".{key}"
    if kind == "dict":
        r = safe.key_repr(key)
        return f"[{r if r is not None else '?'}]" if attr_of is None else f".__dict__[{r}]"
    return ""


_NOT_INSTANCES = (dict, list, tuple, set, frozenset, MethodType, ModuleType, FunctionType)
_PARTS = (
    "cell",
    "staticmethod",
    "classmethod",
    "property",
    "getset_descriptor",
    "member_descriptor",
)


def _owners(
    heap: list[object], dicts: dict[int, dict], own: set[int], unlisted: int
) -> dict[int, object]:
    """id(d) -> the class, function or instance whose ``__dict__`` each of ``dicts`` is."""
    out: dict[int, object] = {}
    # Any referrer will do here (one made since the heap was listed, a tuple of the plan's
    # own): only the object whose __dict__ is d by identity is taken.
    for i, holders in _referrers(heap, dicts, own, unlisted, in_c=True).items():
        d = dicts[i]
        for r in holders:
            if safe.is_class(r):
                if safe.class_dict(r) is d:  # type: ignore[arg-type]
                    out[i] = r
            elif type(r) is FunctionType:
                if r.__dict__ is d:
                    out[i] = r
            elif not safe.one_of(type(r), _NOT_INSTANCES) and safe.instance_dict(r) is d:
                out[i] = r
            if i in out:
                break
    return out


def _class_tuples(objs: Iterable[object]) -> set[int]:
    """Ids of the ``__bases__`` and ``__mro__`` tuples among ``objs`` (the referrers)."""
    out: set[int] = set()
    for r in objs:
        if safe.is_class(r):
            out.add(id(_get_bases(r)))
            out.add(id(safe.class_mro(r)))  # type: ignore[arg-type]
        elif type(r) is tuple and r and safe.is_class(r[0]) and safe.class_mro(r[0]) is r:
            out.add(id(r))
    return out


def _interior(stale: dict[int, Found]) -> set[int]:
    """Ids of what the stale objects are made of: a stale class's own dict, ``__bases__`` and
    ``__mro__``, and, a few steps down from it and from stale functions, the tuples, closure
    cells (``super()``'s ``__class__``), descriptors and function ``__dict__`` they hold; an
    old module's namespace.  Their references to stale objects are not holders to rebind:
    they go with the old generation."""
    out: set[int] = set()
    frontier: list[object] = []
    for f in stale.values():
        o = f.obj
        if safe.is_class(o):
            d = safe.class_dict(o)  # type: ignore[arg-type]
            out.update((id(d), id(safe.class_mro(o)), id(_get_bases(o))))  # type: ignore[arg-type]
            frontier.append(d)
        elif type(o) is FunctionType:
            frontier.append(o)
        elif f.kind == "module":
            ns = safe.module_dict(o)
            if ns is not None:
                out.add(id(ns))
    for _ in range(4):
        nxt: list[object] = []
        for x in frontier:
            fn = type(x) is FunctionType
            for r in safe.referents(x):
                i = id(r)
                if i in out or i in stale:
                    continue
                t = type(r)
                if t is dict:
                    # A function's own __dict__, never its globals or builtins.
                    if not fn or r is x.__globals__ or r is x.__builtins__:  # type: ignore[attr-defined]
                        continue
                elif t is not tuple and safe.type_name(t) not in _PARTS:
                    continue
                out.add(i)
                nxt.append(r)
        frontier = nxt
    return out


_AGENT = __name__.rpartition(".")[0]


def _agent_own(obj: object) -> bool:
    """An object of one of the agent's own classes (the scan's findings)."""
    mod = safe.class_module(type(obj)) if safe.is_class(type(obj)) else None
    return mod is not None and (mod == _AGENT or mod.startswith(_AGENT + "."))


def _describe(obj: object) -> str:
    t = type(obj)
    name = safe.class_qualname(t)
    mod = safe.type_module(t)
    if mod is not None and mod != "builtins":
        name = f"{mod}.{name}"
    return f"<{name} object at {id(obj):#x}>"


def _why_not(r: object, f: Found) -> str:
    t = type(r)
    name = safe.type_name(t)
    if t is tuple:
        return "a tuple holds it: tuples cannot be changed in place"
    if name == "partial":
        return "a functools.partial holds it: its function cannot be replaced"
    if name == "cell":
        return "a closure cell holds it: redefine the function that closes over it"
    if t is set or t is frozenset:
        return "a set holds it: replacing it would hash objects"
    if name in ("frame", "generator", "coroutine", "async_generator"):
        return "a running or suspended frame holds it: it goes when that call ends"
    if t is dict or safe.is_dict_subclass(r):
        return "a dict subclass (or a dict key) holds it: not rewritten"
    if t is list or list in safe.class_mro(t):
        return "a list subclass holds it: not rewritten"
    if t is FunctionType:
        return "a function's own reference (defaults, globals, code): redefine that function"
    if name in ("staticmethod", "classmethod", "property"):
        return f"a {name} wrapper holds it: reload the class that defines it"
    return (
        f"a {name} object holds it: reloadscope writes only to dicts, lists, attributes and classes"
    )


def _referrers(
    heap: list[object],
    targets: Mapping[int, object],
    own: set[int],
    unlisted: int = 0,
    *,
    in_c: bool = False,
) -> dict[int, list[object]]:
    """id(target) -> the objects of ``heap`` that refer to it directly, in one pass: slices
    whose referents miss every target are skipped in C.  With ``in_c``, for a few targets
    (``_IN_C``), those gc.get_referrers finds instead, plus those of the last ``unlisted`` of
    ``heap`` (found by ``frozen.unlisted``: gc.get_referrers does not see them): then also
    objects made since the heap was listed (the caller's own among them)."""
    keys = targets.keys()
    out: dict[int, list[object]] = {}
    if not keys:
        return out
    referents = safe.referents
    seen: set[int] = set()
    if in_c and _IN_C and len(keys) <= _IN_C_MAX:
        out = graph.referrers(list(targets.values()), lambda r: id(r) in own)
        seen = {id(r) for rs in out.values() for r in rs}
        heap = heap[len(heap) - unlisted :] if unlisted else []
    step = graph.SLICE // 16
    for start in range(0, len(heap), step):
        part = heap[start : start + step]
        if keys.isdisjoint(map(id, referents(*part))):
            continue
        for n, r in enumerate(part):
            if id(r) in own or id(r) in seen:
                continue
            hits = keys & set(map(id, referents(r)))
            for i in hits:
                out.setdefault(i, []).append(r)
            if n % _PAUSE_EVERY == _PAUSE_EVERY - 1:
                graph.pause()
        del part
        graph.pause()
    return out


# -- apply -------------------------------------------------------------------------------------
def _still(op: tuple) -> bool:
    kind = op[0]
    if kind == "list":
        _, lst, i, old, _new = op
        return type(lst) is list and i < list.__len__(lst) and list.__getitem__(lst, i) is old
    if kind == "dict":
        _, d, k, old, _new = op
        return _all_builtin_keys(d) and dict.get(d, k, _MISSING) is old
    if kind == "del":
        _, d, k, old, _new = op
        return _all_builtin_keys(d) and dict.get(d, k, _MISSING) is old
    if kind == "class":
        _, c, k, old, _new = op
        d = safe.class_dict(c)
        return _all_builtin_keys(d) and dict.get(d, k, _MISSING) is old
    if kind == "bases":
        _, c, bases, _new_bases, _old, _new = op
        return _get_bases(c) is bases
    return True


def _do(op: tuple) -> int:
    """Carry out one operation; how many objects it changed."""
    kind = op[0]
    if kind == "list":
        _, lst, i, _old, new = op
        list.__setitem__(lst, i, new)
    elif kind == "dict":
        _, d, k, _old, new = op
        dict.__setitem__(d, k, new)
    elif kind == "del":
        _, d, k, _old, _new = op
        dict.__delitem__(d, k)
    elif kind == "class":
        _, c, k, _old, new = op
        type.__setattr__(c, k, new)
    elif kind == "bases":
        _, c, _bases, new_bases, _old, _new = op
        _set_bases(c, new_bases)
    elif kind == "class-of":
        _, objs, old, new = op
        n = 0
        for o in objs:
            if type(o) is old:
                _set_class(o, new)
                n += 1
        return n
    return 1


def plan(
    recorder: Recorder | None, *, remove_leftovers: bool = False, collect: bool = True
) -> dict[str, Any]:
    """The repair plan of this process (``FORMAT``), changing nothing."""
    return _Planner(recorder, remove_leftovers=remove_leftovers, collect=collect).run().document()


def apply(
    recorder: Recorder | None,
    *,
    remove_leftovers: bool = False,
    only: list[str] | None = None,
    collect: bool = True,
) -> dict[str, Any]:
    """Make the plan again and carry out its changes (those whose ``key`` is in ``only``, when
    given: the ones reviewed), then scan again.  A change whose holder no longer holds the
    stale object where the plan saw it is skipped."""
    p = _Planner(recorder, remove_leftovers=remove_leftovers, collect=collect).run()
    doc = p.document()
    before = p.report
    retired: list[object] = []
    applied, skipped = _carry_out(p, None if only is None else set(only), retired)
    p.ops.clear()
    del p
    # The old objects the changes let go of, watched: those whose last reference a change
    # dropped are freed here, after every write (and those in cycles by the scan's collection),
    # each with what only it held, whose __del__ runs then, as on a restart.
    watched = _watch(retired)
    after, _ = Scan(recorder, collect=collect).run()
    freed = sum(1 for w in watched if w() is None)
    del watched
    return {
        "format": FORMAT + "-result",
        "version": VERSION,
        "process": dict(before.get("process", {})),
        "plan": doc,
        "applied": applied,
        "skipped": skipped,
        "freed": freed,
        "before": _entries(before),
        "after": _entries(after),
        "report": after,
        "pid": os.getpid(),
    }


def _watch(retired: list[object]) -> list[Any]:
    """Weak references to the distinct objects of ``retired``, which is emptied (this frame,
    and the caller's, hold none of them afterwards)."""
    watched = []
    seen: set[int] = set()
    for o in retired:
        if id(o) not in seen:
            seen.add(id(o))
            try:
                watched.append(_weakref(o))
            except TypeError:
                pass
    retired.clear()
    return watched


def _carry_out(
    p: Plan, wanted: set[str] | None, retired: list[object]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(applied, skipped): the plan's changes in ``_ORDER``, each checked again first; the
    old objects of the changes carried out are appended to ``retired`` (kept alive until the
    caller lets go: none is freed between two writes)."""
    applied: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    order = sorted(range(len(p.changes)), key=lambda i: _ORDER[p.changes[i]["action"]])
    for i in order:
        change, op = p.changes[i], p.ops[i]
        if wanted is not None and change["key"] not in wanted:
            skipped.append(dict(change, why="not in the reviewed plan"))
            continue
        try:
            if not _still(op):
                skipped.append(dict(change, why="its holder changed since the plan: not guessed"))
                continue
            n = _do(op)
        except Exception as e:  # CPython refused (a layout check): nothing was written
            skipped.append(dict(change, why=f"CPython refused it: {type(e).__name__}: {e}"))
            continue
        applied.append(dict(change, count=n))
        retired.append(op[-2])  # every operation ends with (old, new)
    if wanted is not None:
        made = {c["key"] for c in p.changes}
        for k in sorted(wanted - made):
            skipped.append(
                {"key": k, "why": "no longer needed or no longer possible: not in the new plan"}
            )
    # (This frame ends here: the last old object it saw is no longer held when the caller
    # scans again; it would look held "outside the gc graph".)
    return applied, skipped


def _entries(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One line per stale entry: what ``apply`` compares before and after."""
    return [
        {
            "module": m["name"],
            "qualname": s["qualname"],
            "kind": s["kind"],
            "generation": s["generation"],
            "count": s.get("count", 1),
        }
        for m in report.get("modules", [])
        for s in m.get("stale", [])
    ]
