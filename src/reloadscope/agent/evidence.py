"""Why an object is stale: the kinds of evidence, one function each, strongest first.

Each function answers for one object and returns an ``Evidence`` (stale, and why) or None (no
evidence: not reported).  Nothing here guesses by name alone: FIELD-NOTES lists the libraries
whose copies, factories and self-replacing modules make name rules fail.

- ``recorded``: a recorded earlier generation compiled its code (or made the class);
- ``source``: its code is not what the module's current source file compiles to (read and
  compiled, never run), while the module's own functions still match that file;
- ``older_compilation``: its code is what the current file compiles to, but the module now
  holds another compilation of that very code (the same source ran again);
- ``replaced_module``: a module object a re-import replaced (that ran its code again), and
  what it made;
- ``shadowed_class``: the module now binds the class's qualified name to another class of the
  same statement, made by another execution;
- ``made_by_stale``: an instance of a stale class, a class with a stale method.

``Sources`` holds what these need per module, computed once per scan and only for modules that
have something to judge.
"""

from __future__ import annotations

import _thread
import os
import sys
from itertools import chain, compress, repeat
from operator import and_, attrgetter, is_, is_not, itemgetter, ne, not_, or_
from types import (
    BuiltinFunctionType,
    ClassMethodDescriptorType,
    CodeType,
    FunctionType,
    GetSetDescriptorType,
    MemberDescriptorType,
    MethodDescriptorType,
    MethodWrapperType,
    ModuleType,
    WrapperDescriptorType,
)

from . import native, safe

_CODE_OF = attrgetter("__code__")  # on exact functions and code objects only: C getters
_CONSTS_OF = attrgetter("co_consts")
_PLACE_OF = attrgetter("co_filename", "co_name", "co_firstlineno")
_GLOBALS_OF = attrgetter("__globals__")
_FIRST, _SECOND = itemgetter(0), itemgetter(1)

TYPE_CHECKING = False  # typing is not imported at run time: loading must stay cheap
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

RECORDED = "recorded"
SOURCE = "source"
OLDER_COMPILATION = "older-compilation"
REPLACED_MODULE = "replaced-module"
SHADOWED_CLASS = "shadowed-class"
LEFTOVER_NAME = "leftover-name"
MADE_BY_STALE = "made-by-stale"

MAX_SOURCE_BYTES = 4 << 20


class Evidence:
    __slots__ = ("kind", "text")

    def __init__(self, kind: str, text: str) -> None:
        self.kind = kind
        self.text = text

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "text": self.text}


# -- code signatures -----------------------------------------------------------------------


class Signatures:
    """What a compilation of the same source text gives again, per code object: bytecode,
    constants (nested code recursively), names and flags.  ``full`` adds the qualified name
    and first line (another compilation of the same place); ``loose`` leaves them out, since
    in-place patchers compile a function alone (IPython's deduperreload: first line 1, a
    qualname under ``__autoreload_class__``)."""

    def __init__(self) -> None:
        self._full: dict[int, tuple] = {}
        self._loose: dict[int, tuple] = {}

    def full(self, code: CodeType) -> tuple:
        sig = self._full.get(id(code))
        if sig is None:
            body = self._body(code, self.full)
            sig = self._full[id(code)] = (*body, safe.code_qualname(code), code.co_firstlineno)
        return sig

    def loose(self, code: CodeType) -> tuple:
        sig = self._loose.get(id(code))
        if sig is None:
            sig = self._loose[id(code)] = self._body(code, self.loose, _CO_METHOD)
        return sig

    def _body(self, code: CodeType, nested: Callable[[CodeType], tuple], drop: int = 0) -> tuple:
        return (
            code.co_name,
            code.co_argcount,
            code.co_posonlyargcount,
            code.co_kwonlyargcount,
            code.co_flags & ~drop,
            code.co_code,
            code.co_names,
            code.co_varnames,
            code.co_freevars,
            code.co_cellvars,
            tuple(_const_sig(c, nested) for c in code.co_consts),
        )


# 3.14+ flags code compiled in a class body; a method compiled alone (jurigged) lacks it.
_CO_METHOD = 0x8000000


def _const_sig(c: object, nested: Callable[[CodeType], tuple]) -> object:
    t = type(c)
    if t is CodeType:
        return nested(c)  # type: ignore[arg-type]
    if t is tuple:
        return ("tuple", tuple(_const_sig(x, nested) for x in c))  # type: ignore[attr-defined]
    if t is frozenset:
        return ("frozenset", frozenset(_const_sig(x, nested) for x in c))  # type: ignore[attr-defined]
    if t is float or t is complex:
        return (t.__name__, repr(c))  # nan == nan here, and -0.0 stays apart from 0.0
    if t in (str, bytes, int, bool, type(None), type(...)):
        return (t.__name__, c)
    if t is slice:  # 3.14+ folds constant slices
        parts = (c.start, c.stop, c.step)  # type: ignore[attr-defined]
        return ("slice", tuple(_const_sig(x, nested) for x in parts))
    # Another kind of constant: taken as equal to any of its type (wrongly equal only ever
    # hides a stale object; wrongly unequal would report a current one).
    return (safe.type_name(t),)


_COMPILER_NAMES = frozenset(
    ("<lambda>", "<genexpr>", "<listcomp>", "<setcomp>", "<dictcomp>", "<locals>", "<module>")
)


def compiler_named(code: CodeType) -> bool:
    """Are the code's names what compiling a file gives (identifiers, ``<lambda>``,
    ``<locals>``...)?  Code generators that compile under the module's file name (ovld's
    ``to_filter[str]``) choose names no ``def`` can have: their code is no version of the
    file, and is not judged by comparing with it."""
    for part in [*safe.code_qualname(code).split("."), code.co_name]:
        if not (part.isidentifier() or part in _COMPILER_NAMES or part.startswith("<annotate")):
            return False
    return True


