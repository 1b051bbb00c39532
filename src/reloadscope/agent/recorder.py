"""Recording reload generations.

A finder at ``sys.meta_path[0]`` sees every ``importlib.reload`` (it is called with ``target``
set to the module) and every import.  It asks the finders after it for the spec, and for the
imports it cares about wraps the loader once: the wrapper puts the real loader back, runs the
module's code, and records which code objects that execution created and whether it raised.

Everything stored about user objects is a weak reference (modules, classes, code objects).
The finder runs under the import lock: it records, it never scans.
"""

from __future__ import annotations

import importlib._bootstrap
import importlib._bootstrap_external
import itertools
import os
import sys
import threading
import time
import weakref
from importlib.machinery import ModuleSpec
from types import CodeType, FunctionType, ModuleType

from . import safe
from .evidence import library_prefixes, namespace_functions

TYPE_CHECKING = False  # typing is not imported at run time: loading must stay cheap
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

# Private importlib internals (stable across 3.10-3.14): find_spec, _exec's frame removal.
_bootstrap: Any = importlib._bootstrap
_bootstrap_external: Any = importlib._bootstrap_external

MAX_SOURCE_BYTES = 1 << 20
MAX_TEXTS_PER_MODULE = 50
# How many generation events (begun, finished) a waiting client can still be told about.
MAX_EVENTS = 256

_AGENT_DIR = os.path.dirname(os.path.abspath(__file__))
_IMPORTLIB_DIR = os.path.dirname(os.path.abspath(_bootstrap_external.__file__ or ""))
_STD_EXEC_MODULE = _bootstrap_external._LoaderBasics.exec_module


class Held:
    """A weak reference to a class that reloaders cannot rewrite.  Some reloaders point every
    weak reference to an old class at the new one, finding them with ``weakref.getweakrefs``
    and replacing them in the dicts and lists ``gc.get_referrers`` shows; the holder of this
    one is no dict or list, so the recording keeps the old class it must report."""

    __slots__ = ("_ref",)

    def __init__(self, cls: type) -> None:
        self._ref = weakref.ref(cls)

    def __call__(self) -> type | None:
        return self._ref()


class Generation:
    """One execution of a module's code."""

    __slots__ = (
        "carried",
        "classes",
        "codes",
        "complete",
        "error",
        "filename",
        "kind",
        "module",
        "number",
        "sha256",
        "started_at",
        "status",
        "stored",
        "text",
        "trigger",
    )

    def __init__(self, number: int, kind: str, trigger: str | None) -> None:
        self.number = number
        self.kind = kind  # "import", "arrival", "reload", "reimport"
        self.trigger = trigger
        self.started_at = time.time()
        self.status = "running"  # then "finished", "failed" or "unknown"
        self.error: str | None = None
        self.sha256: str | None = None
        self.text: str | None = None
        self.filename: str | None = None
        # id(code) -> weakref(code) for every code object this execution created.
        self.codes: dict[int, weakref.ref[CodeType]] = {}
        # True when ``codes`` holds every code object of the execution (we ran it).
        self.complete = False
        # id(class) -> weak reference to the class, for classes first seen in this generation.
        self.classes: dict[int, Held] = {}
        # Names the module code stores (None: unknown), names the execution did not rebind.
        self.stored: frozenset[str] | None = None
        self.carried: frozenset[str] = frozenset()
        self.module: weakref.ref[ModuleType] | None = None

    def owns_code(self, code: object) -> bool:
        ref = self.codes.get(id(code))
        return ref is not None and ref() is code

    def owns_class(self, cls: object) -> bool:
        ref = self.classes.get(id(cls))
        return ref is not None and ref() is cls


class ModuleRecord:
    """Every generation recording saw of one module name."""

    __slots__ = ("file", "generations", "name", "warnings")

    def __init__(self, name: str) -> None:
        self.name = name
        self.file: str | None = None
        self.generations: list[Generation] = []
        self.warnings: list[str] = []

    @property
    def current(self) -> Generation:
        return self.generations[-1]

    def new_generation(self, kind: str, trigger: str | None) -> Generation:
        gen = Generation(len(self.generations), kind, trigger)
        self.generations.append(gen)
        return gen


def _walk_code(code: CodeType, into: dict[int, weakref.ref[CodeType]]) -> None:
    stack = [code]
    while stack:
        co = stack.pop()
        if id(co) in into:
            continue
        into[id(co)] = weakref.ref(co)
        for const in co.co_consts:
            if type(const) is CodeType:
                stack.append(const)


