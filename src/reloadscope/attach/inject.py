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

import os
import platform
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .client import AttachError, agent_place, other_mount_ns, runtime_dir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

AGENT_DIR = Path(__file__).resolve().parent.parent / "agent"
PRIVATE_NAME = "_reloadscope_agent"
GDB_TIMEOUT = 20.0
# Starting the agent imports a few standard modules (json, socket), each a few file reads that
# give up the GIL: with several CPU-bound threads competing for it that takes seconds.
START_TIMEOUT = 30.0
PAGE = 4096  # the bootstrap page is a whole number of these
_NO_SUCH_DIR = "/nonexistent/reloadscope"

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
import sys, threading
def _reloadscope_boot(packed):
    try:
        agent = sys.modules.get(NAME)
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
        try:
            agent.serve_injected(IDLE)
        except TypeError:  # an agent of an older reloadscope, loaded by an earlier attach
            agent.serve_injected()
    except BaseException:
        pass
class Finder:
    # Serves the agent's modules from the text the injector sent: loading them from files
    # would be dozens of small reads, each giving up the GIL (slow when threads compete).
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
threading.Thread(
    target=_reloadscope_boot, args=(SOURCES,), name="reloadscope-boot", daemon=True).start()
# Nothing here may refer back to this namespace once the thread is done with it: the target may
# never run a collection, and a reference cycle would keep the sources (100+ KB) per attach.
del SOURCES, _reloadscope_boot, Finder
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
    )
    code = (
        f"try:\n    exec({body!r}, {{'SOURCES': {agent_sources()!r}}})\n"
        "except BaseException:\n    pass\n"
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


def _gdb(pid: int, commands: list[str]) -> str:
    gdb = shutil.which("gdb")
    if gdb is None:
        raise AttachError(
            "gdb is needed to attach to a process without an agent: install it "
            "('apt-get install gdb'), or start the program with 'reloadscope run' or call "
            "reloadscope.install() in it, which need no injection"
        )
    args = [
        gdb,
        # Before the target is read: gdb loads nothing the target's user could have placed
        # (no init files, no auto-loaded scripts beside its libraries, no libthread_db from
        # its library directory, no debuginfod download).
        "-nx",
        "-nh",
        "-iex",
        "set auto-load off",
        "-iex",
        f"set libthread-db-search-path {_NO_SUCH_DIR}",
        "-iex",
        "set debuginfod enabled off",
        "-p",
        str(pid),
        "-batch",
        "-q",
        "-ex",
        "set pagination off",
        "-ex",
        "set confirm off",
        "-ex",
        "set scheduler-locking off",
    ]
    for c in commands:
        args += ["-ex", c]
    args += ["-ex", "detach", "-ex", "quit"]
    try:
        p = subprocess.run(
            args, capture_output=True, text=True, timeout=GDB_TIMEOUT, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise AttachError(
            f"gdb did not finish within {GDB_TIMEOUT:.0f} s attaching to process "
            f"{pid}; it was stopped"
        ) from None
    out = p.stdout + p.stderr
    if "ptrace: Operation not permitted" in out or "Could not attach" in out:
        raise AttachError(_permission_help(pid))
    if "No such process" in out or "ptrace: No such process" in out:
        raise AttachError(f"process {pid} exited while attaching")
    if "No symbol" in out and "Py_" in out:
        raise AttachError(
            f"process {pid} has no CPython symbols gdb can call (a Python "
            "built without exported symbols?); start it with 'reloadscope run'"
        )
    return out


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
    if uid is not None and uid != os.getuid():
        return False
    if other_mount_ns(pid):
        return False  # the script's path would name another file system there
    return not main_thread_blocked(pid)


def _remote_exec(pid: int, uid: int | None) -> bool:
    """Schedule the bootstrap with ``sys.remote_exec`` and wait for the agent.  False when the
    target refused (remote debugging disabled in it): nothing was scheduled, use gdb."""
    directory = runtime_dir(uid)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    st = os.lstat(directory)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise AttachError(
            f"{directory} is not a private directory of this user: remove it and try again"
        )
    script = os.path.join(directory, f"boot-{pid}-{os.getpid()}-{time.monotonic_ns()}.py")
    fd = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(bootstrap())
        try:
            sys.remote_exec(pid, script)  # type: ignore[attr-defined]
        except PermissionError:
            raise AttachError(_permission_help(pid)) from None
        except ProcessLookupError:
            raise AttachError(f"process {pid} exited while attaching") from None
        except (RuntimeError, OSError):
            return False  # remote debugging disabled in the target, or not a usable build
        _wait_for_agent(pid, uid)
        return True
    finally:
        try:
            os.unlink(script)
        except OSError:
            pass


def _wait_for_agent(pid: int, uid: int | None) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    path = os.path.join(*agent_place(pid, os.getuid() if uid is None else uid))
    while not os.path.exists(path):
        if not os.path.exists(f"/proc/{pid}"):
            raise AttachError(f"process {pid} exited while attaching")
        if time.monotonic() > deadline:
            raise AttachError(
                f"the agent did not start in process {pid} within {START_TIMEOUT:.0f} s (its "
                "main thread may be stuck outside Python); start the program with "
                "'reloadscope run' to avoid injection"
            )
        time.sleep(0.02)


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
) -> tuple[int, int] | None:
    """Start an agent in ``pid`` and wait until it listens; returns the bootstrap page's address
    and size (the agent unmaps it when asked: ``Session`` does).  ``progress`` hears how
    ("injecting the agent into PID 123 (gdb)")."""
    if remote_exec_usable(pid, uid, version):
        if progress is not None:
            progress(f"injecting the agent into PID {pid} (sys.remote_exec)")
        if _remote_exec(pid, uid):
            return None
    if progress is not None:
        progress(f"injecting the agent into PID {pid} (gdb)")
    code = bootstrap()
    data = code.encode() + b"\0"
    size = page_size(code)
    with tempfile.NamedTemporaryFile(prefix="reloadscope-boot-", suffix=".bin") as fh:
        fh.write(data)
        fh.flush()
        setup = [
            f"set $rs_buf = (char*)mmap(0, {size}, 3, 34, -1, 0)",
            'printf "rs_buf=%lu\\n", (unsigned long)$rs_buf',
            # gdb copies the file into the page itself: the target reads nothing.
            f"restore {fh.name} binary (long)$rs_buf",
        ]
        direct = main_thread_blocked(pid)
        if direct:
            run = [
                "set $rs_gil = (int)PyGILState_Ensure()",
                "print (int)PyRun_SimpleString($rs_buf)",
                "call (void)PyGILState_Release($rs_gil)",
                # The bootstrap has run (compiled first, so the text is no longer read).
                f"call (int)munmap($rs_buf, {size})",
            ]
        else:
            run = ["print (int)Py_AddPendingCall((int(*)(void*))PyRun_SimpleString, $rs_buf)"]
        out = _gdb(pid, setup + run)
    found = re.search(r"rs_buf=(\d+)", out)
    _wait_for_agent(pid, uid)
    return (int(found.group(1)), size) if found and not direct else None


def unmap(pid: int, address: int, size: int) -> None:
    """Release the bootstrap page with gdb (the agent could not: see its "release")."""
    _gdb(pid, [f"call (int)munmap({address}, {size})"])