def _all_codes(code: CodeType) -> list[CodeType]:
    out, stack = [], [code]
    while stack:
        co = stack.pop()
        out.append(co)
        stack.extend(c for c in co.co_consts if type(c) is CodeType)
    return out


# -- what each module's current source and namespace say ------------------------------------


class ModuleSource:
    """One current module: the code its namespace holds, and what its file compiles to."""

    __slots__ = (
        "_bound",
        "_by_place",
        "_class_bodies",
        "_compiled",
        "_names",
        "_state",
        "file",
        "library",
        "name",
        "ns",
        "sources",
    )

    def __init__(self, sources: Sources, name: str, ns: dict[str, Any]) -> None:
        self.sources = sources
        self.name = name
        self.ns = ns
        file = dict.get(ns, "__file__")
        self.file: str | None = file if type(file) is str else None
        # Installed libraries and the standard library are not compared with their source:
        # compiling hundreds of them would cost seconds per scan, and programs reload their
        # own code.  Recording and other compilations of identical code still count there.
        self.library = _library_file(self.file, sources.library)
        self._bound: dict[int, CodeType] | None = None
        self._by_place: dict[tuple, list[CodeType]] | None = None
        self._compiled: tuple[frozenset[tuple], frozenset[tuple]] | bool | None = False
        self._class_bodies: frozenset[tuple[str, str]] | None = None
        self._names: frozenset[str] = frozenset()
        self._state: bool | str | None = "unknown"

    def bound(self) -> dict[int, CodeType]:
        """id -> code object of every code the namespace's functions and classes carry
        (nested code included: closures, lambdas and comprehensions of those functions)."""
        if self._bound is None:
            self._bound = {}
            for fn in namespace_functions(self.ns):
                for co in _all_codes(fn.__code__):
                    self._bound[id(co)] = co
        return self._bound

    def at_place(self, code: CodeType) -> list[CodeType]:
        """The bound code objects of the same name, first line and bytecode as ``code``."""
        if self._by_place is None:
            self._by_place = {}
            for co in self.bound().values():
                self._by_place.setdefault(_place(co), []).append(co)
        return self._by_place.get(_place(code), [])

    def own(self, code: CodeType) -> bool:
        """Compiled from this module's file (not by exec with another name, nor by a code
        generator that borrows the file's name)."""
        return self.file is not None and code.co_filename == self.file and compiler_named(code)

    def compiled(self) -> tuple[frozenset[tuple], frozenset[tuple]] | None:
        """(full, loose signatures) of every code object the current file compiles to; None
        when there is no readable source (or the module is a library's)."""
        if self._compiled is False:
            self._compiled = None
            text = None if self.library else _read(self.file)
            if text is not None and self.file is not None:
                told = (len(text), hash(text))
                kept = _COMPILED.get(self.file) if self.sources.keep else None
                if kept is None or kept[0] != told:
                    kept = (told, _compile(text, self.file))
                    if self.sources.keep:
                        _keep_compiled(self.file, kept)
                if kept[1] is not None:
                    self._compiled, self._class_bodies, self._names = kept[1]
        return self._compiled  # type: ignore[return-value]

    def unchanged(self) -> bool | None:
        """Do the functions the namespace holds match the file (it has not changed since the
        module last ran)?  None: no source to tell."""
        if self._state == "unknown":
            compiled = self.compiled()
            if compiled is None:
                self._state = None
            else:
                loose, sigs = compiled[1], self.sources.sigs
                # A function whose name the file no longer defines at all tells nothing: a
                # leftover name of a reload, or a def removed since the module last ran.
                self._state = all(
                    sigs.loose(co) in loose for co in self._own_bound() if co.co_name in self._names
                )
        return self._state  # type: ignore[return-value]

    def defines(self, code: CodeType) -> bool:
        """Does the current file define a function of this name anywhere?  True when there
        is no source to tell."""
        return self.compiled() is None or code.co_name in self._names

    def _own_bound(self) -> list[CodeType]:
        return [co for co in self.bound().values() if self.own(co)]

    def class_statement(self, cls: type) -> bool:
        """Does the current file have a ``class`` statement that makes this class?"""
        if self.compiled() is None or self._class_bodies is None:
            return False
        if _HAS_FIRSTLINENO and "__firstlineno__" not in safe.class_dict(cls):
            return False  # 3.13+: every class statement stores it; type() does not
        name = safe.type_name(cls)
        qualname = safe.class_qualname(cls)
        if hasattr(CodeType, "co_qualname"):
            return (name, qualname) in self._class_bodies
        return any(n == name for n, _ in self._class_bodies)


class _Hashes(frozenset):
    """Signatures kept as their hashes: ints, which the gc does not track (a kept compilation
    adds a few objects to the heap it scans, not one per code object).  ``sig in hashes``:
    its hash is."""

    __slots__ = ()

    def __contains__(self, sig: object) -> bool:
        return frozenset.__contains__(self, hash(sig))


# What the text of a file compiles to (``ModuleSource.compiled``), kept between scans for the
# same text (told by its length and hash): a rescan reads each file again, but compiles only
# one whose text changed.  Plain data (no object of the program's), a few objects a file;
# the files read last, a few hundred.
_COMPILED: dict[str, tuple[tuple[int, int], tuple | None]] = {}
_COMPILED_FILES = 256


def _compile(text: str, file: str) -> tuple | None:
    """((full, loose signatures), class bodies, code names) of what ``text`` compiles to."""
    try:
        # dont_inherit: this module's own __future__ flags must not leak into it.
        top = compile(text, file, "exec", dont_inherit=True)
    except Exception:  # SyntaxError, ValueError (NUL bytes), RecursionError ...
        return None
    sigs = Signatures()
    codes = _all_codes(top)
    signatures = (
        _Hashes(hash(sigs.full(co)) for co in codes),
        _Hashes(hash(sigs.loose(co)) for co in codes),
    )
    bodies = frozenset(
        (co.co_name, safe.code_qualname(co)) for co in codes if _looks_like_class_body(co)
    )
    return signatures, bodies, frozenset(co.co_name for co in codes)


