"""Starting an agent inside a process that has none: gdb, or ``sys.remote_exec`` (3.14+).

The bootstrap is Python that cannot raise: it carries the agent's source text and starts a
thread that loads the agent from it under a private module name and listens (no file reads in
the target: each would give up the GIL, slow when threads compete for it).  gdb copies it
into a fresh mmap'd page (so gdb never calls malloc in the target), then runs it one of two
ways, chosen by what the main thread is doing (FIELD-NOTES, "Attaching"):

- main thread blocked in a known system call (sleep, read, select, poll, wait...): call
  ``PyGILState_Ensure`` / ``PyRun_SimpleString`` / ``PyGILState_Release`` directly; it has
  released the GIL, so this cannot deadlock;
- otherwise (running Python, or waiting on a lock that may be the GIL): schedule the bootstrap
  with ``Py_AddPendingCall``, which the main thread runs at its next bytecode boundary.

On 3.14+ a target of this interpreter's own version and user whose main thread runs Python
gets the bootstrap through ``sys.remote_exec`` instead (no ptrace stop at all; see
``remote_exec_usable``); every other case takes gdb.

Every step is time-bound; the agent's socket appearing is the proof it worked.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import stat
import sys
import tempfile
import threading
import time
from pathlib import Path

from .client import AttachError, agent_place, other_mount_ns, runtime_dir, start_failure
from .gdbmi import Gdb, GdbGone, Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

AGENT_DIR = Path(__file__).resolve().parent.parent / "agent"
PRIVATE_NAME = "_reloadscope_agent"
# Starting the agent imports a few standard modules (json, socket), each a few file reads that
# give up the GIL: with several CPU-bound threads competing for it that takes seconds.
START_TIMEOUT = 30.0
PAGE = 4096  # the bootstrap page is a whole number of these

# x86_64 system calls in which a thread waits with the GIL released.
_BLOCKING_X86_64 = {
    0,  # read
    7,  # poll
    23,  # select
    35,  # nanosleep
    43,  # accept
    45,  # recvfrom
    47,  # recvmsg
    61,  # wait4
    230,  # clock_nanosleep
    232,  # epoll_wait
    270,  # pselect6
    271,  # ppoll
    281,  # epoll_pwait
    288,  # accept4
}
_BLOCKING_AARCH64 = {63, 73, 72, 101, 115, 202, 207, 212, 260, 22, 242}

BOOT = """
import sys, _thread
def _reloadscope_boot(packed, Finder, failed):
    # Everything this thread needs comes in as arguments: the code that started it deletes
    # its names at once, and may well be faster than this thread (FIELD-NOTES).
    try:
        agent = sys.modules.get(NAME)
        locks = sys.modules["_frozen_importlib"]._module_locks
        ref = locks.get(NAME)
        owner = getattr(ref() if ref is not None else None, "owner", None)
        if owner or (agent is not None and getattr(agent.__spec__, "_initializing", False)):
            # Half loaded, or its import begun (its lock taken, no module yet): inherited by a
            # child forked while its parent loaded the agent.  Unless a live thread is loading
            # it still, forget it and every import lock the dead loading thread held (a held
            # lock would hang any later import of that name).
            # Not this thread's: a new thread here may get the ident a dead one had.
            me = _thread.get_ident()
            if owner in (None, 0, me) or owner not in sys._current_frames():
                ours = lambda k: k == NAME or k.startswith(NAME + ".")
                for key, ref in list(locks.items()):
                    if ours(key) or (owner and getattr(ref(), "owner", None) == owner):
                        del locks[key]
                        spec = getattr(sys.modules.get(key), "__spec__", None)
                        if getattr(spec, "_initializing", False):
                            del sys.modules[key]
                for key in [k for k in sys.modules if ours(k)]:
                    del sys.modules[key]
                agent = None
        if agent is None:
            parts = packed.split("\\0")
            finder = Finder(
                {parts[i]: (parts[i + 1], parts[i + 2]) for i in range(0, len(parts) - 2, 3)})
            del parts
            sys.meta_path.insert(0, finder)
            try:
                __import__(NAME)
            finally:
                sys.meta_path.remove(finder)
                finder.sources = None
            agent = sys.modules[NAME]
        if not NATIVE:  # the CLI's environment turned the native helper off
            try:
                __import__(NAME + ".native")
                sys.modules[NAME + ".native"].disable()
            except Exception:  # an agent of an older reloadscope has none
                pass
        try:
            agent.serve_injected(IDLE)
        except TypeError:  # an agent of an older reloadscope, loaded by an earlier attach
            agent.serve_injected()
    except BaseException as e:
        # Say why where the client looks (the agent's own words when it got that far).
        try:
            # The agent said it already when it marked this exception, or one this one was
            # raised while handling (importlib's cleanup, under a low recursion limit).
            said, c = False, e
            for _ in range(20):
                if c is None or said:
                    break
                said = getattr(c, "_reloadscope_reported", False) is True
                c = c.__context__
            if not said:
                report = getattr(sys.modules.get(NAME), "report_start_failure", None)
                if report is None or not report(e):
                    exec(failed, {"e": e})
        except BaseException:
            pass
