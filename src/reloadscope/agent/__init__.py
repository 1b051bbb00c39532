"""The part of reloadscope that runs inside the target process.

Standard library only, CPython 3.10+ syntax, and no import of the rest of reloadscope: it may be
loaded from reloadscope's files into an interpreter where reloadscope is not installed.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading

# The standard modules the agent loads when it loads (none it loads later, when needed: the
# test_safety list), and then its own, each imported from here before
# anything imports it: every import then nests one level deep, not six (agent -> server ->
# json -> json.decoder -> re -> re._compiler ...), so the agent loads under a low recursion
# limit (``sys.setrecursionlimit(50)`` left it dead).  Names a version lacks are skipped.
_LEAVES_FIRST = (
    "keyword",
    "operator",
    "reprlib",
    "types",
    "collections",
    "functools",
    "enum",
    "re",
    "json",
    "errno",
    "select",
    "struct",
    "socket",
    "weakref",
    "bisect",
)
_OWN_LEAVES_FIRST = ("safe", "graph", "paths", "evidence", "recorder", "stale", "exact")


def report_start_failure(exc: BaseException) -> bool:
    """Leave why this agent could not start where only this user's client looks, and picks it
    up (and removes it): ``/tmp/reloadscope-<uid>/<pid>[.ns<N>].failed``, a file of mode 0600
    in the private directory the socket would be in (see ``attach/client.py``,
    ``start_failure``).  One line: the exception and where it was raised.  Needs no module
    that is not loaded yet and little recursion depth; never raises.  True when written."""
    try:
        tb = exc.__traceback__
        where = ""
        while tb is not None:  # the innermost frame with a file (a loop: no recursion here)
            filename = tb.tb_frame.f_code.co_filename
            if not filename.startswith("<"):
                where = f" (in {filename}, line {tb.tb_lineno})"
            tb = tb.tb_next
        text = f"{type(exc).__name__}: {exc}"[:400] + where[:300]
        if type(exc) is RecursionError:
            text += f" (the process's recursion limit is {sys.getrecursionlimit()})"
        try:
            ns: int | None = os.stat("/proc/self/ns/pid").st_ino
        except OSError:
            ns = None
        name = str(os.getpid()) if ns in (None, 0xEFFFFFFC) else f"{os.getpid()}.ns{ns}"
        directory = f"/tmp/reloadscope-{os.getuid()}"
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass
        st = os.lstat(directory)
        if st.st_uid != os.getuid() or st.st_mode & 0o077 or (st.st_mode & 0o170000) != 0o040000:
            return False  # not our private directory: tell nobody rather than anybody
        path = f"{directory}/{name}.failed"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        # Written whole under a temporary name, then renamed into place: a client that looks
        # in between must not read an empty line (it would take it, remove it, and wait on).
        # The rename replaces one left by an earlier failure nobody picked up.
        try:
            fd = os.open(path + ".tmp", flags, 0o600)
        except FileExistsError:  # left by a process that died writing it
            os.unlink(path + ".tmp")
            fd = os.open(path + ".tmp", flags, 0o600)
        try:
            os.write(fd, text.replace("\n", " ").encode("utf-8", "replace") + b"\n")
        finally:
            os.close(fd)
        os.replace(path + ".tmp", path)
        try:
            # Said once: the bootstrap, which sees this exception again when the import of
            # the agent fails, must not write it a second time after the client took it.
            exc._reloadscope_reported = True  # type: ignore[attr-defined]
        except BaseException:
            pass
        return True
    except BaseException:
        return False


def _preload() -> None:
    # Noted before its first import: a child forked from now on forgets the modules this
    # thread was importing (forksafe), even when the fork's own look missed the thread.
    forksafe.this_thread()
    for name in _LEAVES_FIRST:
        try:
            __import__(name)
        except BaseException:
            pass  # missing here, or failing: the agent's own imports below say so


def _load() -> None:
    if sys.getrecursionlimit() < 200:
        # A new thread starts 7-10 frames shallower than this module's body (under the
        # bootstrap's thread and two imports): the standard modules' own nesting gets those.
        t = threading.Thread(target=_preload, name="reloadscope-load", daemon=True)
        t.start()
        t.join()
    else:
        _preload()
    for name in _OWN_LEAVES_FIRST:
        __import__(f"{__name__}.{name}")


try:
    # forksafe first of the agent's modules: from then on a fork runs its hooks.
    from . import forksafe

    _load()
    from . import evidence, snapfile
    from .recorder import Recorder
    from .scan import scan as _scan
    from .server import MAX_WAIT_S, WAIT_SLICE_S, Server
    from .server import interrupted as _interrupted
    from .server import progress as _tell_client
except BaseException as _e:
    # Loaded by an injection (under its private name): the client waiting for the socket
    # learns why none comes.  Imported by a program, the program sees the exception itself.
    if __name__ != "reloadscope.agent":
        report_start_failure(_e)
    try:
        forksafe.loading_over()  # (a NameError when forksafe itself could not load)
    except BaseException:
        pass
    raise

TYPE_CHECKING = False  # typing is not imported at run time: loading must stay cheap
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "install",
    "listen",
    "listening",
    "recorder",
    "scan",
    "serve_injected",
    "stop_listening",
    "uninstall",
]

_lock = threading.Lock()
_recorder: Recorder | None = None
# The program asked for recording (``install()``): a forked child keeps it.  A recorder only an
# injection started is the injection's: it leaves with its client, and no child gets it.
_recorder_asked = False
_server: Server | None = None
# The injected bootstrap's page may be unmapped once per injection (by the "release" request):
# never twice, since by then the address may belong to someone else.  Not a set of addresses:
# mmap hands the same address to the next injection, whose page must be released too.
_page_to_release = False


def install() -> Recorder:
    """Start recording generations (idempotent); returns the recorder.  Children forked from
    now on record too (they inherit the recorder, not the listener)."""
    global _recorder_asked
    rec = _install()
    _recorder_asked = True
    return rec


def _install() -> Recorder:
    global _recorder
    with _lock:
        if _recorder is None:
            _recorder = Recorder()
        _recorder.install()
        return _recorder


def uninstall() -> None:
    """Stop recording and listening; the finder leaves ``sys.meta_path``, records are dropped."""
    global _recorder, _recorder_asked
    stop_listening()
    with _lock:
        _recorder_asked = False
        if _recorder is not None:
            _drop_recording(_recorder)
            _recorder = None


def _drop_recording(rec: Recorder) -> None:
    """Stop ``rec`` and drop what scans kept for the next one while it recorded (the index of
    places compiled twice, ``evidence``): a removed agent keeps nothing in the process."""
    rec.uninstall()
    evidence.forget_index()


INJECTED_IDLE_S = 30.0


def listen(*, injected: bool = False, idle: float = INJECTED_IDLE_S) -> str:
    """Answer ``reloadscope`` commands on this process's socket (idempotent); returns its path.

    An injected agent leaves no trace when its client goes, detached or not, or when no
    client came within ``idle`` seconds: it stops recording too.
    """
    global _server
    with _lock:
        if _server is not None and _server.thread is not None and _server.thread.is_alive():
            return _server.path
        _server = Server(_handlers(), on_detach=_forget if injected else None, idle=idle)
        _server.start()
        atexit.register(_remove_socket)  # the thread is a daemon: tidy up at exit
        return _server.path


def listening() -> bool:
    return _server is not None and _server.thread is not None and _server.thread.is_alive()


def stop_listening() -> None:
    global _server
    atexit.unregister(_remove_socket)
    with _lock:
        server, _server = _server, None
    if server is not None:
        server.stop()


def _remove_socket() -> None:
    server = _server
    if server is not None and server.pid == os.getpid():
        try:
            os.unlink(server.path)
        except OSError:
            pass


def _server_injected() -> bool:
    return _server is not None and _server.on_detach is not None


def _forget(server: Server) -> None:
    """After an injected agent's client detached: remove the recorder as well."""
    global _recorder, _server
    with _lock:
        if _server is not server and _server is not None:
            return  # a new injection has set up its own agent since
        _server = None
        if _recorder is not None and not _recorder_asked:
            _drop_recording(_recorder)
            _recorder = None