def _keep_compiled(file: str, kept: tuple[tuple[int, int], tuple | None]) -> None:
    _COMPILED.pop(file, None)
    while len(_COMPILED) >= _COMPILED_FILES:
        try:
            del _COMPILED[next(iter(_COMPILED))]
        except (KeyError, StopIteration, RuntimeError):  # another scan's thread took it
            break
    _COMPILED[file] = kept


# Whether each file name seen is a library's, for the library prefixes it was told with:
# kept between scans (str keys and bools only; as many as the process has modules).
_LIBRARY_FILES: dict[str, bool] = {}
_LIBRARY_PREFIXES: list[tuple[str, ...]] = []


def _library_namespaces(
    ids: list[int], files: list[object], prefixes: tuple[str, ...], told: dict[str, bool]
) -> set[int]:
    """The ``ids`` whose ``__file__`` (in ``files``) is a library's (``_library_file``), in C
    but for the file names not told before (``told``, which this grows)."""
    is_str = list(map(is_, map(type, files), repeat(str)))
    out = set(compress(ids, map(not_, is_str)))  # no str: a library's
    names: list[str] = list(compress(files, is_str))  # type: ignore[arg-type]
    known = list(map(told.get, names))  # (str keys only: no other object's __hash__ runs)
    for i in compress(range(len(known)), map(is_, known, repeat(None))):
        known[i] = told[names[i]] = names[i].startswith(prefixes)
    out.update(compress(compress(ids, is_str), known))
    return out


def _library_file(file: object, prefixes: tuple[str, ...]) -> bool:
    """Is a module of this ``__file__`` a library's (or the standard library's)?"""
    return type(file) is not str or file.startswith(prefixes)


class _Probe:
    pass


_HAS_FIRSTLINENO = "__firstlineno__" in vars(_Probe)


def _place(code: CodeType) -> tuple:
    return (code.co_name, code.co_firstlineno, code.co_code)


def _looks_like_class_body(code: CodeType) -> bool:
    # A class body stores __module__ and __qualname__ first (every CPython 3.10-3.15).
    names = code.co_names
    return "__module__" in names and "__qualname__" in names


def _read(file: str | None) -> str | None:
    if not file or not file.endswith(".py"):
        return None
    try:
        with open(file, "rb") as fh:
            data = fh.read(MAX_SOURCE_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_SOURCE_BYTES:
        return None
    from importlib.util import decode_source

    try:
        return decode_source(data)
    except Exception:
        return None


_STARTED: list[float] = []


def process_start() -> float:
    """When this process started (seconds since the epoch), from /proc; 0 when unknown."""
    if not _STARTED:
        try:
            with open("/proc/self/stat", "rb") as fh:
                ticks = int(fh.read().rsplit(b")", 1)[1].split()[19])
            with open("/proc/stat", "rb") as fh:
                boot = next(int(x.split()[1]) for x in fh if x.startswith(b"btime "))
            _STARTED.append(boot + ticks / os.sysconf("SC_CLK_TCK") - 1.0)
        except (OSError, ValueError, IndexError, StopIteration):
            _STARTED.append(0.0)
    return _STARTED[0]


def library_prefixes() -> tuple[str, ...]:
    """Directories whose modules are libraries, not the user's code (no source text kept).

    Derived from ``sys`` and ``os`` alone: importing ``sysconfig`` here would cost an injected
    agent half a second of file reads when threads compete for the GIL."""
    paths = set()
    stdlib = os.path.dirname(os.__file__) if getattr(os, "__file__", None) else None
    candidates = [stdlib] if stdlib else []
    for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix):
        candidates += [os.path.join(p, "lib"), os.path.join(p, "lib64")]
    for p in list(sys.path):
        if type(p) is str and os.path.basename(p) in ("site-packages", "dist-packages"):
            candidates.append(p)
    for p in candidates:
        paths.add(p + os.sep)  # as imported: no realpath, whose lstat calls would cost as much
    # reloadscope's own package (the agent's parent), wherever it was loaded from.
    paths.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep)
    return tuple(sorted(paths))


class _IndexCache:
    """What ``Sources.index`` keeps between scans of one process: ids of the code objects of
    library modules' functions it looked at (nested code included), the hashes of their
    places, and those of the places compiled more than once.  Ids and hashes only: no object
    is held.  ``native``: ``codes`` and ``seen`` are the native helper's tables (bytearrays of
    addresses and hashes), which only the helper reads: a scan without it starts over."""

    __slots__ = ("codes", "key", "limit", "native", "seen", "size", "twice", "twice_ids")

    def __init__(
        self, key: object, codes: Any, seen: Any, twice: set[int], size: int, native: bool
    ) -> None:
        self.key = key
        self.codes = codes
        self.seen = seen
        self.twice = twice
        self.twice_ids: set[int] = set()
        self.native = native
        self.size = size  # how many code objects ``codes`` holds
        # Dead code stays counted: once it has doubled, the next scan starts over.
        self.limit = 2 * size + 10000


_INDEX: list[_IndexCache | None] = [None]
_INDEX_LOCK = _thread.allocate_lock()


def forget_index() -> None:
    """Drop what scans kept for the next one: the index (the next scan indexes every code
    object again), the files' compilations, which file names are a library's."""
    _INDEX[0] = None
    _COMPILED.clear()
    _LIBRARY_FILES.clear()
    _LIBRARY_PREFIXES.clear()


def after_fork_in_child() -> None:
    """A fork may have copied the index's lock held by a scan of the parent's: a fresh one
    (else every scan of the child would wait for it, then keep nothing)."""
    global _INDEX_LOCK
    _INDEX_LOCK = _thread.allocate_lock()


