"""Deciding which live objects are stale, and which generation made them.

The rules of evidence live in ``evidence`` (one function per kind); this walks the objects of
one heap pass through them in dependency order: module objects first (their dicts tell the
functions of old modules), then functions and running code, then classes (stale when made by
an old generation, when a method is stale, or when shadowed), then instances of stale classes.
Without evidence nothing is reported: guessing by name floods a plain process with false
positives.
"""

from __future__ import annotations

import os
from itertools import chain, compress, count, repeat
from operator import and_, attrgetter, is_, is_not, not_, or_
from types import CodeType, CoroutineType, FrameType, FunctionType, GeneratorType, ModuleType

from . import evidence as ev
from . import native, safe
from .evidence import Evidence
from .recorder import Generation, ModuleRecord, Recorder

TYPE_CHECKING = False  # typing is not imported at run time: loading must stay cheap
# reloadscope's own package (the agent's parent), wherever it was loaded from: an earlier
# agent's modules that the program dropped from sys.modules (Streamlit evicts every module on
# PYTHONPATH when a watched file changes) were replaced by the next agent's, not re-run by it.
_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Any


async def _agen() -> Any:  # pragma: no cover - only its type is used
    yield


_AsyncGenType = type(_agen())
_TYPE_DICT_OF = type.__dict__["__dict__"].__get__
_NOT_A_NAME = "\0 no module name"  # stands for a __module__ that is no str
_NO_OWNER = (None, None)
_ALL, _NONE = object(), object()  # the rules of ``Classifier.functions_worth_judging``
_CODE_OF = attrgetter("__code__")  # on exact functions only: C getters, no user code
_GLOBALS_OF = attrgetter("__globals__")
_WRAPPERS = {id(staticmethod), id(classmethod), id(property)}
_CODE_ATTR = {
    id(GeneratorType): ("gi_code", "generator"),
    id(CoroutineType): ("cr_code", "coroutine"),
    id(_AsyncGenType): ("ag_code", "async_generator"),
    id(FrameType): ("f_code", "frame"),
}

_FRAME_ATTR = {id(CoroutineType): "cr_frame", id(_AsyncGenType): "ag_frame"}

CODE_TYPES = (GeneratorType, CoroutineType, _AsyncGenType, FrameType)

# Why an object is stale, for the hint.
OLD_GENERATION, LEFTOVER, FAILED_RELOAD, OLD_MODULE = "old", "leftover", "failed", "old-module"


class Found:
    """One stale object."""

    __slots__ = (
        "carrier",
        "evidence",
        "generation",
        "kind",
        "obj",
        "owner",
        "qualname",
        "reason",
        "tname",
    )

    def __init__(
        self,
        obj: object,
        kind: str,
        owner: str,
        generation: int | None,
        qualname: str,
        tname: str,
        reason: str,
        evidence: Evidence,
    ) -> None:
        self.obj = obj
        self.kind = kind
        self.owner = owner
        self.generation = generation
        self.qualname = qualname
        self.tname = tname
        self.reason = reason
        self.evidence = evidence
        self.carrier: object | None = None  # the stale class whose dict defines this function


