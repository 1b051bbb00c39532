"""What a child forked from this process gets of the agent: only what the program asked for.

Pre-fork servers and ``multiprocessing`` (fork) copy the whole process, the agent included, at
whatever moment the fork happens (FIELD-NOTES, "Fork and the agent").  One set of
``os.register_at_fork`` hooks per loaded copy of the agent (it can never be removed, so it is
tiny and does nothing while the agent has nothing running) undoes in the child what no thread
there will ever finish:

- the automatic collector a scan switched off for its length (``gc_paused``) is on again;
- modules that one of the agent's threads was importing at that instant (the agent's own
  modules while it loads, a standard module it imported) are forgotten, with their import locks:
  those locks belong to a thread the child does not have, so importing them again would wait
  forever;
- an agent that had not finished loading is dropped altogether (``sys.modules``, and the
  injector's temporary finder in ``sys.meta_path``): the next attach loads a fresh one;
- the package's own callbacks (``on_child``) reset its locks, forget the parent's listener
  (its socket belongs to the parent) and the injected recorder (see ``__init__.py``).

Which threads are the agent's is known from two sides: ``_before`` looks for them, and each of
them notes itself (``this_thread``) before it imports anything.  ``_before`` alone misses a
thread that starts while it runs: it gives up the GIL (``os.stat``, reading /proc), and a
thread in ``threading._limbo`` then may begin importing before the fork.  Such a thread's
import locks used to stay held in the child, by an ident a new thread there may well get again
(glibc reuses the dead threads' stacks): that thread then took the lock as its own and got the
half-executed module, and the child's next agent could not listen (``partially initialized
module 'socket' has no attribute 'socket'``) or closed its client's connection.

A fork also waits, in ``_before`` and for ``GUARD_WAIT_S`` at most, while an agent thread holds
``hold_forks()``: between making a descriptor a child must not keep and recording it where the
child's hooks find it (the listener's socket, made with the GIL released: a child forked
before it was recorded kept the parent's listening socket).

On CPython 3.12+ a fork in a process with more than one thread prints a DeprecationWarning.
When the only threads besides the forking one are the agent's, the program would not have seen
it without the agent, so ``_before`` puts one filter first in ``warnings.filters`` that ignores
exactly that warning for this PID, and the filter takes itself out again when it has matched
(3.13+ warn after the after-fork hooks have run, 3.12 before: posixmodule.c's ``os_fork_impl``).

Every hook catches everything (an exception there would be printed into the program) and calls
no code of the program: only ``type()``/``is`` checks, plain dicts, lists and our own objects.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import weakref

TYPE_CHECKING = False  # typing is not imported at run time: loading must stay cheap
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_PACKAGE = __name__.rpartition(".")[0]
# The agent's threads: its listener (server.THREAD_NAME) and the injector's bootstrap thread
# (attach/inject.py), which loads the agent and starts the listener.
THREAD_NAMES = (
    "reloadscope-agent",
    "reloadscope-agent-client",  # install()'s agent serves each client on one (server.py)
    "reloadscope-boot",
    "reloadscope-load",  # loads the standard modules under a low recursion limit (__init__)
)

# A scan switched the automatic collector off and will switch it on again when it ends (a
# child forked meanwhile never sees that end: it turns the collector on itself).
gc_paused = False
# The package finished loading (set by __init__.py as its last step).
package_ready = False

_child_callbacks: list[Callable[[], None]] = []
# The agent's threads seen so far, ident -> native id: the listener, and the bootstrap's thread
# (a ``threading.Thread`` or a bare ``_thread`` one).  One is the agent's as long as its OS
# thread exists (/proc/self/task): an exiting one has left ``threading``'s tables already,
# and CPython still counts it.
_known: dict[int, int] = {}
_forking: tuple[int, ...] = ()  # idents of the agent's threads alive at the fork under way
_filter: tuple[list[Any], tuple[Any, ...]] | None = None  # (the list it is in, the entry)
_arm_filter: Any = None  # the ``_filter`` put in place as this copy armed (see the end)
_armed = False
_abandoned = False  # this copy had not finished loading when the process forked: inert
# Held by an agent thread over a step a fork must not split (``hold_forks``), and by a fork's
# ``_before`` until it is over.  A fresh one in each child: a thread there may have held it.
_guard = threading.Lock()
_guard_taken: Any = None  # the lock ``_before`` took, released after the fork
GUARD_WAIT_S = 2.0  # a fork never waits longer for it (the steps take microseconds)


def arm() -> None:
    """Register the hooks (once for this copy of the agent)."""
    global _armed
    if _armed or not hasattr(os, "register_at_fork"):
        return
    _armed = True
    os.register_at_fork(
        before=_before, after_in_parent=_after_in_parent, after_in_child=_after_in_child
    )


def hold_forks() -> Any:
    """Make forks wait until ``release_forks`` (give it what this returns).  Never blocks for
    long: a fork under way holds the lock only while it forks."""
    lock = _guard
    return lock if lock.acquire(timeout=GUARD_WAIT_S) else None


def release_forks(held: Any) -> None:
    if held is not None:
        try:
            held.release()
        except RuntimeError:  # released by a child's reset meanwhile: not ours any more
            pass


def on_child(callback: Callable[[], None]) -> None:
    """Run ``callback`` in every child forked from now on (after this module's own work)."""
    if not any(c is callback for c in _child_callbacks):
        _child_callbacks.append(callback)


# -- the hooks --------------------------------------------------------------------------------
def _before() -> None:
    global _forking, _guard_taken
    try:
        if _abandoned:
            return
        lock = _guard
        if lock.acquire(timeout=GUARD_WAIT_S):  # an agent thread's step is over
            _guard_taken = lock
        _drop_filter()  # one an earlier fork did not use
        _forking = _agent_threads()
        if _forking and sys.version_info >= (3, 12):
            _quiet_fork_warning(len(_forking))
    except BaseException:
        pass


def _after_in_parent() -> None:
    global _forking, _guard_taken
    try:
        _forking = ()
        held, _guard_taken = _guard_taken, None
        release_forks(held)
        if sys.version_info < (3, 13):
            _drop_filter()  # 3.12 has warned by now; 3.13+ warn after this hook
    except BaseException:
        pass


def _after_in_child() -> None:
    global _abandoned, gc_paused, _forking, _guard, _guard_taken
    try:
        if _abandoned:
            return
        _guard, _guard_taken = threading.Lock(), None
        # None of the agent's threads runs here: those ``_before`` found, and those that noted
        # themselves since (one that started while ``_before`` had given up the GIL).
        me = threading.get_ident()
        dead = tuple({*_forking, *_known} - {me, 0})
        _forking = ()
        _known.clear()
        _drop_filter()
        if gc_paused:
            gc_paused = False
            gc.enable()
        if not package_ready:
            _abandoned = True  # the next attach loads a fresh agent; this copy stays inert
        _free_imports(dead)
        _drop_boot_finders(None)
        if not _abandoned:
            for callback in list(_child_callbacks):
                try:
                    callback()
                except BaseException:
                    pass
    except BaseException:
        pass


def _agent_threads() -> tuple[int, ...]:
    """Idents of the agent's threads that are OS threads now (0 for one still starting)."""
    starting = 0
    listed: list[int] = []
    module = dict.get(sys.modules, "threading")
    namespace = module.__dict__ if type(module) is type(sys) else {}
    for table in (dict.get(namespace, "_active"), dict.get(namespace, "_limbo")):
        if type(table) is not dict:
            continue
        for t in list(dict.values(table)):
            # Exact ``Thread`` objects only, whose attributes are plain.  One in _limbo has
            # no ids yet (start() was called): counted as starting.
            ours = type(t) is threading.Thread and t.__dict__.get("_name") in THREAD_NAMES
            if ours and not remember(t):
                starting += 1
            elif ours:
                listed.append(t.__dict__["_ident"])
    alive = []
    for ident, native in list(_known.items()):
        if ident in listed:
            alive.append(ident)
            continue
        try:
            os.stat(f"/proc/self/task/{native}")
            alive.append(ident)
        except OSError:
            _known.pop(ident, None)
    return tuple(alive) + (0,) * starting


def remember(thread: threading.Thread) -> bool:
    """Note one of the agent's ``threading.Thread`` objects; False while it has no ids yet."""
    ident = thread.__dict__.get("_ident") if type(thread) is threading.Thread else None
    native = thread.__dict__.get("_native_id") if type(thread) is threading.Thread else None
    if type(ident) is int and type(native) is int:
        _known[ident] = native
        return True
    return False


def this_thread() -> None:
    """The calling thread is the agent's (the bootstrap's), unless it is the main thread (a
    program that loads the agent itself, ``reloadscope run --python``).  Asks ``threading``
    nothing that would give a bare thread a Thread object."""
    ident = threading.get_ident()
    if ident != threading.main_thread().ident:
        _known[ident] = threading.get_native_id()


# -- imports left half done by a thread the child does not have ------------------------------
def _ours(name: object) -> bool:
    return type(name) is str and (name == _PACKAGE or name.startswith(_PACKAGE + "."))


def _free_imports(dead: tuple[int, ...]) -> None:
    """Forget the modules the agent's threads (``dead``) were importing, with their locks;
    and the whole agent when it had not finished loading."""
    bootstrap = dict.get(sys.modules, "_frozen_importlib")
    namespace = getattr(bootstrap, "__dict__", None) if type(bootstrap) is type(sys) else None
    locks = dict.get(namespace, "_module_locks") if type(namespace) is dict else None
    if type(locks) is not dict:
        locks = {}
    me = threading.get_ident()
    forget = []
    lock_type = dict.get(namespace, "_ModuleLock") if type(namespace) is dict else None
    for name, ref in list(dict.items(locks)):
        lock = ref() if type(ref) is weakref.ref else None
        if lock is None or type(lock) is not lock_type:
            continue
        owner = dict.get(lock.__dict__, "owner")
        if type(owner) is not int or owner == me:
            continue
        if owner in dead or (_abandoned and _ours(name)):
            forget.append(name)
    for name in forget:
        dict.pop(locks, name, None)
        module = dict.get(sys.modules, name)
        if module is not None and _initializing(module):
            dict.pop(sys.modules, name, None)
    blocking = dict.get(namespace, "_blocking_on") if type(namespace) is dict else None
    if type(blocking) is dict:  # 3.10/3.11 (a weak-value mapping on 3.12+ forgets by itself)
        for ident in dead:
            dict.pop(blocking, ident, None)
    if _abandoned:
        for name in [k for k in list(sys.modules) if _ours(k)]:
            dict.pop(sys.modules, name, None)


def _initializing(module: object) -> bool:
    """Is ``module`` still being executed (importlib's own mark on its spec)?"""
    if type(module) is not type(sys):
        return False
    spec = dict.get(module.__dict__, "__spec__")
    machinery = dict.get(sys.modules, "_frozen_importlib")
    spec_type = getattr(machinery, "ModuleSpec", None)
    if spec is None or type(spec) is not spec_type:
        return False
    return dict.get(spec.__dict__, "_initializing", False) is True


def _drop_boot_finders(keep: object) -> None:
    """Take the injector's temporary finder (it serves the agent's source text while the agent
    loads) out of ``sys.meta_path``: a fork while it was there copied it, with nobody left to
    take it out.  ``keep`` is the one serving a load under way."""
    meta = sys.meta_path
    if type(meta) is not list:
        return
    stale = [f for f in meta if f is not keep and _boot_finder(f)]
    if stale:
        meta[:] = [f for f in meta if not any(f is s for s in stale)]


def _boot_finder(finder: object) -> bool:
    cls = type(finder)
    namespace = dict(vars(cls)) if type(cls) is type else {}
    if namespace.get("_reloadscope_boot") is True:
        return True
    if type.__dict__["__name__"].__get__(cls) != "Finder":
        return False
    methods = [namespace.get(n) for n in ("find_spec", "create_module", "exec_module")]
    # The bootstrap's class, compiled from its string: all three methods, none from a file.
    return all(
        type(m) is type(_boot_finder) and m.__code__.co_filename == "<string>" for m in methods
    )


# -- the fork warning -----------------------------------------------------------------------------
def cpython_thread_count() -> int:
    """The number of threads CPython counts when it decides to warn about a fork: the 20th
    space-separated field of the first 159 bytes of /proc/self/stat, else the threads
    ``threading`` knows (posixmodule.c, ``get_number_of_os_threads``)."""
    count = 0
    try:
        fd = os.open("/proc/self/stat", os.O_RDONLY)
        try:
            data = os.read(fd, 159)
        finally:
            os.close(fd)
        fields = [f for f in data.split(b" ") if f]
        if len(fields) >= 20:
            digits = b""
            for c in fields[19]:
                if not 48 <= c <= 57:
                    break
                digits += bytes((c,))
            count = int(digits) if digits else 0
    except OSError:
        count = 0
    if count <= 0:
        module = dict.get(sys.modules, "threading")
        namespace = module.__dict__ if type(module) is type(sys) else {}
        for name in ("_active", "_limbo"):
            value = dict.get(namespace, name)
            count += len(value) if type(value) is dict else 0
    return count


class _ForkWarning:
    """The message part of the filter: CPython's fork warning for this process, exactly
    (``warnings`` calls ``match``).  Takes its filter out once it has matched."""

    __slots__ = ("pattern", "texts")

    def __init__(self, pid: int) -> None:
        head = f"This process (pid={pid}) is multi-threaded, use of "
        tail = "() may lead to deadlocks in the child."
        self.texts = tuple(head + call + tail for call in ("fork", "forkpty", "fork1"))
        self.pattern = self.texts[0]

    def match(self, text: object) -> bool:
        try:
            if type(text) is str and text in self.texts:
                _drop_filter()
                return True
        except BaseException:
            pass
        return False

    def __repr__(self) -> str:
        return "<reloadscope: the fork warning its own thread alone would cause>"


def _warning_filters() -> list[Any] | None:
    """The list ``warnings`` reads its filters from (the module's, else ``_warnings``')."""
    for name in ("warnings", "_warnings"):
        module = dict.get(sys.modules, name)
        if type(module) is type(sys):
            filters = dict.get(module.__dict__, "filters")
            if type(filters) is list:
                return filters
    return None


def _quiet_fork_warning(ours: int) -> None:
    """Before a fork: when CPython would warn only because of the agent's ``ours`` threads,
    ignore that one warning."""
    global _filter
    count = cpython_thread_count()
    if count <= 1 or count - ours > 1:
        return  # no warning at all, or one the program's own threads cause
    filters = _warning_filters()
    if filters is None:
        return
    entry = ("ignore", _ForkWarning(os.getpid()), DeprecationWarning, None, 0)
    _drop_filter()  # never two (the bootstrap's thread arming while a fork's _before runs)
    filters.insert(0, entry)
    _filter = (filters, entry)


def _filter_at_arm() -> None:
    """When this copy arms, a fork may be under way in another thread: its hooks were listed
    when it began (posixmodule.c copies the list), without ours, so no ``_before`` of ours
    runs for it, and 3.12 warns before any hook runs after it.  The filter ``_before`` would
    have put in place is put in place now; it goes when the package has loaded
    (``loading_over``), or at the next fork's ``_before``, or once it has matched."""
    global _arm_filter
    try:
        if sys.version_info >= (3, 12) and _filter is None:
            ours = _agent_threads()
            if ours:
                _quiet_fork_warning(len(ours))
                _arm_filter = _filter
    except BaseException:
        pass


def loading_over() -> None:
    """The package loaded, or failed to: the filter ``_filter_at_arm`` placed goes, unless a
    fork's ``_before`` has replaced it since."""
    global _arm_filter
    try:
        placed, _arm_filter = _arm_filter, None
        if placed is not None and _filter is placed:
            _drop_filter()
        elif placed is not None:  # replaced since: out of the list all the same, if still in
            _remove(placed)
    except BaseException:
        pass


def _drop_filter() -> None:
    global _filter
    placed, _filter = _filter, None
    if placed is not None:
        _remove(placed)


def _remove(placed: tuple[list[Any], tuple[Any, ...]]) -> None:
    filters, entry = placed
    for i, e in enumerate(filters):
        if e is entry:
            del filters[i]
            break


# This copy is loading: a fork from now on runs the hooks; a finder an earlier fork left
# behind goes.  The bootstrap's thread is noted first: a fork right after ``arm()`` would not
# know it otherwise (it is a bare thread, in none of ``threading``'s tables), and let its fork
# warning through.
if not _PACKAGE.startswith("reloadscope"):
    this_thread()  # loaded from the injector's text, by the bootstrap's thread
# The filter before the hooks: the thread that runs a fork already under way takes the GIL
# back at this thread's first function call, and completes the fork at once.
_filter_at_arm()
arm()
_drop_boot_finders(getattr(globals().get("__spec__"), "loader", None))