def _expand(
    top: list[CodeType] | dict[int, CodeType], known: set[int] | None = None
) -> tuple[list[CodeType], list[int]]:
    """The distinct code objects of ``top`` (or of its values, by id) and those nested in
    them (none whose id is in ``known``), and the hash of the place of each; in C, level by
    level (the native helper's ``index_all`` and ``index_again`` do the same)."""
    if type(top) is not dict:
        top = dict(zip(map(id, top), top))  # type: ignore[arg-type]
    level = list(top.values())
    seen = set(top)
    out = list(level)
    while level:
        consts = list(chain.from_iterable(map(_CONSTS_OF, level)))
        nested = list(compress(consts, map(is_, map(type, consts), repeat(CodeType))))
        if not nested:
            break
        level = [c for c in dict(zip(map(id, nested), nested)).values() if id(c) not in seen]
        if known is not None:
            level = [c for c in level if id(c) not in known]
        seen.update(map(id, level))
        out.extend(level)
    return out, list(map(hash, map(_PLACE_OF, out)))


class CurrentModules:
    """The modules of sys.modules now, as the scan's tables (``current_modules``)."""

    __slots__ = ("by_name", "by_ns", "current", "ids", "library", "prefixes")

    def __init__(
        self,
        ids: set[int],
        current: dict[str, ModuleType],
        by_ns: dict[int, tuple[str, dict[str, Any]]],
        by_name: dict[str, dict[str, Any]],
        library: set[int],
        prefixes: tuple[str, ...],
    ) -> None:
        self.ids = ids  # of every value of sys.modules
        self.current = current  # the modules under a str key whose namespace is a dict
        self.by_ns = by_ns  # id(namespace) -> (its first name, namespace)
        self.by_name = by_name  # that name -> namespace
        self.library = library  # ids of the namespaces of library modules (_library_file)
        self.prefixes = prefixes  # library_prefixes()


def current_modules(keep: bool = False) -> CurrentModules:
    """sys.modules's modules now: in one pass of the native helper, else in C passes (a
    process has thousands).  ``keep``: which file names are a library's is kept for the next
    scan (while recording: ``forget_index`` drops it)."""
    prefixes = library_prefixes()
    told: dict[str, bool] = {}
    if keep:
        if [prefixes] != _LIBRARY_PREFIXES or len(_LIBRARY_FILES) > 100_000:
            _LIBRARY_FILES.clear()
            _LIBRARY_PREFIXES[:] = [prefixes]
        told = _LIBRARY_FILES
    items = list(dict.items(sys.modules))
    helper = native.get()
    if helper is not None:
        ids, current, by_ns, by_name, library = helper.modules_table(
            items, ModuleType, prefixes, told
        )
        return CurrentModules(ids, current, by_ns, by_name, library, prefixes)
    keys, mods = list(map(_FIRST, items)), list(map(_SECOND, items))
    del items
    ids = set(map(id, mods))
    usable = list(
        map(
            and_,
            map(is_, map(type, keys), repeat(str)),
            map(issubclass, map(type, mods), repeat(ModuleType)),
        )
    )
    keys, mods = list(compress(keys, usable)), list(compress(mods, usable))
    found = safe.module_dicts(mods)
    read = list(map(is_not, found, repeat(None)))
    keys, mods, nss = (list(compress(x, read)) for x in (keys, mods, found))
    current = dict(zip(keys, mods))
    # Each namespace under its first name (made backwards, so that the first one wins).
    by_ns = dict(zip(map(id, reversed(nss)), zip(reversed(keys), reversed(nss))))
    by_name = dict(by_ns.values())
    files = list(map(dict.get, map(_SECOND, by_ns.values()), repeat("__file__")))
    library = _library_namespaces(list(by_ns), files, prefixes, told)
    return CurrentModules(ids, current, by_ns, by_name, library, prefixes)


