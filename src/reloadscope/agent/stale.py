"""Deciding which live objects are stale, and which generation made them.

The evidence, strongest first:
- a recorded generation's code objects (every execution compiles fresh ones, so a function's
  ``__code__`` names the execution that made it; closures and lambdas included);
- a recorded generation's classes (for classes without methods);
- a module object that ``sys.modules`` no longer holds, and whatever has its dict as globals;
- a function compiled from the module's file with the module's globals that the current,
  fully recorded execution did not create.
Without such evidence nothing is reported: guessing by name floods a plain process with
false positives.
"""

from __future__ import annotations

import sys
from types import CodeType, CoroutineType, FrameType, FunctionType, GeneratorType, ModuleType

from . import safe
from .recorder import Generation, ModuleRecord, Recorder

TYPE_CHECKING = False  # typing is not imported at run time: loading must stay cheap
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any


async def _agen() -> Any:  # pragma: no cover - only its type is used
    yield


_AsyncGenType = type(_agen())
_CODE_ATTR = {
    id(GeneratorType): ("gi_code", "generator"),
    id(CoroutineType): ("cr_code", "coroutine"),
    id(_AsyncGenType): ("ag_code", "async_generator"),
    id(FrameType): ("f_code", "frame"),
}

CODE_TYPES = (GeneratorType, CoroutineType, _AsyncGenType, FrameType)

# Why an object is stale, for the hint.
OLD_GENERATION, LEFTOVER, FAILED_RELOAD, OLD_MODULE = "old", "leftover", "failed", "old-module"


class Found:
    """One stale object."""

    __slots__ = ("carrier", "generation", "kind", "obj", "owner", "qualname", "reason", "tname")

    def __init__(
        self,
        obj: object,
        kind: str,
        owner: str,
        generation: int | None,
        qualname: str,
        tname: str,
        reason: str,
    ) -> None:
        self.obj = obj
        self.kind = kind
        self.owner = owner
        self.generation = generation
        self.qualname = qualname
        self.tname = tname
        self.reason = reason
        self.carrier: object | None = None  # the stale class whose dict defines this function