def serve_injected(idle: float = INJECTED_IDLE_S) -> str:
    """Entry point of the injected bootstrap: record from now on and listen.  If it cannot
    listen, nothing of it stays (the recorder it installed is removed again)."""
    global _page_to_release
    server = _server
    if server is not None and server.stopping:
        # The last client detached a moment ago and its server is still closing (it would
        # then remove the recorder and listener this injection is about to set up): wait.
        server.stop(wait=True)
    forksafe.this_thread()  # the bootstrap's thread
    had_recorder = _recorder is not None
    try:
        _install()  # not install(): a recording the program did not ask for (see forksafe)
        _page_to_release = True
        try:
            return listen(injected=True, idle=idle)
        except BaseException:
            if not had_recorder:
                uninstall()
            raise
    except BaseException as e:
        report_start_failure(e)  # the injected bootstrap swallows it: tell the client
        raise


def _objects_counted(n: int) -> None:
    """A scan's object count, as a progress line for the client that asked for progress."""
    _tell_client({"objects": n})


def _handlers() -> dict[str, Any]:
    def scan_for(req: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[int, str]]]:
        collect = bool(req.get("collect", True))
        if req.get("progress") is True:
            return scan(collect=collect, progress=_objects_counted)
        return scan(collect=collect)

    def do_scan(req: dict[str, Any]) -> dict[str, Any]:
        # Generation events up to this number are in the report: a follower waits for the
        # ones after it (taken before the scan, so that none falls between the two).
        rec = _recorder
        sequence = rec.sequence if rec is not None else 0
        doc, sources = scan_for(req)
        return {
            "report": doc,
            "sources": _texts(sources),
            "facts": snapfile.process_facts(),
            "sequence": sequence,
        }

    def do_snapshot(req: dict[str, Any]) -> str:
        doc, sources = scan_for(req)
        path = req.get("path") or os.path.join(os.getcwd(), snapfile.default_name())
        return snapfile.write(str(path), snapfile.document(doc, sources))

    def do_release(req: dict[str, Any]) -> bool | str:
        """Unmap the page the injector wrote the bootstrap into (it has run by now); "client"
        when the client must do it."""
        address, size = req.get("address"), req.get("size")
        if not (_server_injected() and type(address) is int and type(size) is int):
            return False
        global _page_to_release
        if not _page_to_release:
            return False
        _page_to_release = False
        if "_ctypes" not in sys.modules:
            # Loading ctypes can leave a file descriptor open for good (libffi 3.5's static
            # trampolines keep libffi.so open): the client unmaps the page with gdb instead.
            return "client"
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
        ok = libc.munmap(ctypes.c_void_p(address), ctypes.c_size_t(size)) == 0
        return ok

    def do_source(req: dict[str, Any]) -> str | None:
        rec = _recorder.records.get(str(req.get("module"))) if _recorder else None
        if rec is None:
            return None
        n = req.get("generation")
        gens = [g for g in rec.generations if g.number == n]
        return gens[0].text if gens else None

    def do_fix(req: dict[str, Any]) -> dict[str, Any]:
        """The repair plan (``apply`` false), or the plan carried out and the scan run again
        (``only``: the keys of the changes reviewed; absent: all of the new plan)."""
        from . import repair

        remove = req.get("remove_leftovers") is True
        collect = bool(req.get("collect", True))
        if req.get("apply") is not True:
            return repair.plan(_recorder, remove_leftovers=remove, collect=collect)
        asked = req.get("only")
        only = [k for k in asked if type(k) is str] if type(asked) is list else None
        return repair.apply(_recorder, remove_leftovers=remove, only=only, collect=collect)

    return {
        "ping": lambda req: "pong",
        "fix": do_fix,
        "wait": wait_events,
        "scan": do_scan,
        "snapshot": do_snapshot,
        "source": do_source,
        "release": do_release,
    }