class Sources:
    """``ModuleSource`` of each current module, made on first use."""

    def __init__(self, modules: CurrentModules) -> None:
        self.by_ns = modules.by_ns
        self.by_name = modules.by_name
        self.lib_ns = modules.library
        self.library = modules.prefixes
        self._made: dict[int, ModuleSource] = {}
        self._twice: set[int] | None = None  # hashes of places compiled more than once
        # Files' compilations kept for the next scan (``_COMPILED``): while recording, as the
        # index (``forget_index`` drops both).
        self.keep = False
        self.recorded: Iterable[int] = ()  # ids of code recording saw made (``index``)
        self.stats: dict[str, int] = {"codes": 0, "rebuilt": 0}
        self.sigs = Signatures()
        self.unjudged: dict[str, int] = {}  # module -> objects its changed file left unjudged
        self.no_source: dict[str, int] = {}
        self.rewritten: dict[str, int] = {}  # module -> its top-level code unlike its file
        self.elsewhere: dict[str, int] = {}  # module -> code of no file run in its globals

    def of_globals(self, ns: object) -> ModuleSource | None:
        hit = self.by_ns.get(id(ns))
        if hit is None or hit[1] is not ns:
            return None
        made = self._made.get(id(ns))
        if made is None:
            made = self._made[id(ns)] = ModuleSource(self, hit[0], hit[1])
        return made

    def index(
        self,
        functions: list[FunctionType],
        key: object = None,
        fields: bytearray | None = None,
    ) -> list[FunctionType]:
        """Note where the code of these functions (and the code nested in it) was compiled:
        only a place compiled more than once can hold an older compilation.  Returns the
        functions that need judging one by one: all but those of current library modules
        whose code was not recorded (``recorded``: ids) and whose place was compiled once,
        which ``Classifier.function`` would pass over.  The per-object work runs in C: this
        sees every function of the process.

        With a ``key`` (see ``index_key``), the part of the index made of the code of library
        modules' functions is kept for the next scan with the same key (ids and hashes only,
        no object): it then looks only at code it has not seen.  ``fields``: the addresses of
        each function's ``__code__`` and ``__globals__`` and its position in ``functions``,
        which the native helper's ``pick`` read (with the helper only; ``functions`` is then
        the list it picked from: the heap's)."""
        # One scan at a time reads and grows what is kept (a scan of the server's thread and
        # one of the program's may run at once); a lock held too long (a fork copied it held)
        # costs only the keeping (and a child gets a fresh one: after_fork_in_child).
        if key is not None and not _INDEX_LOCK.acquire(True, 1.0):
            key = None
        try:
            return self._index(functions, key, fields)
        finally:
            if key is not None:
                _INDEX_LOCK.release()

    def _index(
        self,
        functions: list[FunctionType],
        key: object,
        fields: bytearray | None,
    ) -> list[FunctionType]:
        self.stats = stats = {"codes": 0, "rebuilt": 0}
        cache = _INDEX[0] if key is not None else None
        helper = native.get() if fields is not None else None
        if key is None or cache is None or cache.key != key or cache.size > cache.limit:
            cache = None
        elif cache.native != (helper is not None):
            cache = None  # kept by the other engine: its tables are not this one's
        new_lib: list[CodeType] = []
        codes: list[CodeType] = []
        if helper is not None:
            # The same passes without reading any object (native.py): which functions are a
            # library's, and the positions of those whose code the index has not seen.
            known = None if cache is None else cache.codes
            lib_mask, new_at, other_at = helper.split(functions, fields, self.lib_ns, known)
            new_lib = list(map(_CODE_OF, map(functions.__getitem__, new_at)))
            other_top = list(map(_CODE_OF, map(functions.__getitem__, other_at)))
            del new_at, other_at
        else:
            codes = list(map(_CODE_OF, functions))
            lib_mask = list(map(self.lib_ns.__contains__, map(id, map(_GLOBALS_OF, functions))))
            other_top = list(compress(codes, map(not_, lib_mask)))
            if cache is not None:
                # Library code not seen before (most often none: a rescan looks at no more).
                unseen = map(not_, map(cache.codes.__contains__, map(id, codes)))
                new_lib = list(compress(codes, map(and_, lib_mask, unseen)))
        twice_ids: set[int] | None = None
        if cache is not None:
            if helper is not None:
                twice_ids = self._index_again_native(helper, cache, new_lib, other_top)
            else:
                twice_ids = self._index_again(cache, new_lib, other_top)
        if twice_ids is None:
            if helper is None:
                lib_codes = list(compress(codes, lib_mask))
                lib_top = dict(zip(map(id, lib_codes), lib_codes))
                cache, twice_ids = self._index_all(lib_top, other_top, key)
            else:
                at = compress(native.positions(fields), lib_mask)  # type: ignore[arg-type]
                lib_codes = list(map(_CODE_OF, map(functions.__getitem__, at)))
                cache, twice_ids = self._index_all_native(helper, lib_codes, other_top, key)
            del lib_codes
            stats["rebuilt"] = 1
        if key is not None:
            _INDEX[0] = cache
        # Kept: not a current library module's, recorded, or at a place compiled twice.
        special = twice_ids.union(self.recorded)
        if helper is not None:
            return helper.keep(functions, fields, lib_mask, special)
        keep = map(or_, map(not_, lib_mask), map(special.__contains__, map(id, codes)))
        return list(compress(functions, keep))

    def _index_all(
        self, lib_top: dict[int, CodeType], other_top: list[CodeType], key: object
    ) -> tuple[_IndexCache | None, set[int]]:
        lib_codes, lib_places = _expand(lib_top)
        other_codes, other_places = _expand(other_top)
        self.stats["codes"] += len(lib_codes) + len(other_codes)
        places = lib_places + other_places
        n = len(places)
        # A place seen more than once is not where its last index says (in C: a real process
        # holds tens of thousands, many made by exec under one name).
        last = dict(zip(places, range(n)))
        twice: set[int] = set()
        if len(last) != n:
            twice = set(compress(places, map(ne, map(last.__getitem__, places), range(n))))
        del last
        self._twice = twice
        at_twice = list(map(twice.__contains__, places))
        twice_ids = set(map(id, compress(chain(lib_codes, other_codes), at_twice)))
        if key is None:
            return None, twice_ids  # nothing is kept: no recorder to tell when it goes stale
        codes = set(map(id, lib_codes))
        cache = _IndexCache(key, codes, set(lib_places), set(twice), len(codes), False)
        cache.twice_ids = set(map(id, compress(lib_codes, at_twice)))
        return cache, twice_ids

    def _index_all_native(
        self, helper: Any, lib_top: list[CodeType], other_top: list[CodeType], key: object
    ) -> tuple[_IndexCache | None, set[int]]:
        """``_index_all`` by the native helper, which keeps its part in its own tables."""
        codes, seen, twice, twice_ids, lib_twice_ids, n = helper.index_all(
            lib_top, other_top, CodeType
        )
        self.stats["codes"] += n
        self._twice = twice
        if key is None:
            return None, twice_ids
        cache = _IndexCache(key, codes, seen, set(twice), helper.table_len(codes), True)
        cache.twice_ids = lib_twice_ids
        return cache, twice_ids

    def _index_again_native(
        self, helper: Any, cache: _IndexCache, new_top: list[CodeType], other_top: list[CodeType]
    ) -> set[int] | None:
        """``_index_again`` by the native helper, over its tables."""
        again = helper.index_again(
            cache.codes, cache.seen, cache.twice, cache.twice_ids, new_top, other_top, CodeType
        )
        if again is None:
            return None
        cache.codes, cache.seen, self._twice, twice_ids, n = again
        cache.size = helper.table_len(cache.codes)
        self.stats["codes"] += n
        return twice_ids

    def _index_again(
        self, cache: _IndexCache, new_top: list[CodeType], other_top: list[CodeType]
    ) -> set[int] | None:
        """The index from ``cache`` and the code it has not seen; None when a place it saw
        once is now compiled again (which of its code is there, it cannot tell: a full
        index then)."""
        new_codes, new_places = _expand(new_top, cache.codes)
        other_codes, other_places = _expand(other_top)
        self.stats["codes"] += len(new_codes) + len(other_codes)
        places = new_places + other_places
        seen, twice = cache.seen, cache.twice
        fresh_twice: set[int] = set()
        if len(set(places)) != len(places) or not seen.isdisjoint(places):
            counted: dict[int, int] = {}
            for p in places:
                if p in seen and p not in twice:
                    return None  # a place seen once before: start over
                counted[p] = counted.get(p, 0) + 1
            fresh_twice = {p for p, n in counted.items() if n > 1}
        self._twice = now = twice | fresh_twice
        # The library part grows by what it had not seen (dead code stays: a superset).
        cache.codes.update(map(id, new_codes))
        cache.size = len(cache.codes)
        seen.update(new_places)
        at_twice = list(map(now.__contains__, new_places))
        twice.update(compress(new_places, at_twice))
        cache.twice_ids.update(map(id, compress(new_codes, at_twice)))
        twice_ids = set(map(id, compress(other_codes, map(now.__contains__, other_places))))
        return twice_ids | cache.twice_ids

    def recompiled(self, code: CodeType) -> bool:
        """Was the place of ``code`` compiled more than once (``index``)?  True when no
        index was taken, or when another place has the same hash (the index holds hashes:
        the judging that follows compares the code itself)."""
        if self._twice is None:
            return True
        return hash((code.co_filename, code.co_name, code.co_firstlineno)) in self._twice

    def library_names(self) -> set[str]:
        """Names of the current library modules (``of_name`` gives a library's source)."""
        in_lib = map(self.lib_ns.__contains__, map(id, self.by_name.values()))
        return set(compress(self.by_name, in_lib))

    def edited(self) -> list[tuple[str, ModuleSource]]:
        """(name, source) of the current modules, not libraries, whose file was written since
        this process started: only those can have run an older version of it (a stat each;
        their sources are compiled only when asked)."""
        started = process_start()
        out = []
        for m in list(self._made.values()):
            if m.library or m.file is None:
                continue
            try:
                if os.stat(m.file).st_mtime >= started:
                    out.append((m.name, m))
            except (OSError, ValueError):
                continue
        return sorted(out, key=lambda x: x[0])

    def of_name(self, name: str | None) -> ModuleSource | None:
        ns = self.by_name.get(name) if type(name) is str else None
        return None if ns is None else self.of_globals(ns)