class Classifier:
    def __init__(self, recorder: Recorder | None) -> None:
        self.records: dict[str, ModuleRecord] = dict(recorder.records) if recorder else {}
        self.code_index = recorder.code_index() if recorder else {}
        self.class_index: dict[int, tuple[ModuleRecord, Generation]] = {}
        self.module_gen: dict[int, tuple[ModuleRecord, Generation]] = {}
        self.recorded_ns: dict[int, tuple[ModuleRecord, Generation, ModuleType]] = {}
        for rec in self.records.values():
            for gen in rec.generations:
                for i in gen.classes:
                    self.class_index.setdefault(i, (rec, gen))
                mod = gen.module() if gen.module is not None else None
                if mod is not None and id(mod) not in self.module_gen:
                    self.module_gen[id(mod)] = (rec, gen)
                    ns = safe.module_dict(mod)
                    if ns is not None:
                        self.recorded_ns[id(ns)] = (rec, gen, mod)
        self.current: dict[str, ModuleType] = {}
        self.current_ns: dict[int, str] = {}  # id(namespace dict) -> sys.modules key
        self.in_sys_modules: set[int] = set()
        for key, mod in list(dict.items(sys.modules)):
            self.in_sys_modules.add(id(mod))
            if issubclass(type(mod), ModuleType):
                ns = safe.module_dict(mod)
                if ns is not None:
                    self.current[key] = mod
                    self.current_ns.setdefault(id(ns), key)
        self._old_ns: dict[int, tuple[str, int | None] | None] = {}
        self._bound: dict[str, dict[int, list[str]]] = {}
        self._current_filenames: dict[str, tuple[str | None]] = {}
        self.found: dict[int, Found] = {}

    # -- helpers -------------------------------------------------------------------------------
    def namespace(self, name: str) -> dict[str, Any] | None:
        mod = self.current.get(name)
        return safe.module_dict(mod) if mod is not None else None

    def bound_names(self, name: str, obj: object) -> list[str]:
        table = self._bound.get(name)
        if table is None:
            table = {}
            ns = self.namespace(name)
            if ns is not None:
                for k, v in dict.items(ns):
                    table.setdefault(id(v), []).append(k)
            self._bound[name] = table
        return table.get(id(obj), [])

    def kept(self, rec: ModuleRecord, obj: object) -> bool:
        """The current generation binds ``obj`` on purpose (``try: X / except NameError``)."""
        cur = rec.current
        if cur.status == "failed":
            return False
        names = self.bound_names(rec.name, obj)
        if not names:
            return False
        if cur.stored is None:
            return True
        return any(n in cur.stored for n in names)

    def why(self, rec: ModuleRecord, obj: object) -> str:
        if self.bound_names(rec.name, obj):
            return FAILED_RELOAD if rec.current.status == "failed" else LEFTOVER
        return OLD_GENERATION

    def old_namespace(self, ns: object) -> tuple[str, int | None] | None:
        """(module name, generation) when ``ns`` is the dict of a module sys.modules dropped."""
        key = id(ns)
        if key in self._old_ns:
            return self._old_ns[key]
        result: tuple[str, int | None] | None = None
        if type(ns) is dict and key not in self.current_ns:
            hit = self.recorded_ns.get(key)
            if hit is not None:
                rec, gen, mod = hit
                if id(mod) not in self.in_sys_modules:
                    result = (rec.name, gen.number)
            else:
                name = dict.get(ns, "__name__")
                file = dict.get(ns, "__file__")
                if (
                    type(name) is str
                    and type(file) is str
                    and name in self.current
                    and safe.module_file(self.current[name]) == file
                ):
                    result = (name, None)
        self._old_ns[key] = result
        return result

    # -- kinds ---------------------------------------------------------------------------------
    def modules(self, objs: Iterable[object]) -> None:
        for mod in objs:
            if id(mod) in self.in_sys_modules:
                continue
            hit = self.module_gen.get(id(mod))
            if hit is not None and hit[1].module is not None and hit[1].module() is mod:
                rec, gen = hit
                self.found[id(mod)] = Found(
                    mod, "module", rec.name, gen.number, rec.name, "module", OLD_MODULE
                )
                continue
            name = safe.module_name(mod)
            file = safe.module_file(mod)
            if name is None or file is None or name not in self.current:
                continue
            if safe.module_file(self.current[name]) == file:
                self.found[id(mod)] = Found(mod, "module", name, None, name, "module", OLD_MODULE)

    def function(self, fn: FunctionType) -> None:
        code = fn.__code__
        if code.co_name == "__annotate__":
            return  # PEP 649 (3.14+): part of the function or class it annotates, not an entry
        hit = self.code_index.get(id(code))
        if hit is not None and hit[1].owns_code(code):
            rec, gen = hit
            if gen is rec.current or self.kept(rec, fn):
                return
            reason = self.why(rec, fn)
            if self.old_namespace(fn.__globals__) is not None:
                reason = OLD_MODULE
            self._add(
                fn, "function", rec.name, gen.number, safe.function_qualname(fn), "function", reason
            )
            return
        g = fn.__globals__
        owner = self.current_ns.get(id(g))
        if owner is None:
            old = self.old_namespace(g)
            if old is not None:
                self._add(
                    fn,
                    "function",
                    old[0],
                    old[1],
                    safe.function_qualname(fn),
                    "function",
                    OLD_MODULE,
                )
            return
        known = self.records.get(owner)
        if known is not None and known.current.complete:
            cur = known.current
            if cur.status != "finished" or not cur.filename:
                return
            if code.co_filename != cur.filename or self.kept(known, fn):
                return
            reason = self.why(known, fn)
        elif self.older_compilation(owner, g, fn):
            reason = OLD_GENERATION
        else:
            return
        self._add(
            fn,
            "function",
            owner,
            None,
            safe.function_qualname(fn),
            "function",
            reason,
        )

    def older_compilation(self, owner: str, ns: dict[str, Any], fn: FunctionType) -> bool:
        """Was ``code`` compiled from the module's file by an earlier execution than the one
        whose functions the namespace holds?  (No recorded generation to ask.)

        Each compilation has its own ``co_filename`` string object where CPython does not
        intern it (3.10-3.12): equal text but another object means another execution.
        """
        if not _FILENAMES_DISTINCT:
            return False
        current = self._current_filenames.get(owner)
        if current is None:
            current = self._current_filenames[owner] = _namespace_filename(ns)
        filename = fn.__code__.co_filename
        return (
            current[0] is not None
            and filename == current[0]
            and filename is not current[0]
            and not self.bound_names(owner, fn)  # a leftover name or a kept object: unsure
        )

    def code_object(self, obj: object) -> None:
        attr, tname = _CODE_ATTR[id(type(obj))]
        code = getattr(obj, attr, None)
        if type(code) is not CodeType:
            return
        hit = self.code_index.get(id(code))
        if hit is None or not hit[1].owns_code(code) or hit[1] is hit[0].current:
            return
        rec, gen = hit
        self._add(
            obj, "code", rec.name, gen.number, safe.code_qualname(code), tname, OLD_GENERATION
        )

    def classes(self, classes: Iterable[type]) -> None:
        """After ``function``: a class is stale when its generation or one of its methods is."""
        for cls in classes:
            hit = self.class_index.get(id(cls))
            if hit is not None and hit[1].owns_class(cls):
                rec, gen = hit
                if gen is not rec.current and self.kept(rec, cls):
                    self._release_methods(cls)
                elif gen is not rec.current:
                    f = self._add(
                        cls,
                        "class",
                        rec.name,
                        gen.number,
                        safe.class_qualname(cls),
                        safe.type_name(type(cls)),
                        self.why(rec, cls),
                    )
                    self._carry(cls, f)
                continue
            mod = safe.class_module(cls)
            if mod is None or (mod not in self.records and mod not in self.current):
                continue
            for fn in _methods(cls):
                m = self.found.get(id(fn))
                if m is None:
                    continue
                rec2 = self.records.get(m.owner)
                if rec2 is not None and self.kept(rec2, cls):
                    self._release_methods(cls)
                    break
                f = self._add(
                    cls,
                    "class",
                    m.owner,
                    m.generation,
                    safe.class_qualname(cls),
                    safe.type_name(type(cls)),
                    self.why(rec2, cls) if rec2 is not None else m.reason,
                )
                self._carry(cls, f)
                break

    def instances(self, objs: Iterable[object]) -> None:
        classes = {i: f for i, f in self.found.items() if f.kind == "class"}
        for obj in objs:
            if id(obj) in classes:
                continue  # an old class made by an old metaclass stays a class
            cls = classes[id(type(obj))]
            self._add(
                obj,
                "instance",
                cls.owner,
                cls.generation,
                cls.qualname,
                cls.qualname,
                OLD_GENERATION,
            )

    # -- internals -----------------------------------------------------------------------------
    def _add(
        self,
        obj: object,
        kind: str,
        owner: str,
        generation: int | None,
        qualname: str,
        tname: str,
        reason: str,
    ) -> Found:
        f = Found(obj, kind, owner, generation, qualname, tname, reason)
        self.found[id(obj)] = f
        return f

    def _release_methods(self, cls: type) -> None:
        """A class the current generation keeps on purpose keeps its methods current too."""
        for fn in _methods(cls):
            m = self.found.get(id(fn))
            if m is not None and m.kind == "function":
                del self.found[id(fn)]

    def _carry(self, cls: type, found: Found) -> None:
        for fn in _methods(cls):
            m = self.found.get(id(fn))
            if m is not None and m.kind == "function":
                m.carrier = cls


