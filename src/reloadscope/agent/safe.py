"""Reading objects without running user code.

``isinstance`` may call a ``__class__`` property, ``getattr`` may call ``__getattr__``,
``==``/hashing call ``__eq__``/``__hash__``, ``len`` calls ``__len__``.  Everything here goes
through ``type()``, ``id()``, the C-level descriptors of the built-in types, and the real
storage of dicts, so a hostile object is read without being asked anything.
"""

from __future__ import annotations

import gc
import sys
from itertools import compress, repeat
from operator import is_, is_not
from types import (
    CoroutineType,
    FrameType,
    FunctionType,
    GeneratorType,
    GetSetDescriptorType,
    MemberDescriptorType,
    ModuleType,
)

TYPE_CHECKING = False  # typing is not imported at run time: loading must stay cheap
if TYPE_CHECKING:
    from typing import Any

_TYPE_FLAGS_TYPE_SUBCLASS = 1 << 31
_TYPE_FLAGS_DICT_SUBCLASS = 1 << 29
_type_dict = type.__dict__["__dict__"]
_type_mro = type.__dict__["__mro__"]
_type_name = type.__dict__["__name__"]
_type_qualname = type.__dict__["__qualname__"]
_type_flags = type.__dict__["__flags__"]
_module_dict: Any = vars(ModuleType)["__dict__"]


# CPython 3.12's _asyncio module visits its free list of dead FutureIter objects when it is
# traversed, and gc.get_referents hands them out as live ones: the process then loops forever
# or frees them twice (gh-122695; seen here on 3.12.1 with two lines of asyncio).  So on 3.12
# gc.get_referents is never given that module (what it holds is C state, no path's step).
_TRAVERSE_GUARD = sys.implementation.name == "cpython" and sys.version_info[:2] == (3, 12)
_modules = sys.modules
_get_referents = gc.get_referents


def _guarded_referents(*objs: object) -> list[object]:
    bad = dict.get(_modules, "_asyncio")
    if bad is not None and any(map(is_, objs, repeat(bad))):
        objs = tuple(compress(objs, map(is_not, objs, repeat(bad))))
    return _get_referents(*objs)


# ``gc.get_referents`` itself where it is safe (every module of the agent uses this name).
referents = _guarded_referents if _TRAVERSE_GUARD else gc.get_referents


def is_class(obj: object) -> bool:
    """True for classes, whatever their metaclass (no ``isinstance``, no ``__class__``)."""
    return bool(_type_flags.__get__(type(obj)) & _TYPE_FLAGS_TYPE_SUBCLASS)


def is_dict_subclass(obj: object) -> bool:
    return bool(_type_flags.__get__(type(obj)) & _TYPE_FLAGS_DICT_SUBCLASS)


def class_dict(cls: type) -> dict[str, Any]:
    """The class's own namespace as the real dict behind its mappingproxy."""
    proxy = _type_dict.__get__(cls)
    # A mappingproxy over a class dict refers to exactly one object: that dict.
    for ref in referents(proxy):
        if type(ref) is dict:
            return ref
    return {}


def class_mro(cls: type) -> tuple[type, ...]:
    mro = _type_mro.__get__(cls)
    return mro if type(mro) is tuple else ()


def class_module(cls: type) -> str | None:
    value = dict.get(class_dict(cls), "__module__")
    return value if type(value) is str else None


def type_module(cls: type) -> str | None:
    """``cls.__module__`` through type's own descriptor (``"builtins"`` for built-in types)."""
    try:
        value = type.__dict__["__module__"].__get__(cls)
    except Exception:
        return None
    return value if type(value) is str else None


def class_qualname(cls: type) -> str:
    try:
        value = _type_qualname.__get__(cls)
    except Exception:
        value = None
    return value if type(value) is str else type_name(cls)


def type_name(cls: type) -> str:
    try:
        value = _type_name.__get__(cls)
    except Exception:
        return "?"
    return value if type(value) is str else "?"


def module_dict(module: object) -> dict[str, Any] | None:
    try:
        d = _module_dict.__get__(module)
    except Exception:
        return None
    return d if type(d) is dict else None


def module_dicts(modules: list[object]) -> list[dict[str, Any] | None]:
    """``module_dict`` of each of ``modules`` (module objects), in C but for the rare one
    whose namespace cannot be read."""
    try:
        dicts: list[Any] = list(map(_module_dict.__get__, modules))
    except Exception:
        return list(map(module_dict, modules))
    for i in compress(range(len(dicts)), map(is_not, map(type, dicts), repeat(dict))):
        dicts[i] = None
    return dicts


def module_name(module: object) -> str | None:
    d = module_dict(module)
    if d is None:
        return None
    value = dict.get(d, "__name__")
    return value if type(value) is str else None