# -- the kinds of evidence ---------------------------------------------------------------


def recorded(number: int) -> Evidence:
    return Evidence(RECORDED, f"recording saw generation {number} make it; a later one has run")


def source(code: CodeType, ns: object, sources: Sources) -> Evidence | None:
    """Code compiled from the module's file, but not from what the file holds now (while the
    functions the module holds do match the file: it did not change since it last ran)."""
    m = sources.of_globals(ns)
    if m is None or m.library or not m.own(code) or id(code) in m.bound():
        return None
    return _compare(code, m, sources, "")


def source_in_copy(code: CodeType, ns: object, sources: Sources) -> tuple[str, Evidence] | None:
    """Code compiled from a current module's file, running in a dict that is not that
    module's but names it (its ``__name__`` and ``__file__``), and not what the file holds
    now: a namespace of an earlier execution that a reloader overwrote with the current
    values (reimport-style: the old dict then holds current functions, so it passes for a
    copy).  A copy made now runs no code from the file that differs from it: attrs' generated
    methods are compiled from other text, and deduperreload's new definitions match the file.
    (module, evidence), or None."""
    if type(ns) is not dict:
        return None
    name, file = dict.get(ns, "__name__"), dict.get(ns, "__file__")
    m = sources.of_name(name) if type(name) is str else None
    if m is None or m.library or m.ns is ns or m.file != file or not m.own(code):
        return None
    found = _compare(code, m, sources, " (it runs in an earlier namespace of the module)")
    return (m.name, found) if found is not None else None


def unnamed(code: CodeType, ns: object, sources: Sources) -> Evidence | None:
    """Code compiled with an empty file name, running with a current module's globals: what
    runners that recompile a function or loop body from the file on every call do (the
    ``reloading`` package).  Its code matching what the file compiles to now (loosely: such a
    runner compiles the body alone) is current; a function or lambda of a name the file has
    whose code the file no longer compiles to ran from an earlier version of the text (even
    when the module's own functions no longer match the file: the runner, not the module,
    decides what is current).  Anything else is counted as compiled from elsewhere (a blind
    spot)."""
    m = sources.of_globals(ns)
    if m is None or m.library or code.co_filename != "":
        return None  # (held by the namespace proves nothing: such a runner keeps old ones)
    compiled = m.compiled()
    if compiled is None or code.co_name == "<module>":
        sources.elsewhere[m.name] = sources.elsewhere.get(m.name, 0) + 1
        return None
    if sources.sigs.loose(code) in compiled[1]:
        return None
    if not m.defines(code) or not compiler_named(code):
        sources.elsewhere[m.name] = sources.elsewhere.get(m.name, 0) + 1
        return None
    # Compared with the file as it is now, whether or not the module ran since it changed:
    # such a runner compiles from the file at the next call, so what it made from an
    # earlier text is what the edit did not reach.
    return Evidence(
        SOURCE,
        f"compiled from {m.name}'s file text by a runner (no file name), it is not what the "
        "file compiles to now",
    )