class Finder:
    # Serves the agent's modules from the text the injector sent: loading them from files
    # would be dozens of small reads, each giving up the GIL (slow when threads compete).
    _reloadscope_boot = True  # how the agent's fork hooks know it (forksafe)
    def __init__(self, sources):
        self.sources = sources
    def find_spec(self, name, path=None, target=None):
        if name not in self.sources:
            return None
        spec = type(sys.__spec__)(
            name, self, origin=self.sources[name][0], is_package=name == NAME)
        if name == NAME:
            spec.submodule_search_locations = [DIR]
        spec.has_location = True
        return spec
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        filename, text = self.sources[module.__spec__.name]
        exec(compile(text, filename, "exec"), module.__dict__)
# _thread, not threading: starting returns at once, without waiting for the new thread to
# take the GIL (this runs inside a call gdb made, which must stay short).
_thread.start_new_thread(_reloadscope_boot, (SOURCES, Finder, FAILED))
# Nothing here may refer back to this namespace once the thread is done with it: the target may
# never run a collection, and a reference cycle would keep the sources (100+ KB) per attach.
del SOURCES, _reloadscope_boot, Finder, FAILED
"""

# Run with ``e`` bound to why the bootstrap failed before the agent could say it itself: one
# line in the private directory where the client looks (``client.start_failure``), written as
# the agent's ``report_start_failure`` does.  Needs nothing but os and sys, and little depth.
# The line is written to a temporary file first and renamed into place, so the client never
# reads it half written; the rename replaces a file of that name, which can only be older news
# (this process's PID used by an earlier process, or an earlier injection nobody asked about):
# when the agent has written this injection's own, the bootstrap does not run this at all.
FAILED = r"""
import os, sys
try:
    ns = os.stat("/proc/self/ns/pid").st_ino
except OSError:
    ns = None
name = str(os.getpid()) if ns in (None, 0xEFFFFFFC) else "%d.ns%d" % (os.getpid(), ns)
d = "/tmp/reloadscope-%d" % os.getuid()
try:
    os.mkdir(d, 0o700)
except FileExistsError:
    pass
st = os.lstat(d)
if st.st_uid == os.getuid() and not st.st_mode & 0o077 and (st.st_mode & 0o170000) == 0o040000:
    text = ("%s: %s" % (type(e).__name__, e))[:400].replace("\n", " ")
    if type(e) is RecursionError:
        text += " (the process's recursion limit is %d)" % sys.getrecursionlimit()
    path = d + "/" + name + ".failed"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    try:
        fd = os.open(path + ".tmp", flags, 0o600)
    except FileExistsError:  # left by a process that died writing it
        os.unlink(path + ".tmp")
        fd = os.open(path + ".tmp", flags, 0o600)
    try:
        os.write(fd, text.encode("utf-8", "replace") + b"\n")
    finally:
        os.close(fd)
    os.replace(path + ".tmp", path)
