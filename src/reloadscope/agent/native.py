"""The optional native helper: a scan's hot loops in C (``src/native/_reloadscope_native.c``).

One abi3 extension built into the wheel beside this file, never required: the scan asks
``get()`` and, when it answers None, runs the pure-Python code, whose results the helper's
equal (the tests compare both on every CPython).  It is loaded on first use, by path, under a
private top-level name that is removed from ``sys.modules`` again (the program never sees it,
and a module of its own by that name is never shadowed), and only when:

- the interpreter is CPython 3.10 or later, a GIL build (the limited API of a free-threaded
  build is another ABI), on glibc Linux (the helper is built against glibc);
- the file is a regular file owned by root or by this process's user, which no one else may
  write, in a directory no one else may write (nothing another user controls is loaded);
- ``RELOADSCOPE_NATIVE`` is not ``0`` in this process's environment, and ``disable()`` was
  not called (an injected agent is told by its bootstrap when the CLI's environment says 0);
- its probe agrees: the reference counts it reads tell one holder from several as the
  interpreter's own do (else the walk keeps its Python path).

Like any extension module, once loaded it stays mapped until the process ends (CPython never
unloads one); it holds no state between calls, starts no thread and installs no hook.
"""

from __future__ import annotations

import os
import stat
import struct
import sys

from . import safe

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

FILE_NAME = "_reloadscope_native.abi3.so"
# The helper's functions and arguments this agent calls (RELOADSCOPE_NATIVE_ABI in the C file):
# a helper of another reloadscope answers another number and is not used.
ABI = 3
PRIVATE_NAME = "_reloadscope_native"

_state: dict[str, object] = {"module": None, "tried": False, "why": "", "off": False, "single": 0}


def path() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), FILE_NAME)


def disable(off: bool = True) -> None:
    """Use the Python code from now on (``off=False``: the helper again, when it loads)."""
    _state["off"] = off


def why_not() -> str:
    """Why ``get()`` answers None ("" when it does not, or was not asked yet)."""
    return str(_state["why"])


def get() -> ModuleType | None:
    """The helper, or None: the Python code then runs (see the module's docstring)."""
    if _state["off"]:
        return None
    if not _state["tried"]:
        _state["tried"] = True
        single = 0
        try:
            why = _unsuitable()
            module = None if why else _load()
            if module is not None:
                single = single_holder(module)
                if single:
                    _function_offsets(module)
                    _type_dict_offset(module)
                else:
                    why, module = "its probe of reference counts disagreed", None
        except Exception as e:  # never worth a scan: the Python code runs
            why, module, single = f"{type(e).__name__}: {e}", None, 0
        _state["module"], _state["why"], _state["single"] = module, why, single
    return _state["module"]  # type: ignore[return-value]


def _unsuitable() -> str:
    if os.environ.get("RELOADSCOPE_NATIVE", "") == "0":
        return "RELOADSCOPE_NATIVE=0"
    if sys.implementation.name != "cpython" or sys.version_info < (3, 10):
        return "not CPython 3.10 or later"
    if safe.FREE_THREADED:
        return "a free-threaded build"
    if not sys.platform.startswith("linux"):
        return "not Linux"
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        libc = ""
    if not libc.startswith("glibc"):
        return "not glibc"
    file = path()
    try:
        st = os.stat(file)
        dst = os.stat(os.path.dirname(file))
    except OSError:
        return "not built (the package works without it)"
    mine = (0, os.geteuid())
    if not stat.S_ISREG(st.st_mode) or st.st_uid not in mine or st.st_mode & 0o022:
        return f"{file} is not a file only root or this user may write"
    if dst.st_uid not in mine or (dst.st_mode & 0o022 and not dst.st_mode & stat.S_ISVTX):
        return f"{os.path.dirname(file)} may be written by another user"
    return ""


def _load() -> ModuleType:
    from importlib.machinery import ExtensionFileLoader, ModuleSpec

    modules = sys.modules
    before = dict.get(modules, PRIVATE_NAME)
    loader = ExtensionFileLoader(PRIVATE_NAME, path())
    spec = ModuleSpec(PRIVATE_NAME, loader, origin=path())
    try:
        module = loader.create_module(spec)
        loader.exec_module(module)
    finally:
        # Never left in sys.modules: the program's own module by that name (if any) stays.
        if before is None:
            modules.pop(PRIVATE_NAME, None)
        else:
            modules[PRIVATE_NAME] = before
    if getattr(module, "ABI", None) != ABI:
        raise ImportError("a helper of another reloadscope (another ABI number)")
    return module


def single_holder(module: ModuleType) -> int:
    """The reference count ``module.expand`` reads for an object with one holder (0: its
    counts cannot tell; as ``graph._probe_single_holder``, through the helper's own reading)."""
    alone: list[object] = [0]
    shared: list[object] = [1]
    holder = [[alone], shared, shared]
    del alone
    counts = module.counts([holder])
    if len(counts) != 3:
        return 0
    # The nested list (one holder) and ``shared`` twice (holder twice and the name), in the
    # order the list's traversal visits them.
    single, a, b = sorted(counts)
    if a != b or a != single + 3:
        return 0
    inner = module.counts([holder[0]])
    if inner != [single]:
        return 0
    return single


def _function_offsets(module: ModuleType) -> None:
    """Let the helper read a plain function's ``__code__`` and ``__globals__`` from the
    object when the same two places hold them in several functions made here (each with
    its own code and globals); else it reads the attributes."""
    made = []
    for k in range(3):
        ns: dict[str, object] = {}
        exec(compile(f"def f{k}(a, b=None):\n    return {k}\n", "<probe>", "exec"), ns)
        made.append(ns[f"f{k}"])
    size = type(made[0]).__basicsize__
    places = {module.function_offsets(f, size, False) for f in made}
    (place,) = places if len(places) == 1 else (None,)
    if place is None:
        module.function_offsets(made[0], 0, True)  # (forgets any: the attributes are read)
    else:
        module.function_offsets(made[0], size, True)


def _type_dict_offset(module: ModuleType) -> None:
    """Let the helper read a class's namespace dict from the class object when the same one
    place holds it in several classes made here; else ``classes_to_judge`` answers None."""
    made = [type(f"P{k}", (), {"k": k}) for k in range(3)]
    size = type.__basicsize__
    places = {module.type_dict_offset(c, safe.class_dict(c), size, False) for c in made}
    (place,) = places if len(places) == 1 else (None,)
    # (A size of 0 finds nothing: the helper forgets any place, classes_to_judge answers None.)
    module.type_dict_offset(made[0], safe.class_dict(made[0]), 0 if place is None else size, True)


# pick's fields: three native words for each function (__code__, __globals__, position).
FIELDS = 3
_WORD = struct.calcsize("P")


def count(fields: bytearray) -> int:
    """How many functions ``pick`` put in ``fields``."""
    return len(fields) // (FIELDS * _WORD)


def positions(fields: bytearray) -> list[int]:
    """Where each function ``pick`` put in ``fields`` stands in the list it picked from."""
    with memoryview(fields) as words, words.cast("P") as each:
        return each[FIELDS - 1 :: FIELDS].tolist()


def functions(objs: list[object], fields: bytearray) -> list[object]:
    """The functions ``pick`` put in ``fields``, from ``objs`` (the list it picked from)."""
    return list(map(objs.__getitem__, positions(fields)))


def single() -> int:
    """The reference count the loaded helper reads for an object with one holder."""
    return int(_state["single"])  # type: ignore[call-overload]