def _compare(code: CodeType, m: ModuleSource, sources: Sources, where: str) -> Evidence | None:
    compiled = m.compiled()
    if compiled is None:
        sources.no_source[m.name] = sources.no_source.get(m.name, 0) + 1
        return None
    full, loose = compiled
    sigs = sources.sigs
    if sigs.full(code) in full:
        return None
    if code.co_name == "<module>":
        # The module's own top-level code, running now, yet not what its file compiles to:
        # compiled from a rewritten tree (Streamlit's magic) or a hook, not an older execution.
        sources.rewritten[m.name] = sources.rewritten.get(m.name, 0) + 1
        return None
    if not m.unchanged():
        sources.unjudged[m.name] = sources.unjudged.get(m.name, 0) + 1
        return None
    if sigs.loose(code) in loose:
        return Evidence(
            SOURCE,
            f"its code is in {m.name}'s current source, but at another place: it was compiled "
            f"from an earlier version of the file{where}",
        )
    return Evidence(SOURCE, f"its code is not what {m.name}'s current source compiles to{where}")


def older_compilation(code: CodeType, ns: object, sources: Sources) -> Evidence | None:
    """The same source text ran again: the module now holds another compilation of this very
    code (a reload of an unchanged file, or a copy taken before the reload)."""
    if not sources.recompiled(code):
        return None
    m = sources.of_globals(ns)
    if m is None or not m.own(code):
        return None
    if id(code) in m.bound():
        return None
    full = sources.sigs.full
    sig = full(code)
    twins = [co for co in m.at_place(code) if co is not code and full(co) == sig]
    if not twins or (not m.library and not m.unchanged()):
        return None
    return Evidence(
        OLDER_COMPILATION,
        f"{m.name} now holds another compilation of the same code: this one was made by an "
        "earlier execution of the module",
    )


def replaced_module(old: ModuleType, current: ModuleType) -> Evidence | None:
    """``old`` left ``sys.modules`` for ``current`` of the same name and file, and
    ``current`` ran its code again (a module that replaces itself with a copy of its own
    dict, as pygments' lexers do, ran nothing again: both hold the same objects)."""
    old_ns, new_ns = safe.module_dict(old), safe.module_dict(current)
    if old_ns is None or new_ns is None or old_ns is new_ns:
        return None
    if not ran_again(old_ns, new_ns):
        return None
    name = safe.module_name(current) or "?"
    return Evidence(
        REPLACED_MODULE,
        f"an old module object of {name}: a re-import replaced it in sys.modules and ran the "
        "module again",
    )


def ran_again(old_ns: dict[str, Any], new_ns: dict[str, Any]) -> bool:
    """Did the code behind ``new_ns`` run itself, rather than copy ``old_ns``?"""
    own = False
    for v in list(dict.values(new_ns)):
        if type(v) is FunctionType:
            g = v.__globals__
            if g is old_ns:
                return False  # the current module holds the old one's functions: a copy
            if g is new_ns:
                own = True
    if own:
        return True
    # No functions to tell by: a copy holds the very same objects under the same names.
    for k, v in list(dict.items(old_ns)):
        if type(k) is str and not k.startswith("__") and dict.get(new_ns, k, _MISSING) is not v:
            return True
    return False


def old_namespace(ns: dict[str, Any], sources: Sources) -> bool:
    """Is ``ns``, which is no current module's dict, the namespace of an earlier execution?

    Only when its own functions live in it (their globals are this dict), and it holds none
    of a current module's: attrs builds the globals of the methods it generates as a *copy*
    of the module's dict, and IPython's deduperreload runs new definitions in one (whose
    functions then live in the copy too)."""
    values = list(dict.values(ns))
    functions = compress(values, map(is_, map(type, values), repeat(FunctionType)))
    where = set(map(id, map(_GLOBALS_OF, functions)))  # (in C: a namespace holds hundreds)
    if any(map(sources.by_ns.__contains__, where)):
        return False  # holds a current module's functions: a copy made from it now
    return id(ns) in where


def shadowed_class(cls: type, sources: Sources) -> Evidence | None:
    """The module now binds the class's qualified name to another class made by the same
    ``class`` statement in another execution (the source may be unchanged: old instances
    then fail ``isinstance`` against the new class).

    The same statement run again makes a class of the same metaclass with the same names in
    its dict.  Not evidence, because made by the same execution: copies a decorator made (a
    slotted dataclass or attrs class: the original shares its functions, or lacks the copy's
    ``__slots__``; ovld keeps the original in a closure of the class it returns), sibling
    classes one refers to (ctypes' byte-order swapped types), a base the module's class
    derives from, classes made by ``type()``, metaclasses or factories (no ``class``
    statement of that qualified name in the file), accelerators' C classes (ElementTree).
    A class without methods whose source changed its names is not found this way."""
    module = safe.class_module(cls)
    m = sources.of_name(module)
    if m is None or m.library:
        return None  # needs the class statements of the module's source
    qualname = safe.class_qualname(cls)
    found = _resolve(m.ns, qualname)
    if found is None or found is cls or not safe.is_class(found):
        return None
    other: type = found  # type: ignore[assignment]
    if safe.class_module(other) != module or safe.class_qualname(other) != qualname:
        return None
    if not (_python_made(cls) and _python_made(other)):
        return None  # an accelerator's class replaced the pure-Python one (ElementTree)
    if _previous_versions_reach(other, cls):
        return Evidence(
            SHADOWED_CLASS,
            f"{module}.{qualname} names it as its previous reload version: a reload made the "
            "current class and kept this one (pyqtgraph's reload does)",
        )
    if type(cls) is not type(other):
        return None  # a metaclass made it at run time (ovld's MetaMC classes)
    names = _str_keys(safe.class_dict(cls))
    if names is None or names != _str_keys(safe.class_dict(other)):
        return None  # not the same statement run again: a factory's or decorator's class
    if any(c is cls for c in safe.class_mro(other)) or any(c is other for c in safe.class_mro(cls)):
        return None
    if any(
        safe.class_qualname(b) == qualname and safe.class_module(b) == module
        for b in safe.class_mro(cls)[1:]
    ):
        return None  # derived from a class of its own name: made from it (a factory's product)
    mine, theirs = safe.class_dict(cls), safe.class_dict(other)
    if _refers(mine, other) or _reaches(theirs, cls):
        return None  # a sibling or a decorator's original, kept by the class it made
    if "__slots__" in theirs and "__slots__" not in mine:
        return None  # the original a slotted copy was made from
    if not m.class_statement(cls) or not m.unchanged():
        return None
    return Evidence(
        SHADOWED_CLASS,
        f"{module} now binds {qualname} to another class made by the same class statement: "
        "this one was made by an earlier execution of the module",
    )