"""


def agent_sources() -> str:
    """The agent's modules under their private names, packed as one string: name, file name
    and source text of each, separated by NUL (one string literal is cheap for the target to
    parse, and is unpacked only when the agent is not loaded yet)."""
    parts = []
    for path in sorted(AGENT_DIR.glob("*.py")):
        name = PRIVATE_NAME if path.stem == "__init__" else f"{PRIVATE_NAME}.{path.stem}"
        parts += [name, str(path), path.read_text(encoding="utf-8")]
    if any("\0" in p for p in parts):
        raise AttachError(f"a NUL character in the agent's files under {AGENT_DIR}")
    return "\0".join(parts)


def idle_timeout() -> float:
    """Seconds an injected agent waits for its first client before it leaves by itself
    (``RELOADSCOPE_AGENT_IDLE_S`` in the CLI's environment; default 30)."""
    try:
        value = float(os.environ.get("RELOADSCOPE_AGENT_IDLE_S", "30"))
    except ValueError:
        value = 30.0
    return min(max(value, 0.5), 3600.0)


def bootstrap() -> str:
    """The string the target runs: valid Python that binds nothing in ``__main__`` and cannot
    raise (an exception there would kill the target).  It carries the agent's source."""
    body = (
        BOOT.replace("NAME", repr(PRIVATE_NAME))
        .replace("DIR", repr(str(AGENT_DIR)))
        .replace("IDLE", repr(idle_timeout()))
        .replace("NATIVE", repr(os.environ.get("RELOADSCOPE_NATIVE", "") != "0"))
    )
    code = (
        f"try:\n    exec({body!r}, {{'SOURCES': {agent_sources()!r}, 'FAILED': {FAILED!r}}})\n"
        f"except BaseException as e:\n    try:\n        exec({FAILED!r}, {{'e': e}})\n"
        "    except BaseException:\n        pass\n"
    )
    compile(code, "<reloadscope-bootstrap>", "exec")  # never send something that cannot run
    return code


def main_thread_blocked(pid: int) -> bool:
    """Is the main thread waiting in a system call that released the GIL?"""
    try:
        fields = Path(f"/proc/{pid}/syscall").read_text().split()
    except OSError:
        return False
    if not fields or not fields[0].lstrip("-").isdigit():
        return False  # "running"
    number = int(fields[0])
    machine = platform.machine()
    known = _BLOCKING_X86_64 if machine in ("x86_64", "AMD64") else _BLOCKING_AARCH64
    return number in known


def _permission_help(pid: int) -> str:
    try:
        scope = Path("/proc/sys/kernel/yama/ptrace_scope").read_text().strip()
    except OSError:
        scope = None
    if scope and scope != "0" and os.getuid() != 0:
        return (
            f"the kernel forbids attaching to process {pid} (kernel.yama.ptrace_scope = "
            f"{scope}); run as root, or 'sudo sysctl kernel.yama.ptrace_scope=0', or start "
            "the program with 'reloadscope run' so no injection is needed"
        )
    return (
        f"permission denied attaching to process {pid}: attaching needs ptrace rights (in a "
        "container, add CAP_SYS_PTRACE: 'docker run --cap-add=SYS_PTRACE'); or start the "
        "program with 'reloadscope run' / call reloadscope.install() in it"
    )


def remote_exec_usable(pid: int, uid: int | None, version: str | None) -> bool:
    """Can this process hand ``pid`` the bootstrap with ``sys.remote_exec`` (PEP 768)?

    Only this very interpreter calls it, and only for a target of its own major.minor (the
    protocol requires that) and its own user (the script must be readable by the target, and
    is written where only we can write).  Running another interpreter, the target's own
    executable above all, would execute a file someone else may control.  A main thread
    blocked in a system call would run the script only once it next runs bytecode: gdb's
    direct call serves that case.  Remote debugging may be switched off in the target; then
    ``sys.remote_exec`` refuses at once and gdb is used as well.
    """
    if version is None or not hasattr(sys, "remote_exec"):
        return False
    if version.split(".")[:2] != [str(v) for v in sys.version_info[:2]]:
        return False
    if _free_threaded(pid) != ("t" in getattr(sys, "abiflags", "")):
        return False  # the protocol needs the same build, free-threaded or not
    if uid is not None and uid != os.getuid():
        return False
    if other_mount_ns(pid):
        return False  # the script's path would name another file system there
    return not main_thread_blocked(pid)


# How long a sys.remote_exec bootstrap may take before a blocked main thread sends us to gdb.
REMOTE_EXEC_PATIENCE = 3.0


def _free_threaded(pid: int) -> bool | None:
    from .elfinfo import interpreter

    found = interpreter(pid)
    return None if found is None else found.free_threaded


def _remote_exec(pid: int, uid: int | None) -> bool:
    """Schedule the bootstrap with ``sys.remote_exec`` and wait for the agent.  False when it
    cannot serve: the target refused (remote debugging disabled in it), or its main thread
    blocked in a system call before reaching the script (gdb then wakes it).

    The script removes itself when it runs, whenever that is: removing it here first would
    make a target that runs it later print "Can't open debugger script" on its stderr.  A
    script of a process that exited since is removed by the next attach."""
    directory = runtime_dir(uid)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    st = os.lstat(directory)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise AttachError(
            f"{directory} is not a private directory of this user: remove it and try again"
        )
    _remove_orphan_scripts(directory)
    script = os.path.join(directory, f"boot-{pid}-{os.getpid()}-{time.monotonic_ns()}.py")
    fd = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        unlink = f"__import__('os').unlink({script!r})"
        fh.write(f"try:\n    {unlink}\nexcept BaseException:\n    pass\n")
        fh.write(bootstrap())
    try:
        sys.remote_exec(pid, script)  # type: ignore[attr-defined]
    except BaseException as e:
        os.unlink(script)  # never scheduled
        if isinstance(e, PermissionError):
            raise AttachError(_permission_help(pid)) from None
        if isinstance(e, ProcessLookupError):
            raise AttachError(f"process {pid} exited while attaching") from None
        if isinstance(e, (RuntimeError, OSError)):
            return False  # remote debugging disabled in the target, or not a usable build
        raise
    began = time.time()
    if not _wait_for_agent(
        pid, uid, REMOTE_EXEC_PATIENCE, final=False, began=began
    ) and main_thread_blocked(pid):
        # gdb takes over.  The script stays scheduled (it cannot be taken back): when it
        # runs, it only removes itself, and starts no second agent after this one has gone.
        _neutralize(script, unlink)
        return False
    try:
        _wait_for_agent(pid, uid, began=began)
    except BaseException:
        _neutralize(script, unlink)
        raise
    return True


def _neutralize(script: str, unlink: str) -> None:
    """Rewrite a scheduled script that has not run (it removes itself when it runs) so that
    it does nothing but remove itself."""
    try:
        fd = os.open(script, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
    except OSError:
        return  # it ran already (and removed itself)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f"try:\n    {unlink}\nexcept BaseException:\n    pass\n")


def _remove_orphan_scripts(directory: str) -> None:
    for name in os.listdir(directory):
        parts = name.split("-")
        mine = name.startswith("boot-") and name.endswith(".py") and parts[1].isdigit()
        if mine and not os.path.exists(f"/proc/{parts[1]}"):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass


def _wait_for_agent(
    pid: int,
    uid: int | None,
    timeout: float = START_TIMEOUT,
    *,
    final: bool = True,
    began: float | None = None,
) -> bool:
    """Wait until the agent of ``pid`` listens; False after ``timeout`` (an AttachError when
    ``final``).  An agent that could not start says why (``client.start_failure``): that ends
    the wait at once."""
    deadline = time.monotonic() + timeout
    path = os.path.join(*agent_place(pid, os.getuid() if uid is None else uid))
    asked = 0.0
    while not os.path.exists(path):
        if not os.path.exists(f"/proc/{pid}"):
            raise AttachError(f"process {pid} exited while attaching")
        if began is not None and time.monotonic() - asked > 0.25:
            asked = time.monotonic()
            why = start_failure(pid, uid, since=began)
            if why is not None:
                raise AttachError(
                    f"the agent could not start in process {pid}: {why}; start the program "
                    "with 'reloadscope run' or call reloadscope.install() in it"
                )
        if time.monotonic() > deadline:
            if not final:
                return False
            raise AttachError(
                f"the agent did not start in process {pid} within {timeout:.0f} s after the "
                "bootstrap ran; start the program with 'reloadscope run' to avoid injection"
            )
        time.sleep(0.02)
    return True


def page_size(code: str | None = None) -> int:
    """Bytes of the page ``code`` (the bootstrap by default) is written to: a whole number of
    memory pages holding it and its terminating NUL."""
    if code is None:
        code = bootstrap()
    return -(-(len(code.encode()) + 1) // PAGE) * PAGE


def inject(
    pid: int,
    uid: int | None = None,
    version: str | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Start an agent in ``pid`` and wait until it listens.  ``progress`` hears how
    ("injecting the agent into PID 123 (gdb)").  On any failure, timeout or Ctrl-C the target
    is left as it was (see the module's docstring)."""
    if remote_exec_usable(pid, uid, version):
        if progress is not None:
            progress(f"injecting the agent into PID {pid} (sys.remote_exec)")
        if _remote_exec(pid, uid):
            return
    if progress is not None:
        progress(f"injecting the agent into PID {pid} (gdb)")
    began = time.time()
    with _ctrl_c_deferred() as interrupted:
        _inject_with_gdb(pid, interrupted)
    if interrupted:
        raise KeyboardInterrupt
    _wait_for_agent(pid, uid, began=began)


# x86_64 system calls Python's own wrappers retry after EINTR, checking for signals first (PEP
# 475): a main thread interrupted in one of them is let see EINTR, as a signal would.
_NUDGE_X86_64 = {
    0: "read",
    1: "write",
    7: "poll",
    23: "select",
    35: "nanosleep",
    43: "accept",
    45: "recvfrom",
    47: "recvmsg",
    61: "wait4",
    202: "futex",
    230: "clock_nanosleep",
    232: "epoll_wait",
    247: "waitid",
    270: "pselect6",
    271: "ppoll",
    281: "epoll_pwait",
    288: "accept4",
    441: "epoll_pwait2",
}
# What the kernel leaves in rax for a system call it will restart after the stop:
# ERESTARTSYS, ERESTARTNOHAND, ERESTART_RESTARTBLOCK (never ERESTARTNOINTR).
_RESTARTING = {-512, -514, -516}
_EINTR = -4


def safe_point_budget() -> float:
    """Seconds the target is given to reach a safe point (``RELOADSCOPE_SAFE_POINT_S``)."""
    try:
        value = float(os.environ.get("RELOADSCOPE_SAFE_POINT_S", "10"))
    except ValueError:
        value = 10.0
    return min(max(value, 0.5), 600.0)


class _Flag:
    def __init__(self) -> None:
        self.set = False

    def __bool__(self) -> bool:
        return self.set


@contextlib.contextmanager
def _ctrl_c_deferred() -> Iterator[_Flag]:
    """Ctrl-C while gdb holds the target only asks for a clean stop: the flag is raised and
    the injection winds down (gdb detached, the target as it was) before KeyboardInterrupt."""
    flag = _Flag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: object) -> None:
        flag.set = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _gdb_error(pid: int, text: str) -> AttachError:
    if "Operation not permitted" in text or "Could not attach" in text:
        return AttachError(_permission_help(pid))
    if "No such process" in text:
        return AttachError(f"process {pid} exited while attaching")
    if "No symbol" in text and "Py" in text:
        return AttachError(
            f"process {pid} has no CPython symbols gdb can call (a Python "
            "built without exported symbols?); start it with 'reloadscope run'"
        )
    return AttachError(f"gdb could not attach to process {pid}: {text}")


def _inject_with_gdb(pid: int, interrupted: _Flag) -> None:
    code = bootstrap()
    size = page_size(code)
    with tempfile.NamedTemporaryFile(prefix="reloadscope-boot-", suffix=".bin") as fh:
        fh.write(code.encode() + b"\0")
        fh.flush()
        gdb = Gdb(pid)
        try:
            try:
                gdb.attach()
            except AttachError as e:
                if isinstance(e, GdbGone):
                    raise  # says what happened to gdb already
                raise _gdb_error(pid, str(e)) from None
            _run_at_a_safe_point(gdb, pid, fh.name, size, interrupted)
        finally:
            gdb.close()


def _run_at_a_safe_point(gdb: Gdb, pid: int, boot_file: str, size: int, interrupted: _Flag) -> None:
    x86 = platform.machine() in ("x86_64", "AMD64")
    first_arg = "$rdi" if x86 else "$x0"
    threads = gdb.threads()
    main = threads.get(pid)
    setup = _thread_in_a_system_call(gdb, [main, *threads.values()]) if x86 else None
    try:
        address = int(gdb.call(f"(long)mmap(0, {size}, 3, 34, -1, 0)", thread=setup))
    except AttachError as e:
        raise _gdb_error(pid, str(e)) from None
    if address in (-1, 0):
        gdb.detach()
        raise AttachError(f"could not map a page in process {pid} for the bootstrap")
    hit: Record | None = None
    why = ""
    thread = setup  # where calls are made: the breakpoint's thread once one is hit
    points: list[str] = []
    running = False
    try:
        # gdb copies the file into the page itself: the target reads nothing.
        gdb.console_command(f"restore {boot_file} binary {address}")
        scheduled = gdb.call(
            "(int)Py_AddPendingCall((int(*)(void*))PyCallable_Check, (void*)0)", thread=setup
        )
        if scheduled.strip() == "0":  # else the queue is full, or the interpreter finalizing
            points.append(gdb.break_insert("*PyCallable_Check", condition=f"{first_arg} == 0"))
        if main is not None:
            points.append(gdb.break_insert("*PyErr_CheckSignals", thread=main))
            why = _nudge(gdb, main) if x86 else ""
        deadline = time.monotonic() + safe_point_budget()
        gdb.resume()
        running = True
        while hit is None:
            stop = gdb.wait_stop(min(deadline, time.monotonic() + 0.05))
            if stop is not None:
                running = False
                reason = str(stop.fields.get("reason", ""))
                if reason.startswith("exited"):
                    raise AttachError(f"process {pid} exited while attaching")
                if reason == "breakpoint-hit":
                    hit = stop
                else:  # not one of ours: let it run on
                    gdb.resume()
                    running = True
                continue
            if interrupted or time.monotonic() >= deadline:
                stop = gdb.interrupt()
                running = False
                if stop is not None and stop.fields.get("reason") == "breakpoint-hit":
                    hit = stop  # hit at the very moment of the interrupt
                break
        # Before any call: a breakpoint hit by another thread during a call would make gdb
        # abandon the call half done.
        while points:
            gdb.command(f"-break-delete {points.pop()}")
        if hit is not None:
            thread = str(hit.fields.get("thread-id", "")) or setup
            if not interrupted:
                gdb.call(f"(int)PyRun_SimpleString((char*){address})", thread=thread)
        gdb.call(f"(int)munmap({address}, {size})", thread=thread)
        gdb.detach()
    except BaseException:
        _leave(gdb, running, points, f"(int)munmap({address}, {size})", thread)
        raise
    if hit is None and not interrupted:
        raise AttachError(
            f"process {pid} did not reach a point where Python code can safely run within "
            f"{safe_point_budget():.0f} s ({why or 'a thread may hold the GIL in a long call'}); "
            "nothing in it was changed and it runs on. Try again later, or start the program "
            "with 'reloadscope run' or call reloadscope.install() in it, which need no injection"
        )


def _leave(gdb: Gdb, running: bool, points: list[str], unmap: str, thread: str | None) -> None:
    """After a failure: stop the target if it runs, remove what was put in, detach.  Best
    effort (gdb may be gone); detaching removes any breakpoint left anyway."""
    steps: list[Callable[[], object]] = []
    if running:
        steps.append(gdb.interrupt)
    steps += [lambda n=n: gdb.command(f"-break-delete {n}") for n in points]  # type: ignore[misc]
    steps += [lambda: gdb.call(unmap, thread=thread), gdb.detach]
    for step in steps:
        try:
            step()
        except (AttachError, KeyboardInterrupt):
            continue


def _thread_in_a_system_call(gdb: Gdb, candidates: list[str | None]) -> str | None:
    """A thread gdb stopped inside a system call, for the calls made before any safe point
    (mmap, Py_AddPendingCall): it is in no critical section of the interpreter's, and holds no
    live vector state (a libc wrapper's caller expects them clobbered).  None: gdb's choice."""
    for thread in candidates:
        if thread is None:
            continue
        try:
            if int(gdb.call("$orig_rax", thread=thread)) >= 0:
                return thread
        except (AttachError, ValueError):
            continue
    return None


def _nudge(gdb: Gdb, main: str) -> str:
    """Let the main thread see EINTR if it was stopped inside a system call that Python's
    wrappers retry; returns what it was doing, for a refusal's reason."""
    try:
        number = int(gdb.call("$orig_rax", thread=main))
        result = int(gdb.call("$rax", thread=main))
    except (AttachError, ValueError):
        return ""
    name = _NUDGE_X86_64.get(number)
    if number < 0:
        return "its main thread runs C code and has not returned to Python"
    if name is None or result not in _RESTARTING:
        return f"its main thread is in system call {number}"
    gdb.call(f"$rax = {_EINTR}", thread=main)
    return f"its main thread, woken from {name}(), did not get the GIL: another thread holds it"
