"""One-line advice for a path: what holds the stale object and how to let it go."""

from __future__ import annotations

from . import paths as P
from . import safe
from .stale import FAILED_RELOAD, LEFTOVER, OLD_MODULE, Found

TYPE_CHECKING = False  # typing is not imported at run time: loading must stay cheap
if TYPE_CHECKING:
    from typing import Any


def hint(
    found: Found,
    root: str,
    kinds: list[str],
    holder_module: str | None,
    holder_type: str | None,
    holder_types: frozenset[str] = frozenset(),
    *,
    text: str = "",
    holder: object = None,
    owner_ns: dict[str, Any] | None = None,
) -> str:
    """The fix for one path.  ``text`` is the path's expression, ``holder`` the object that
    refers to the stale one, ``owner_ns`` the namespace of the module that made it."""
    owner, name = found.owner, found.qualname
    if found.kind == "module":
        return (
            f"an old module object kept after {owner} left sys.modules: import it again "
            f"where it is held (`import {owner}`), or reload the holder"
        )
    if found.kind == "code":
        if root == "thread":
            return (
                "a thread is still running the old code: restart that loop or thread to "
                "run the new code"
            )
        return (
            f"a {found.tname} created before the reload resumes old code: create it again "
            f"from the reloaded {owner}"
        )
    if found.reason == FAILED_RELOAD:
        return (
            f"the last reload of {owner} failed before redefining this: fix the error and "
            f"reload again"
        )
    if root == "thread":
        return (
            "a local variable of a running frame: that frame keeps the old object until it "
            "returns; restart the loop or thread after reloading"
        )
    if root == "probe":
        return (
            "registered outside the gc graph (signal handler or trace hook) before the reload: "
            "register it again from the reloaded module"
        )
    if root == "unsearched":
        return "scan again with a larger max_depth or time_budget to find what holds it"
    if root == "other":
        return (
            "not reachable from modules or threads: a garbage cycle (gc.collect() frees it) "
            "or a reference gc cannot see (C extension, atexit, signal handler)"
        )
    if "_lru_cache_wrapper" in holder_types:
        return "cached by functools.lru_cache: call its cache_clear() after reloading"
    last = kinds[-1] if kinds else P.ATTR
    instance = found.kind == "instance"
    if instance and last != P.CLASS:
        return (
            f"an instance made before the reload still runs the old class's code: recreate "
            f"it, or migrate it with `obj.__class__ = {owner}.{name}`"
        )
    if found.reason == OLD_MODULE:
        return (
            f"made by an old module object of {owner}: import {owner} again where it is "
            f"held, or reload the holder"
        )
    if len(kinds) == 1 and last == P.ATTR:
        short = name.rpartition(".")[2]
        if holder_module == owner or found.reason == LEFTOVER:
            return (
                f"leftover name: reload re-runs {owner} in its old dict and this name is no "
                f"longer defined; `del {owner}.{short}` or restart"
            )
        return (
            f"`from {owner} import {short}` in {holder_module} copied the old object: run "
            f"that import again after reloading, or use `{owner}.{short}`"
        )
    if last == P.CLASS:
        return (
            f"an instance created before the reload keeps its old class: recreate it, or "
            f"migrate it with `obj.__class__ = {owner}.{name}`"
        )
    if last == P.BASE:
        return (
            f"a class derived from the old class: reload the module that defines the "
            f"subclass after reloading {owner}"
        )
    if _thread_target(text, holder):
        return (
            "the target of a threading.Thread started before the reload: the thread runs the "
            "function it started with to its end, and assigning a new one here changes "
            "nothing for it; restart the thread after reloading"
        )
    if last in (P.FUNC, P.SELF):
        return (
            "a bound method taken before the reload (callback or thread target): bind it "
            "again from the new object"
        )
    if last == P.CLOSURE:
        return "captured by a closure made before the reload: call its factory again"
    if last == P.PARTIAL:
        return "a functools.partial made before the reload: create it again"
    if last == P.WRAPPED:
        return "a wrapper (functools.wraps) around the old function: apply the decorator again"
    if last == P.ATTR and found.kind in ("class", "function") and text:
        return (
            f"an attribute set before the reload still holds the old {found.kind}: assign "
            f"the new one after reloading (`{text} = {owner}.{name}`)"
        )
    if last in (P.ITEM, P.INDEX):
        copied = _old_copy_of(holder, owner_ns)
        if copied is not None and holder_module != owner:
            return (
                f"a {type(holder).__name__} made by an earlier execution of {owner}, which "
                f"now binds {owner}.{copied} to a new one: this copy was taken before the "
                f"reload; take it again afterwards, or use `{owner}.{copied}` where it is read"
            )
        if holder_module == owner:
            return (
                f"kept in a container that survives reloads of {owner} (`try/except "
                f"NameError` idiom): clear or rebuild it when the module reloads"
            )
        return (
            "registered in a container that outlives the reload: register again after "
            "reloading, and make registration idempotent (key it by name)"
        )
    if holder_type == "_lru_cache_wrapper":
        return "cached by functools.lru_cache: call its cache_clear() after reloading"
    if last == P.GC:
        return (
            f"held inside a {holder_type or 'built-in'} object: recreate that object after "
            f"reloading"
        )
    return "re-create whatever holds it after reloading"


def _thread_target(text: str, holder: object) -> bool:
    """Is the path a threading.Thread's ``_target`` (Thread.run deletes it when the target
    returns, so the thread has not finished)?  By the path's steps, and the holder's class
    when the target is held directly."""
    _, dot, rest = text.partition("._target")
    if not dot or (rest and not rest.startswith((".__func__", ".__self__"))):
        return False
    if rest or holder is None or type(holder) is dict:
        # A bound method as the target (the method object holds the function), or the
        # thread's __dict__ holding it.
        return True
    import threading

    return any(c is threading.Thread for c in safe.class_mro(type(holder)))


def _old_copy_of(holder: Any, ns: dict[str, Any] | None) -> str | None:
    """The name under which ``ns`` binds another container like ``holder`` (same type, same
    keys): ``holder`` is then that name's value from an earlier execution, kept elsewhere
    (``copy = mod.HANDLERS``).  Only plain keys are compared (no user ``__eq__`` runs)."""
    t = type(holder)
    if ns is None or t not in (dict, list):
        return None
    mine = _plain_keys(holder) if t is dict else None
    if t is dict and not mine:
        return None
    for name, value in list(dict.items(ns)):
        if type(name) is not str or type(value) is not t or value is holder:
            continue
        other: Any = value
        if t is dict:
            # Same size first: comparing the keys of every big dict in the module would cost
            # a pass over each, per path.
            if dict.__len__(other) == dict.__len__(holder) and _plain_keys(other) == mine:
                return name
        elif list.__len__(other) == list.__len__(holder) > 0:
            return name
    return None


def _plain_keys(d: dict[Any, Any]) -> set[Any] | None:
    keys = list(dict.keys(d))
    if not all(safe.one_of(type(k), safe.SAFE_KEY_TYPES) for k in keys):
        return None
    return set(keys)