def _previous_versions_reach(current: type, cls: type) -> bool:
    """Is ``cls`` on the chain of ``__previous_reload_version__`` of ``current`` (what
    pyqtgraph's reloadAll sets on the class it made: a reloader's own record of a reload)?"""
    seen = 0
    prev = dict.get(safe.class_dict(current), "__previous_reload_version__")
    while prev is not None and safe.is_class(prev) and seen < 1000:
        if prev is cls:
            return True
        prev = dict.get(safe.class_dict(prev), "__previous_reload_version__")
        seen += 1
    return False


def leftover_name(module: str, name: str) -> Evidence:
    """A function the module still binds, under a name its current file no longer defines,
    in a module shown to have run again (an earlier execution's code was found): reload re-ran
    the file in the old dict, and nothing removed the name.  Decided by
    ``Classifier.leftovers`` once every function has been judged."""
    return Evidence(
        LEFTOVER_NAME,
        f"{module} still binds {name} to it although its file no longer defines {name}: the "
        "module ran again in its old dict and the name stayed",
    )


def made_by_stale(what: str) -> Evidence:
    return Evidence(MADE_BY_STALE, what)


_MISSING = object()


def _resolve(ns: dict[str, Any], qualname: str) -> object | None:
    """``ns``'s object at a dotted qualified name, through dicts only (no attribute access)."""
    if "<" in qualname:
        return None  # made inside a function: not bound by name
    parts = qualname.split(".")
    obj = dict.get(ns, parts[0])
    for part in parts[1:]:
        if obj is None or not safe.is_class(obj):
            return None
        obj = dict.get(safe.class_dict(obj), part)
    return obj


_C_LEVEL = (
    WrapperDescriptorType,
    MethodDescriptorType,
    ClassMethodDescriptorType,
    MethodWrapperType,
    BuiltinFunctionType,
)


def _str_keys(d: dict[Any, Any]) -> frozenset[str] | None:
    """The keys, when all are exact strings (comparing others could run their ``__eq__``)."""
    keys = list(dict.keys(d))
    return frozenset(keys) if all(type(k) is str for k in keys) else None


def _python_made(cls: type) -> bool:
    """Could a ``class`` statement have made this class?  Classes written in C (an
    accelerator's replacement for the pure-Python one) carry C-level descriptors."""
    d = safe.class_dict(cls)
    slots = dict.get(d, "__slots__", ())
    if type(slots) is str:
        slots = (slots,)
    if type(slots) not in (tuple, list) or any(type(x) is not str for x in slots):
        slots = ()  # a generator or odd objects: no member descriptor counts as a slot
    for k, v in list(dict.items(d)):
        t = type(v)
        if t in _C_LEVEL:
            return False
        if t is GetSetDescriptorType and k not in ("__dict__", "__weakref__"):
            return False
        if t is MemberDescriptorType and (type(k) is not str or k not in slots):
            return False
    return True


def _reaches(d: dict[str, Any], target: object, depth: int = 6, limit: int = 5000) -> bool:
    """Is ``target`` within a few references of ``d``'s values (through functions, cells,
    descriptors: what a class decorator keeps of the class it replaced)?  Never through a
    module, class or namespace dict other than ``d``: those lead everywhere."""
    frontier = list(dict.values(d))
    seen = {id(d)}
    for _ in range(depth):
        nxt = []
        for o in frontier:
            if o is target:
                return True
            if id(o) in seen or type(o) is ModuleType or type(o) is dict or safe.is_class(o):
                continue
            seen.add(id(o))
            nxt.append(o)
        if not nxt or len(seen) > limit:
            return False
        frontier = safe.referents(*nxt)
    return False


def _refers(d: dict[str, Any], target: object) -> bool:
    if any(v is target for v in dict.values(d)):
        return True
    return any(r is target for r in safe.referents(*dict.values(d)))


def namespace_functions(namespace: dict[str, Any]) -> list[FunctionType]:
    """Functions defined by the code that filled ``namespace`` and bound there: at module
    level, in its classes (methods, static and class methods, properties), in the cells of
    their closures (what decorators wrap), and one container deep (a registry list)."""
    out: list[FunctionType] = []
    seen: set[int] = set()
    name = dict.get(namespace, "__name__")
    stack: list[Any] = list(dict.values(namespace))
    depth = {id(v): 0 for v in stack}
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        t = type(obj)
        level = depth.get(id(obj), 1)
        if t is FunctionType:
            if obj.__globals__ is namespace:
                out.append(obj)
            cells = obj.__closure__
            if cells is not None and level < 2:
                for c in cells:
                    try:
                        v = c.cell_contents
                    except ValueError:
                        continue
                    if type(v) is FunctionType:
                        depth.setdefault(id(v), level + 1)
                        stack.append(v)
        elif t is staticmethod or t is classmethod:
            stack.append(obj.__func__)
        elif t is property:
            stack.extend((obj.fget, obj.fset, obj.fdel))
        elif safe.is_class(obj):
            if safe.class_module(obj) == name:
                stack.extend(dict.values(safe.class_dict(obj)))
        elif level == 0 and (t is list or t is tuple or t is dict):
            values = dict.values(obj) if t is dict else obj
            for v in list(values):
                if type(v) is FunctionType:
                    depth.setdefault(id(v), 1)
                    stack.append(v)
    return out