class Classifier:
    def __init__(self, recorder: Recorder | None) -> None:
        self.records: dict[str, ModuleRecord] = dict(recorder.records) if recorder else {}
        self.code_index = recorder.code_index() if recorder else {}
        self.class_index: dict[int, tuple[ModuleRecord, Generation]] = {}
        self.module_gen: dict[int, tuple[ModuleRecord, Generation]] = {}
        for rec in self.records.values():
            for gen in rec.generations:
                for i in gen.classes:
                    self.class_index.setdefault(i, (rec, gen))
                mod = gen.module() if gen.module is not None else None
                if mod is not None and id(mod) not in self.module_gen:
                    self.module_gen[id(mod)] = (rec, gen)
        # What scans keep for the next one is kept while recording (the recorder's removal
        # drops it: ``evidence.forget_index``).
        modules = ev.current_modules(keep=recorder is not None)
        self.in_sys_modules: set[int] = modules.ids
        self.current: dict[str, ModuleType] = modules.current
        self.sources = ev.Sources(modules)
        self.sources.keep = recorder is not None
        # id(namespace dict) -> (sys.modules key, its first when under several; the dict)
        self.current_ns = modules.by_ns
        del modules
        self.sources.recorded = self.code_index.keys()
        # id(dict of a stale module object, or of an earlier execution) -> (module, generation)
        self.old_ns: dict[int, tuple[str, int | None]] = {}
        self._orphans: dict[int, tuple[str, int | None] | None] = {}
        self._bound: dict[str, dict[int, list[str]]] = {}
        self.found: dict[int, Found] = {}
        self._library: dict[int, bool] = {}  # id(namespace) -> a current library module's
        # module -> names its namespace keeps from an earlier execution, found by evidence
        self.leftover_names: dict[str, set[str]] = {}
        self.classes_judged = 0  # classes ``classes`` looked at one by one
        # module -> names of functions its file no longer defines, not known to be left over
        self.undecided_names: dict[str, set[str]] = {}

    # -- helpers -------------------------------------------------------------------------------
    def _library_ns(self, ns: object) -> bool:
        """Whether ``ns`` is the namespace of a current module of a library (or the stdlib)."""
        known = self._library.get(id(ns))
        if known is None:
            m = self.sources.of_globals(ns)
            known = self._library[id(ns)] = m is not None and m.library
        return known

    def recorded_old_classes(self) -> list[type]:
        """The live classes recording saw a generation other than the current one make."""
        out: list[type] = []
        for rec in self.records.values():
            for gen in rec.generations:
                if gen is not rec.current:
                    live = [r() for r in list(gen.classes.values())]
                    out.extend(c for c in live if c is not None)
        return out

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

    def why(self, name: str, obj: object) -> str:
        if self.bound_names(name, obj):
            rec = self.records.get(name)
            failed = rec is not None and rec.current.status == "failed"
            return FAILED_RELOAD if failed else LEFTOVER
        return OLD_GENERATION

    def old_namespace(self, ns: object) -> tuple[str, int | None] | None:
        """(module, generation) when ``ns`` is the dict of an earlier execution: of a stale
        module object, or one whose module object is gone but whose functions live on."""
        hit = self.old_ns.get(id(ns))
        if hit is not None or type(ns) is not dict or id(ns) in self.current_ns:
            return hit
        if id(ns) in self._orphans:
            return self._orphans[id(ns)]
        result = None
        name, file = dict.get(ns, "__name__"), dict.get(ns, "__file__")
        if (
            type(name) is str
            and type(file) is str
            and name in self.current
            and safe.module_file(self.current[name]) == file
            and not file.startswith(_OWN_DIR)
            and ev.old_namespace(ns, self.sources)
        ):
            result = (name, None)
        self._orphans[id(ns)] = result
        return result

    def judge(
        self, code: CodeType, ns: object, obj: object
    ) -> tuple[str, int | None, str, Evidence] | None:
        """(owner, generation, reason, evidence) when ``code`` running with globals ``ns`` was
        made by an earlier execution of its module (``obj`` is what runs it)."""
        hit = self.code_index.get(id(code))
        number = None
        if hit is not None and hit[1].owns_code(code):
            rec, gen = hit
            number = gen.number
            if gen is not rec.current:
                if self.kept(rec, obj):
                    return None
                old = self.old_ns.get(id(ns))
                reason = OLD_MODULE if old is not None else self.why(rec.name, obj)
                return rec.name, gen.number, reason, ev.recorded(gen.number)
            # Made by the current generation; a tool may have patched the module in place
            # since (IPython's deduperreload, jurigged), leaving this running the old code.
        old = self.old_namespace(ns)
        if old is not None:
            found = ev.Evidence(
                ev.REPLACED_MODULE,
                f"made by an earlier execution of {old[0]} whose module object a re-import "
                "replaced",
            )
            return old[0], old[1], OLD_MODULE, found
        owner = self.current_ns.get(id(ns), _NO_OWNER)[0]
        if owner is None:
            copied = ev.source_in_copy(code, ns, self.sources)
            return None if copied is None else (copied[0], number, OLD_MODULE, copied[1])
        judged = (
            ev.source(code, ns, self.sources)
            or ev.older_compilation(code, ns, self.sources)
            or ev.unnamed(code, ns, self.sources)
        )
        if judged is None:
            return None
        return owner, number, self.why(owner, obj), judged

    # -- kinds ---------------------------------------------------------------------------------
    def modules(self, objs: Iterable[object]) -> None:
        """Old module objects: first, so their dicts tell the functions they made."""
        objs = list(objs)
        # (Those in sys.modules are passed over in C: nearly all of them.)
        for mod in compress(objs, map(not_, map(self.in_sys_modules.__contains__, map(id, objs)))):
            name = safe.module_name(mod)
            current = self.current.get(name) if name is not None else None
            hit = self.module_gen.get(id(mod))
            if hit is not None and hit[1].module is not None and hit[1].module() is mod:
                rec, gen = hit
                if current is not None and ev.replaced_module(mod, current) is None:  # type: ignore[arg-type]
                    continue  # replaced by a copy of itself: nothing ran again
                found = ev.recorded(gen.number)
                self._add(
                    mod, "module", rec.name, gen.number, rec.name, "module", OLD_MODULE, found
                )
            else:
                file = safe.module_file(mod)
                if name is None or current is None or file is None or file.startswith(_OWN_DIR):
                    continue
                if safe.module_file(current) != file:
                    continue
                replaced = ev.replaced_module(mod, current)  # type: ignore[arg-type]
                if replaced is None:
                    continue
                self._add(mod, "module", name, None, name, "module", OLD_MODULE, replaced)
            ns = safe.module_dict(mod)
            f = self.found[id(mod)]
            if ns is not None:
                self.old_ns[id(ns)] = (f.owner, f.generation)

    def function(self, fn: FunctionType) -> None:
        code = fn.__code__
        if code.co_name == "__annotate__":
            return  # PEP 649 (3.14+): part of the function or class it annotates, not an entry
        ns = fn.__globals__
        # A current library module's function: no evidence but an older compilation of the
        # same place can apply (what ``judge`` would find, quicker: a process holds thousands).
        library = self._library_ns(ns) and id(code) not in self.code_index
        if library and not self.sources.recompiled(code):
            return
        hit = self.judge(code, ns, fn)
        if hit is not None:
            owner, gen, reason, found = hit
            qualname = safe.function_qualname(fn)
            self._add(fn, "function", owner, gen, qualname, "function", reason, found)

    def functions_worth_judging(self, functions: list[FunctionType]) -> list[FunctionType]:
        """The functions ``function`` may find stale, in order: the others are passed over in
        bulk (in C, but for one step per namespace), with the verdict ``judge`` would reach
        for each of them.  Code recording saw made is always judged.  Otherwise, what can
        apply depends on the namespace the function runs in: in a current module's, not a
        library's, anything; in a current library module's, only an older compilation, which
        needs code compiled from the module's own file; in a namespace of no current module,
        only an old namespace (``old_namespace``) or a copy (``ev.source_in_copy``), both of
        which need a dict whose ``__name__`` names a current module (a copy also needs code
        compiled from that module's file, not a library's).  After ``modules``.
        (Must change with ``judge``: ``Scan(judge_all=True)`` judges every function, the
        reference the tests compare with.)"""
        if not functions:
            return functions
        globs = list(map(_GLOBALS_OF, functions))
        ids = list(map(id, globs))
        # Most namespaces are dicts of no module (namedtuple's, dataclasses'): one each, whose
        # rule is _NONE unless it is a current or old module's, or its __name__ (a str: no
        # other key is looked up) is a current module's; told in C.
        distinct = dict(zip(ids, globs))
        del globs
        nids, nss = list(distinct), list(distinct.values())
        n = len(nids)
        known = list(
            map(or_, map(self.current_ns.__contains__, nids), map(self.old_ns.__contains__, nids))
        )
        others = map(and_, map(not_, known), map(is_, map(type, nss), repeat(dict)))
        at = list(compress(range(n), others))
        names = list(map(dict.get, map(nss.__getitem__, at), repeat("__name__")))
        is_str = list(map(is_, map(type, names), repeat(str)))
        in_current = map(self.current.__contains__, compress(names, is_str))
        named = compress(compress(at, is_str), in_current)
        rule_of: dict[int, object] = dict.fromkeys(nids, _NONE)
        for k in chain(compress(range(n), known), named):
            rule_of[nids[k]] = self._namespace_rule(nss[k])
        del distinct, nss, known, at, names, is_str
        if set(map(id, rule_of.values())) == {id(_ALL)}:
            return functions  # (every namespace's functions are judged)
        rules = list(map(rule_of.__getitem__, ids))
        codes = list(map(_CODE_OF, functions))
        recorded = map(self.code_index.__contains__, map(id, codes))
        keep = [
            r is _ALL or (r is not _NONE and code.co_filename == r) or rec
            for r, code, rec in zip(rules, codes, recorded)
        ]
        return list(compress(functions, keep))

    def _namespace_rule(self, ns: object) -> object:
        """For ``functions_worth_judging``: ``_ALL`` (judge each function that runs in
        ``ns``), ``_NONE`` (only recorded code) or the file name the code must have.  (What
        ``ModuleSource`` says of a module, read from its namespace: ``library`` is
        ``Sources.lib_ns``'s, ``file`` its ``__file__`` when a str.)"""
        library = self.sources.lib_ns
        if id(ns) in self.current_ns:
            if id(ns) not in library:
                return _ALL
            file = dict.get(ns, "__file__")  # type: ignore[call-overload]
            return file if type(file) is str else _NONE
        if self.old_namespace(ns) is not None:
            return _ALL  # (what ``judge`` finds of every function there)
        if type(ns) is not dict:
            return _NONE
        # A copy: of a current module, not a library's, with that module's file name.
        name, file = dict.get(ns, "__name__"), dict.get(ns, "__file__")
        of = self.sources.by_name.get(name) if type(name) is str else None
        if of is None or id(of) in library or of is ns:
            return _NONE
        if type(file) is not str:
            return _ALL  # (compared by ``ev.source_in_copy`` itself)
        own = dict.get(of, "__file__")
        return own if type(own) is str and own == file else _NONE

    def leftovers(self) -> None:
        """After ``function`` and ``code_object``: in each module shown to have run again, the
        functions still bound under names its file no longer defines (``ev.leftover_name``).
        Recording finds these by itself; this is for what ran before it."""
        proof = (ev.SOURCE, ev.OLDER_COMPILATION, ev.RECORDED)
        ran_again = {f.owner for f in list(self.found.values()) if f.evidence.kind in proof}
        for owner, m in self.sources.edited():
            ns = self.namespace(owner)
            if ns is None or not m.unchanged():
                continue  # the file changed since it last ran: nothing can be told
            for k, v in list(dict.items(ns)):
                if type(v) is not FunctionType or type(k) is not str or id(v) in self.found:
                    continue
                code = v.__code__
                if not m.own(code) or m.defines(code):
                    continue
                if owner not in ran_again:
                    # Deleted from the file since the module last ran, or left by a reload:
                    # the same namespace and file either way.  Recording would tell.
                    self.undecided_names.setdefault(owner, set()).add(k)
                    continue
                qualname = safe.function_qualname(v)
                found = ev.leftover_name(owner, k)
                self._add(v, "function", owner, None, qualname, "function", LEFTOVER, found)
                self.leftover_names.setdefault(owner, set()).add(k)

    def code_object(self, obj: object) -> None:
        attr, tname = _CODE_ATTR[id(type(obj))]
        code = getattr(obj, attr, None)
        if type(code) is not CodeType:
            return
        ns = _globals_of(obj)
        judged: tuple[str, int | None, str, Evidence] | None
        if ns is None:
            hit = self.code_index.get(id(code))
            if hit is None or not hit[1].owns_code(code) or hit[1] is hit[0].current:
                return
            rec, gen = hit
            judged = (rec.name, gen.number, OLD_GENERATION, ev.recorded(gen.number))
        else:
            judged = self.judge(code, ns, obj)
        if judged is None:
            return
        owner, number, _, found = judged
        qualname = safe.code_qualname(code)
        self._add(obj, "code", owner, number, qualname, tname, OLD_GENERATION, found)

    def classes(self, classes: list[type], wrappers: list[object] | None = None) -> None:
        """After ``function``: a class is stale when its generation or one of its methods is,
        or when its module now binds its name to a class of another execution."""
        classes = self._worth_judging(classes, wrappers)
        self.classes_judged = len(classes)
        for cls in classes:
            hit = self.class_index.get(id(cls))
            if hit is not None and hit[1].owns_class(cls):
                rec, gen = hit
                if gen is rec.current:
                    continue
                if self.kept(rec, cls):
                    self._release_methods(cls)
                    continue
                found = ev.recorded(gen.number)
                reason = self.why(rec.name, cls)
                self._class(cls, rec.name, gen.number, reason, found)
                continue
            mod = safe.class_module(cls)
            if mod is None or (mod not in self.records and mod not in self.current):
                continue
            stale_method = None
            if self.found:  # no stale function at all: no class has a stale method
                # Only a method its own body defined: a class attribute that holds another
                # module's old function (``class H: cb = plug.cb``) makes the attribute a
                # holder of a stale object, not the class an old one.
                own = safe.class_qualname(cls) + "."
                methods = map(self.found.get, map(id, _methods(cls)))
                stale_method = next(
                    (
                        m
                        for m in methods
                        if m is not None and m.owner == mod and m.qualname.startswith(own)
                    ),
                    None,
                )
            if stale_method is not None:
                rec2 = self.records.get(stale_method.owner)
                if rec2 is not None and self.kept(rec2, cls):
                    self._release_methods(cls)
                    continue
                found = ev.made_by_stale(
                    f"its method {stale_method.qualname} is stale: {stale_method.evidence.text}"
                )
                reason = self.why(stale_method.owner, cls)
                self._class(cls, stale_method.owner, stale_method.generation, reason, found)
                continue
            shadowed = ev.shadowed_class(cls, self.sources)
            if shadowed is not None:
                self._class(cls, mod, None, OLD_GENERATION, shadowed)

    def _wrapping_stale(self, wrappers: list[object]) -> bool:
        """Does one of ``wrappers`` (every static and class method and property the scan
        picked) hold a stale object?  (Rare: the Python code then tells which classes.)"""
        found = self.found.keys()
        return bool(found and wrappers) and not found.isdisjoint(map(id, safe.referents(*wrappers)))

    def _worth_judging(self, classes: list[type], wrappers: list[object] | None) -> list[type]:
        """The classes ``classes`` must look at one by one, in C: a class recording did not
        see made, whose module is a current library module's (never compared with its
        source), is stale only through a stale method, so only a class whose dict holds a
        stale object (or a static or class method or property of one) needs looking at.
        ``wrappers``: every static and class method and property the heap holds (the native
        helper's pick lists them), else None."""
        if not classes:
            return classes
        helper = native.get()
        if helper is not None and wrappers is not None and not self._wrapping_stale(wrappers):
            # The same mask, by the native helper (which reads each class's dict in place).
            lib = self.sources.library_names()
            found = self.found.keys()
            mask = helper.classes_to_judge(classes, lib, self.class_index.keys(), found)
            if mask is not None and 2 not in mask:
                return list(compress(classes, mask))
        try:
            dicts = safe.referents(*map(_TYPE_DICT_OF, classes))
        except Exception:
            return classes
        # A class's mappingproxy refers to exactly its dict: one each, in order.
        if len(dicts) != len(classes):
            return classes
        exact = list(map(is_, map(type, dicts), repeat(dict)))
        plain: list[dict[str, Any]] = list(compress(dicts, exact))  # type: ignore[arg-type]
        holds: Iterable[bool] = repeat(False)
        if self.found:
            holds = self._holding_stale(plain)  # type: ignore[assignment]
            if holds is None:
                return classes
        # (A class whose namespace is no exact dict, ctypes' on 3.11, is judged as before.)
        # Kept: holding a stale object, recorded, or of a module (a str ``__module__``) that
        # is no current library module; in C (thousands of classes).  Only str names are
        # looked up: another object's __hash__ or __eq__ is user code.
        modules = list(map(dict.get, plain, repeat("__module__")))
        for i in compress(count(), map(is_not, map(type, modules), repeat(str))):
            modules[i] = _NOT_A_NAME  # (rare)
        lib = self.sources.library_names()
        lib.add(_NOT_A_NAME)
        recorded = map(self.class_index.__contains__, map(id, compress(classes, exact)))
        kept = map(or_, map(or_, holds, recorded), map(not_, map(lib.__contains__, modules)))
        if len(plain) == len(classes):
            return list(compress(classes, kept))
        # The few classes whose dict is no exact dict are all judged: their places go back
        # into the mask, in order (no step per class).
        mask = list(kept)
        for i in compress(count(), map(not_, exact)):
            mask.insert(i, True)
        return list(compress(classes, mask))

    def _holding_stale(self, dicts: list[dict[str, Any]]) -> Iterator[bool] | None:
        """For each class dict, whether it holds a stale object; None when a static or class
        method or a property in one holds one (each class is then judged as before)."""
        found = self.found.keys()
        values = safe.referents(*dicts)
        wrapped = list(compress(values, map(_WRAPPERS.__contains__, map(id, map(type, values)))))
        if wrapped and not found.isdisjoint(map(id, safe.referents(*wrapped))):
            return None
        if found.isdisjoint(map(id, values)):
            return repeat(False)
        return iter([not found.isdisjoint(map(id, dict.values(d))) for d in dicts])

    def instances(self, objs: Iterable[object]) -> None:
        classes = {i: f for i, f in self.found.items() if f.kind == "class"}
        said: dict[int, Evidence] = {}  # one per class, shared by its instances
        for obj in objs:
            if id(obj) in classes:
                continue  # an old class made by an old metaclass stays a class
            cls = classes[id(type(obj))]
            found = said.get(id(cls))
            if found is None:
                found = said[id(cls)] = instance_evidence(cls)
            self.found[id(obj)] = instance_finding(obj, cls, found)

    def blind_spots(self) -> list[str]:
        """Sentences naming what this classification could not judge."""
        out = []
        for name, n in sorted(self.sources.unjudged.items()):
            out.append(
                f"{name}: its file changed on disk after it last ran, so {n} object"
                f"{'s' if n != 1 else ''} its code made could not be compared with it"
            )
        for name, n in sorted(self.sources.no_source.items()):
            out.append(
                f"{name}: no readable source, so {n} object{'s' if n != 1 else ''} its code "
                "made could not be compared with it"
            )
        for name, n in sorted(self.sources.elsewhere.items()):
            out.append(
                f"{name}: {n} function{'s' if n != 1 else ''} or code object"
                f"{'s' if n != 1 else ''} with its globals {'were' if n != 1 else 'was'} "
                "compiled from text of no file, so could not be compared with it"
            )
        for name, _n in sorted(self.sources.rewritten.items()):
            out.append(
                f"{name}: its top-level code running now is not what its file compiles to (the "
                "file changed since it started, or a runner or import hook rewrote it), so it "
                "was not judged"
            )
        for name, names in sorted(self.undecided_names.items()):
            listed = ", ".join(sorted(names)[:5]) + (", ..." if len(names) > 5 else "")
            out.append(
                f"{name}: binds {len(names)} function{'s' if len(names) != 1 else ''} its file "
                f"no longer defines ({listed}): left by a reload, or deleted since it last ran; "
                "nothing else shows it ran again (recording from the start would tell)"
            )
        return out

    # -- internals -----------------------------------------------------------------------------
    def _class(
        self, cls: type, owner: str, generation: int | None, reason: str, found: Evidence
    ) -> None:
        qualname, meta = safe.class_qualname(cls), safe.type_name(type(cls))
        f = self._add(cls, "class", owner, generation, qualname, meta, reason, found)
        self._carry(cls, f)

    def _add(
        self,
        obj: object,
        kind: str,
        owner: str,
        generation: int | None,
        qualname: str,
        tname: str,
        reason: str,
        found: Evidence,
    ) -> Found:
        f = Found(obj, kind, owner, generation, qualname, tname, reason, found)
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


def instance_evidence(cls: Found) -> Evidence:
    """Why an instance of the stale class ``cls`` is stale."""
    return ev.made_by_stale(f"an instance of the stale class {cls.qualname}")


def instance_finding(obj: object, cls: Found, found: Evidence) -> Found:
    """The finding for ``obj``, an instance of the stale class ``cls``."""
    return Found(
        obj,
        "instance",
        cls.owner,
        cls.generation,
        cls.qualname,
        cls.qualname,
        OLD_GENERATION,
        found,
    )


def _globals_of(obj: object) -> dict[str, Any] | None:
    """The globals a generator, coroutine or frame runs with (None once it finished)."""
    t = type(obj)
    frame = obj if t is FrameType else getattr(obj, _FRAME_ATTR.get(id(t), "gi_frame"), None)
    if type(frame) is not FrameType:
        return None
    g = frame.f_globals
    return g if type(g) is dict else None


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