def wait_events(req: dict[str, Any]) -> dict[str, Any]:
    """The ``wait`` request: the generation events after ``req["after"]``, once there are
    some, the ``timeout`` passed, or the client has more to say (see server.py).  Blocks on
    the recorder's condition in slices of ``WAIT_SLICE_S``: no busy loop."""
    import time

    after = req.get("after")
    asked: Any = req.get("timeout")
    timeout = float(asked) if type(asked) in (int, float) and asked >= 0 else 0.0
    deadline = time.monotonic() + min(timeout, MAX_WAIT_S)
    while True:
        rec = _recorder
        if rec is None or not rec.finder.active:
            return {"sequence": 0, "events": [], "missed": False, "recording": False}
        events: list[tuple[int, str, int, str, str, bool]] = []
        if type(after) is not int:
            seq, missed = rec.sequence, False
        else:
            seq, events, missed = rec.events_after(after)
        left = deadline - time.monotonic()
        if events or missed or type(after) is not int or left <= 0 or _interrupted():
            return {
                "sequence": seq,
                "events": [
                    {
                        "sequence": n,
                        "module": module,
                        "generation": number,
                        "status": status,
                        "kind": kind,
                        "reload": reload,
                    }
                    for n, module, number, status, kind, reload in events
                ],
                "missed": missed,
                "recording": True,
            }
        rec.wait_change(seq, min(left, WAIT_SLICE_S))


def _texts(sources: dict[str, dict[int, str]]) -> dict[str, dict[str, str]]:
    return {m: {str(g): t for g, t in gens.items()} for m, gens in sources.items()}


def recorder() -> Recorder | None:
    return _recorder


def scan(
    *, collect: bool = True, **budget: Any
) -> tuple[dict[str, Any], dict[str, dict[int, str]]]:
    """The report document of this process, and the recorded source texts.  ``progress``
    (among ``budget``), when given, hears the number of objects the scan looks at."""
    return _scan(_recorder, collect=collect, **budget)


def _in_forked_child() -> None:
    """A child forked from this process (see forksafe.py): none of the parent's threads runs
    here, so no lock it held is ever released, and the listener is the parent's.  Fresh locks;
    the parent's socket descriptors closed (its file stays, it is the parent's); an injected
    recorder removed, an asked-for one kept recording."""
    global _lock, _server, _recorder, _page_to_release
    _lock = threading.Lock()
    evidence.after_fork_in_child()
    _page_to_release = False
    server, _server = _server, None
    if server is not None:
        server.forget_in_child()
    rec = _recorder
    if rec is not None:
        rec.after_fork()
        if not _recorder_asked:
            _recorder = None
            _drop_recording(rec)


forksafe.on_child(_in_forked_child)
forksafe.loading_over()
# The last statement: a module without it did not finish loading (a child forked meanwhile);
# the injector's bootstrap loads a fresh agent then (attach/inject.py).
forksafe.package_ready = True
_READY = True