_STORE_OPS = frozenset({"STORE_NAME", "STORE_GLOBAL", "DELETE_NAME", "DELETE_GLOBAL"})


def _stored_names(code: CodeType) -> frozenset[str] | None:
    """Names the module-level code binds (None when it star-imports: anything may be bound)."""
    import dis

    names: set[str] = set()
    stack = [(code, True)]
    while stack:
        co, top = stack.pop()
        for ins in dis.get_instructions(co):
            if top and ins.opname == "IMPORT_STAR":
                return None
            if ins.opname in _STORE_OPS and (top or ins.opname.endswith("GLOBAL")):
                names.add(ins.argval)
        for const in co.co_consts:
            if type(const) is CodeType:
                stack.append((const, False))
    return frozenset(names)


def _namespace_classes(namespace: dict[str, Any]) -> Iterator[type]:
    """Classes of this module bound in ``namespace``, nested classes included."""
    name = namespace.get("__name__")
    seen: set[int] = set()
    stack = [v for v in dict.values(namespace) if safe.is_class(v)]
    while stack:
        cls = stack.pop()
        if id(cls) in seen or safe.class_module(cls) != name:
            continue
        seen.add(id(cls))
        yield cls
        stack.extend(v for v in dict.values(safe.class_dict(cls)) if safe.is_class(v))


_SERIALS = itertools.count(1)