def module_file(module: object) -> str | None:
    d = module_dict(module)
    if d is None:
        return None
    value = dict.get(d, "__file__")
    return value if type(value) is str else None


def lookup_in_mro(cls: type, name: str) -> tuple[bool, object]:
    """Find ``name`` in the dicts of ``cls``'s MRO the way attribute lookup would."""
    for base in class_mro(cls):
        # Compared as exact strings only: ``name in d`` would hash and compare a key of a
        # str subclass with a colliding hash through its own ``__eq__``.
        for k, v in dict.items(class_dict(base)):
            if type(k) is str and k == name:
                return True, v
    return False, None


def instance_dict(obj: object) -> dict[str, Any] | None:
    """An instance's ``__dict__`` through the C descriptor (materialises inline values)."""
    found, desc = lookup_in_mro(type(obj), "__dict__")
    if not found or type(desc) is not GetSetDescriptorType:
        return None
    try:
        d = desc.__get__(obj)
    except Exception:
        return None
    return d if type(d) is dict else None


def slot_items(obj: object) -> list[tuple[str, object]]:
    """(name, value) for every filled ``__slots__`` member of ``obj``."""
    out = []
    for base in class_mro(type(obj)):
        for name, desc in dict.items(class_dict(base)):
            if type(desc) is MemberDescriptorType:
                try:
                    out.append((name, desc.__get__(obj)))
                except Exception:
                    pass
    return out


def has_attribute_in_type(obj: object, name: str) -> bool:
    return lookup_in_mro(type(obj), name)[0]


def type_has_get(value: object) -> bool:
    """True when ``value``'s type defines ``__get__`` (so class attribute access transforms it)."""
    return has_attribute_in_type(value, "__get__")


SAFE_KEY_TYPES = (str, int, float, bool, bytes, type(None))


def one_of(t: object, types: tuple[type, ...]) -> bool:
    """``t in types`` by identity: ``in`` compares with ``==``, which a metaclass may define
    (and, as a subclass of ``type``, it is asked first)."""
    return any(t is x for x in types)


def key_repr(key: object) -> str | None:
    """``repr(key)`` when that runs no user code and gives back an equal key, else None."""
    t = type(key)
    if one_of(t, SAFE_KEY_TYPES):
        if t is float and key != key:  # nan does not round-trip
            return None
        return repr(key)
    if t is tuple:
        parts = [key_repr(k) for k in key]  # type: ignore[attr-defined]
        if any(p is None for p in parts):
            return None
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"  # type: ignore[arg-type]
    return None


def function_qualname(fn: FunctionType) -> str:
    value = fn.__qualname__
    return value if type(value) is str else "?"


def code_qualname(code: Any) -> str:
    return getattr(code, "co_qualname", None) or code.co_name


# Built-in types whose object.__sizeof__ is wrong: they declare an item size but keep no item
# count where object.__sizeof__ reads one (3.11+ frames: it read a pointer, and reported
# petabytes).  Their own __sizeof__ is C and runs no user code.
OWN_SIZEOF = (FrameType, GeneratorType, CoroutineType)
_OWN_SIZEOF = {id(t): t.__sizeof__ for t in OWN_SIZEOF}


def sizeof(obj: object) -> int:
    try:
        if is_class(obj):
            return int(type.__sizeof__(obj))  # type: ignore[arg-type,unused-ignore]
        own = _OWN_SIZEOF.get(id(type(obj)))
        return int(own(obj) if own is not None else object.__sizeof__(obj))
    except Exception:
        return 0


def is_identifier(name: object) -> bool:
    import keyword

    return type(name) is str and name.isidentifier() and not keyword.iskeyword(name)


def free_threaded_build(abiflags: str) -> bool:
    """Is an interpreter with these ``sys.abiflags`` a free-threaded build ("t", as in
    ``python3.13t``)?  The build, not ``sys._is_gil_enabled()``: a free-threaded build started
    with ``PYTHON_GIL=1`` has the GIL on yet keeps its biased, deferred reference counts.
    (``sysconfig``'s ``Py_GIL_DISABLED`` says the same, at the price of importing it.)"""
    return type(abiflags) is str and "t" in abiflags


FREE_THREADED = free_threaded_build(getattr(sys, "abiflags", ""))


def version_text(version_info: tuple[int, ...], free_threaded: bool) -> str:
    """``3.13.1``, or ``3.13.1t`` for a free-threaded build."""
    text = "{}.{}.{}".format(*version_info[:3])
    return text + "t" if free_threaded else text


PY_VERSION = version_text(tuple(sys.version_info[:3]), FREE_THREADED)