def _filenames_distinct() -> bool:
    """Does each compilation get its own ``co_filename`` object (not interned)?"""
    first, second = (f"/reloadscope/probe-{n}.py"[:-3] + ".py" for n in (1, 1))
    assert first is not second
    return compile("", first, "exec").co_filename is not compile("", second, "exec").co_filename


_FILENAMES_DISTINCT = _filenames_distinct()


def _namespace_filename(ns: dict[str, Any]) -> tuple[str | None]:
    """The ``co_filename`` object most functions of this namespace share: the current
    compilation's (None when there is no clear majority)."""
    file = dict.get(ns, "__file__")
    counts: dict[int, list[Any]] = {}
    for v in list(dict.values(ns)):
        if type(v) is FunctionType and v.__globals__ is ns:
            fname = v.__code__.co_filename
            if type(file) is str and fname == file:
                counts.setdefault(id(fname), [fname, 0])[1] += 1
    ranked = sorted(counts.values(), key=lambda c: -c[1])
    if not ranked or (len(ranked) > 1 and ranked[0][1] <= 2 * ranked[1][1]):
        return (None,)
    return (ranked[0][0],)


def _methods(cls: type) -> list[FunctionType]:
    out: list[FunctionType] = []
    for v in dict.values(safe.class_dict(cls)):
        t = type(v)
        if t is staticmethod or t is classmethod:
            v = v.__func__
            t = type(v)
        elif t is property:
            out.extend(f for f in (v.fget, v.fset, v.fdel) if type(f) is FunctionType)
            continue
        if t is FunctionType:
            out.append(v)
    return out