class Recorder:
    """Holds the module records; installs and removes the finder."""

    def __init__(self) -> None:
        self.records: dict[str, ModuleRecord] = {}
        self.installed_at = time.time()
        self.lock = threading.RLock()
        self.finder = _ReloadFinder(self)
        self._user_prefixes = library_prefixes()
        self._user_modules: dict[str, tuple[int, bool]] = {}  # name -> (id(module), is user's)
        # The program's own modules imported before recording began (their earlier
        # generations, if any, were not seen).
        main = dict.get(sys.modules, "__main__")
        self.preloaded: list[str] = sorted(
            k
            for k, m in list(dict.items(sys.modules))
            # __main__ under any key: multiprocessing also files it as __mp_main__.
            if type(k) is str and m is not main and self.is_user_file(safe.module_file(m))
        )
        self._preloaded = frozenset(self.preloaded)
        # How many times a module's code ran again since recording began (a reload, a
        # re-import after ``del sys.modules[name]``): reading it tells a caller, without a
        # scan, whether anything can have become stale since it last looked (IPython's
        # post_run_cell, the pytest plugin after each test).
        self.reloads = 0
        # Modules not the program's own (a library's, the standard library's) the import
        # system loaded since recording began: a scan keeps what it learnt about libraries'
        # code only while this stays the same (``Sources.index``).
        self.library_loads = 0
        self.serial = next(_SERIALS)
        # Generation events for clients that follow the process (``wait_events``): each
        # generation that begins or ends adds (sequence, module, number, status, kind, reload),
        # strings and numbers only, and wakes the waiters.  Its own plain lock, never held
        # while user code runs, and taken with a time limit (a fork may copy it held).
        self.sequence = 0
        self.events: list[tuple[int, str, int, str, str, bool]] = []
        self.changed = threading.Condition(threading.Lock())

    # -- installation -------------------------------------------------------------------------
    def install(self) -> None:
        if not any(f is self.finder for f in sys.meta_path):
            sys.meta_path.insert(0, self.finder)

    def after_fork(self) -> None:
        """In a forked child: fresh locks (a thread of the parent that held one is not here to
        release it)."""
        self.lock = threading.RLock()
        self.changed = threading.Condition(threading.Lock())

    def uninstall(self) -> None:
        self.finder.active = False
        sys.meta_path[:] = [f for f in sys.meta_path if f is not self.finder]
        with self.changed:
            self.changed.notify_all()  # a waiter looks again, and sees recording has stopped

    # -- queries used by the scanner ----------------------------------------------------------
    def generation_of_code(self, code: object) -> tuple[ModuleRecord, Generation] | None:
        for rec in self.records.values():
            for gen in rec.generations:
                if gen.owns_code(code):
                    return rec, gen
        return None

    def code_index(self) -> dict[int, tuple[ModuleRecord, Generation]]:
        """id(code) -> (record, generation) for live code objects; prunes dead entries."""
        index: dict[int, tuple[ModuleRecord, Generation]] = {}
        with self.lock:
            for rec in self.records.values():
                for gen in rec.generations:
                    dead = [k for k, r in gen.codes.items() if r() is None]
                    for k in dead:
                        del gen.codes[k]
                    for k in gen.codes:
                        index[k] = (rec, gen)
                    dead = [k for k, r in gen.classes.items() if r() is None]
                    for k in dead:
                        del gen.classes[k]
        return index

    def code_state(self) -> dict[str, int]:
        """Which code the user's modules run now: module name -> a number that changes when a
        function bound in the module (at module level, in its classes, as a static or class
        method or property) is rebound, removed or given another ``__code__``, or a class
        there is replaced.

        In-place patchers (IPython 9's deduperreload, jurigged) import nothing, so the finder
        never sees them: two calls compared with ``patched_modules`` do.  Only modules whose
        file is the user's (not the standard library's or site-packages'), as the patchers
        themselves, and not ``__main__`` (an interactive shell's namespace: defining a function
        there is no reload).  Reads ids only, runs no user code, never raises (``{}`` then)."""
        try:
            return self._code_state()
        except Exception:
            return {}

    def _code_state(self) -> dict[str, int]:
        state: dict[str, int] = {}
        cache = self._user_modules
        modules = list(dict.items(sys.modules))
        if len(cache) > 2 * len(modules) + 100:
            cache.clear()
        for name, module in modules:
            if type(name) is str and name != "__main__" and type(module) is ModuleType:
                known = cache.get(name)
                if known is None or known[0] != id(module):
                    known = cache[name] = (id(module), self.is_user_file(safe.module_file(module)))
                if known[1]:
                    state[name] = _code_print(module)
        return state

    # -- recording ----------------------------------------------------------------------------
    def is_user_file(self, origin: str | None) -> bool:
        if not origin or not origin.endswith(".py"):
            return False
        return not origin.startswith(self._user_prefixes)

    def begin(
        self, name: str, module: ModuleType | None, kind: str, trigger: str | None
    ) -> tuple[ModuleRecord, Generation]:
        with self.lock:
            rec = self.records.get(name)
            if rec is None:
                rec = self.records[name] = ModuleRecord(name)
                if module is not None and kind in ("reload", "reimport"):
                    self._record_arrival(rec, module)
            gen = rec.new_generation(kind, trigger)
            if kind != "import" or name in self._preloaded:
                # (An "import" of a module that was already there when recording began is
                # its re-import: it left sys.modules first.)
                self.reloads += 1
            texts = [g for g in rec.generations[1:-1] if g.text is not None]
            for old in texts[: max(0, len(texts) - MAX_TEXTS_PER_MODULE)]:
                old.text = None  # keep generation 0 and the newest texts
        self.tell(rec, gen)
        return rec, gen

    # -- following: who waits for generations ------------------------------------------------
    def tell(self, rec: ModuleRecord, gen: Generation) -> None:
        """Note that ``gen`` began or ended (its status says which) and wake the waiters.
        Cheap (the finder runs under the import lock) and never raises."""
        try:
            name = rec.name
            reload = gen.kind != "import" or name in self._preloaded
            if not self.changed.acquire(True, 0.5):
                return
            try:
                self.sequence += 1
                self.events.append((self.sequence, name, gen.number, gen.status, gen.kind, reload))
                if len(self.events) > MAX_EVENTS:
                    del self.events[: len(self.events) - MAX_EVENTS]
                self.changed.notify_all()
            finally:
                self.changed.release()
        except Exception:
            pass

    def events_after(
        self, after: int
    ) -> tuple[int, list[tuple[int, str, int, str, str, bool]], bool]:
        """(sequence now, the events after ``after``, whether some of them were dropped)."""
        with self.changed:
            seq = self.sequence
            if after > seq:  # from another recorder (uninstalled, installed again)
                after = 0
            events = [e for e in self.events if e[0] > after]
            missed = seq > after and (not events or events[0][0] != after + 1)
            return seq, events, missed

    def wait_change(self, after: int, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for the sequence to pass ``after``: a blocking
        wait on a condition the finder notifies, so waiting costs the process nothing."""
        with self.changed:
            return self.changed.wait_for(
                lambda: self.sequence != after or not self.finder.active, timeout
            )

    def _record_arrival(self, rec: ModuleRecord, module: ModuleType) -> None:
        """Generation 0 of a module imported before recording began: what its namespace holds."""
        gen = rec.new_generation("arrival", None)
        gen.started_at = self.installed_at
        gen.status = "unknown"
        gen.module = weakref.ref(module)
        ns = safe.module_dict(module)
        if ns is None:
            return
        rec.file = _str_or_none(ns.get("__file__"))
        for fn in namespace_functions(ns):
            _walk_code(fn.__code__, gen.codes)
        for cls in _namespace_classes(ns):
            gen.classes[id(cls)] = Held(cls)

    def note_module(self, rec: ModuleRecord, gen: Generation, module: ModuleType) -> None:
        gen.module = weakref.ref(module)
        ns = safe.module_dict(module)
        if ns is not None:
            rec.file = _str_or_none(ns.get("__file__")) or rec.file

    def finish(self, rec: ModuleRecord, gen: Generation, module: ModuleType, before: dict) -> None:
        """After the module's code ran: classes it made and names it did not rebind."""
        ns = safe.module_dict(module)
        if ns is None:
            return
        with self.lock:
            older = rec.generations[: gen.number]
            for cls in _namespace_classes(ns):
                if not any(g.owns_class(cls) for g in older):
                    gen.classes[id(cls)] = Held(cls)
            if not gen.complete:
                # We did not run the code: learn what we can from the namespace.
                for fn in namespace_functions(ns):
                    if not any(g.owns_code(fn.__code__) for g in older):
                        _walk_code(fn.__code__, gen.codes)
            gen.carried = frozenset(k for k, v in dict.items(ns) if before.get(k) == id(v))


def patched_modules(before: dict[str, int], after: dict[str, int]) -> list[str]:
    """The modules of two ``Recorder.code_state`` results whose code changed in between
    (modules imported or dropped in between are not among them)."""
    return sorted(n for n, v in after.items() if n in before and before[n] != v)


def _code_print(module: ModuleType) -> int:
    """``Recorder.code_state``'s number for one module."""
    ns = safe.module_dict(module)
    if ns is None:
        return 0
    name = dict.get(ns, "__name__")
    parts: list[object] = [id(module)]
    seen: set[int] = set()
    stack = list(dict.values(ns))
    while stack:
        obj = stack.pop()
        t = type(obj)
        if t is FunctionType:
            parts.append((id(obj), id(obj.__code__)))
        elif t is staticmethod or t is classmethod:
            stack.append(obj.__func__)
        elif t is property:
            stack.extend((obj.fget, obj.fset, obj.fdel))
        elif safe.is_class(obj) and id(obj) not in seen:
            seen.add(id(obj))
            if safe.class_module(obj) == name:
                parts.append(id(obj))
                stack.extend(dict.values(safe.class_dict(obj)))
    return hash(frozenset(parts))


def _str_or_none(value: object) -> str | None:
    return value if type(value) is str else None


def _trigger() -> str | None:
    """file:line of the first frame outside importlib and this agent."""
    f = sys._getframe(1)
    while f is not None:
        fn = f.f_code.co_filename
        if not (
            fn.startswith("<frozen importlib")
            or fn.startswith(_IMPORTLIB_DIR)
            or fn.startswith(_AGENT_DIR)
        ):
            return f"{fn}:{f.f_lineno}"
        f = f.f_back  # type: ignore[assignment]
    return None


class _ReloadFinder:
    """The meta path finder: sees reloads (``target`` set) and imports."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.active = True
        self._local = threading.local()

    def find_spec(
        self, name: str, path: Any = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not self.active:
            return None
        busy: set[str] | None = getattr(self._local, "busy", None)
        if busy is None:
            busy = self._local.busy = set()
        if name in busy:
            return None  # our own recursive search below
        caller = _caller()
        if caller == _UTIL:
            return self._for_util(name, path, busy)
        if caller != _IMPORT_SYSTEM:
            return None  # runpy, pkgutil, direct calls: they get the real loader
        rec = self.recorder
        kind = "import"
        if target is not None:
            kind = "reload"
        elif name in rec.records:
            kind = "reimport"
        busy.add(name)
        try:
            spec = _bootstrap._find_spec(name, path, target)
        finally:
            busy.discard(name)
        try:
            if spec is None:
                return None
            if not rec.is_user_file(spec.origin):
                rec.library_loads += 1
            if kind == "import" and not rec.is_user_file(spec.origin):
                return spec
            self._watch(spec, name, target, kind)
        except Exception:
            pass
        return spec

    def _for_util(self, name: str, path: Any, busy: set[str]) -> ModuleSpec | None:
        """``importlib.util.find_spec``, as plugin hosts (discord.py's extensions) use it with
        ``module_from_spec`` and ``spec.loader.exec_module``: the spec gets a copy of its
        loader, of a subclass of the loader's own class (so ``isinstance`` and every other
        method behave as before), whose ``exec_module`` records the execution if one comes."""
        busy.add(name)
        try:
            spec = _bootstrap._find_spec(name, path)
        finally:
            busy.discard(name)
        try:
            if spec is not None and not self.recorder.is_user_file(spec.origin):
                self.recorder.library_loads += 1
            if spec is not None and self.recorder.is_user_file(spec.origin):
                loader = spec.loader
                if loader is not None and _is_standard(loader):
                    spec.loader = _recording_copy(loader, self.recorder, spec)
        except Exception:
            pass
        return spec

    def _watch(self, spec: ModuleSpec, name: str, target: ModuleType | None, kind: str) -> None:
        rec = self.recorder
        old: ModuleType | None = target
        if kind == "reimport":
            gone = rec.records[name].current.module
            old = gone() if gone is not None else None
        record, gen = rec.begin(name, old, kind, _trigger() if kind != "import" else None)
        self._begun(spec, name, target, record, gen, kind)

    def _begun(
        self,
        spec: ModuleSpec,
        name: str,
        target: ModuleType | None,
        record: ModuleRecord,
        gen: Generation,
        kind: str,
    ) -> None:
        rec = self.recorder
        if spec.origin and spec.origin not in ("built-in", "frozen"):
            record.file = spec.origin
        loader = spec.loader
        if target is not None and (name in ("sys", "builtins") or name == "__main__"):
            record.warnings.append(f"reloading {name} is not supported by Python; expect surprises")
        if loader is None or not _is_standard(loader):
            gen.status = "unknown"
            rec.tell(record, gen)  # nothing will say when it finished
            if spec.origin and not spec.origin.endswith((".py", ".pyc")) and target is not None:
                record.warnings.append(
                    "extension modules are not re-initialised by reload: the old code stays"
                )
            if target is not None:
                rec.note_module(record, gen, target)
            return
        spec.loader = _WatchingLoader(spec, loader, record, gen, rec)  # type: ignore[assignment]


_IMPORT_CALLERS = frozenset({"_find_and_load_unlocked", "reload"})
_IMPORT_SYSTEM, _UTIL, _OTHER = "import", "util", "other"


def _caller() -> str:
    """Who runs ``_find_spec``: an import statement or ``importlib.reload`` (the spec goes
    straight to the loading code, which swaps our stand-in loader back out before any user
    code can see it), ``importlib.util.find_spec``, or anything else?"""
    try:
        caller = sys._getframe(3)  # _caller, find_spec, importlib's _find_spec, its caller
    except ValueError:  # called directly from a shallow stack: not the import system
        return _OTHER
    code = caller.f_code
    name, filename = code.co_name, code.co_filename
    if not (filename.startswith("<frozen importlib") or filename.startswith(_IMPORTLIB_DIR)):
        return _OTHER
    if name in _IMPORT_CALLERS:
        return _IMPORT_SYSTEM
    if name == "find_spec" and filename.endswith(("util.py", "importlib.util>")):
        return _UTIL
    return _OTHER


_RECORDING_CLASSES: dict[type, type] = {}


def _recording_copy(loader: Any, recorder: Recorder, spec: ModuleSpec) -> Any:
    """A copy of ``loader`` whose class derives from the loader's own and records the next
    ``exec_module`` as a generation (the real loader goes back on the spec and the module
    before the module's code runs)."""
    base = type(loader)
    sub = _RECORDING_CLASSES.get(base)
    if sub is None:
        sub = _RECORDING_CLASSES[base] = type(
            base.__name__, (base,), {"exec_module": _recording_exec_module, "__slots__": ()}
        )
        sub.__module__ = base.__module__
        sub.__qualname__ = base.__qualname__
    copy: Any = object.__new__(sub)
    copy.__dict__.update(vars(loader))
    copy.__dict__["_reloadscope"] = (recorder, spec, loader)
    return copy


def _recording_exec_module(self: Any, module: ModuleType) -> None:
    recorder, spec, real = self.__dict__.pop("_reloadscope", (None, None, None))
    if recorder is None or spec is None or not recorder.finder.active:
        loader: Any = real if real is not None else super(type(self), self)
        loader.exec_module(module)
        return
    try:
        name = spec.name
        kind = "reimport" if name in recorder.records else "import"
        old = None
        if kind == "reimport":
            gone = recorder.records[name].current.module
            old = gone() if gone is not None else None
        record, gen = recorder.begin(name, old, kind, _trigger() if kind != "import" else None)
        if spec.origin:
            record.file = spec.origin
        watching = _WatchingLoader(spec, real, record, gen, recorder)
    except Exception:
        spec.loader = real
        real.exec_module(module)
        return
    watching.exec_module(module)


def _is_standard(loader: object) -> bool:
    exec_module = getattr(type(loader), "exec_module", None)
    return exec_module is _STD_EXEC_MODULE and hasattr(type(loader), "get_code")


class _WatchingLoader:
    """Stands in for a standard loader during one execution, then puts it back."""

    def __init__(
        self, spec: ModuleSpec, real: Any, record: ModuleRecord, gen: Generation, rec: Recorder
    ) -> None:
        self._spec = spec
        self._real = real
        self._record = record
        self._gen = gen
        self._recorder = rec

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        result: ModuleType | None = self._real.create_module(spec)
        return result

    def exec_module(self, module: ModuleType) -> None:
        real = self._real
        self._spec.loader = real
        try:
            module.__loader__ = real
        except Exception:
            pass
        gen, record, recorder = self._gen, self._record, self._recorder
        ns = module.__dict__
        before = {}
        try:
            recorder.note_module(record, gen, module)
            before = {k: id(v) for k, v in dict.items(ns)}
            gen.text, gen.sha256 = _read_source(real, self._spec.origin)
        except Exception:
            pass
        try:
            code: CodeType | None = real.get_code(module.__name__)
            if code is None:
                raise ImportError(
                    f"cannot load module {module.__name__!r} when get_code() returns None"
                )
            try:
                gen.filename = code.co_filename
                _walk_code(code, gen.codes)
                gen.complete = True
                gen.stored = _stored_names(code)
            except Exception:
                pass
            _bootstrap._call_with_frames_removed(exec, code, ns)
        except BaseException as exc:  # a SyntaxError in the edited file, or an error at import
            gen.status = "failed"
            gen.error = _one_line(exc)
            _finish_quietly(recorder, record, gen, module, before)
            raise
        gen.status = "finished"
        _finish_quietly(recorder, record, gen, module, before)


# A failed import or reload shows no frame of reloadscope's: CPython trims importlib's own
# frames from an import's traceback, recognising them by file name, and this stands where
# SourceLoader.exec_module stands, so it takes importlib's name (a reload's traceback, which
# is not trimmed, then reads as python's own).
_WatchingLoader.exec_module.__code__ = _WatchingLoader.exec_module.__code__.replace(
    co_filename="<frozen importlib._bootstrap_external>"
)


def _finish_quietly(
    recorder: Recorder, record: ModuleRecord, gen: Generation, module: ModuleType, before: dict
) -> None:
    try:
        recorder.finish(record, gen, module, before)
    except Exception:
        pass
    recorder.tell(record, gen)


def _one_line(exc: BaseException) -> str:
    t = type(exc)
    # Built-in exceptions format themselves (KeyError quotes its key); a user-defined __str__
    # is not called.
    to_str = t.__str__ if safe.type_module(t) == "builtins" else BaseException.__str__
    try:
        text = to_str(exc)
    except Exception:
        text = ""
    name = safe.type_name(type(exc))
    first = text.splitlines()[0] if text else ""
    return f"{name}: {first}" if first else name


def _read_source(loader: Any, origin: str | None) -> tuple[str | None, str | None]:
    if not origin or not origin.endswith(".py"):
        return None, None
    try:
        with open(origin, "rb") as fh:
            data = fh.read()
    except OSError:
        return None, None
    import hashlib  # here: most targets never reload, and loading the agent stays cheap

    digest = hashlib.sha256(data).hexdigest()
    if len(data) > MAX_SOURCE_BYTES:
        return None, digest
    from importlib.util import decode_source

    try:
        return decode_source(data), digest
    except Exception:
        return None, digest
