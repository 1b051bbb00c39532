"""Fork and the agent (FIELD-NOTES, "Fork and the agent"), against real processes: a master
forks a child every 10 ms while ``reloadscope report MASTER`` injects the agent into it and
scans it (or scans it through ``install()``'s listener).  Every child must come out with the
collector on, no finder, thread, socket or listener of the agent it did not ask for, and must
be attachable itself; the master prints no fork DeprecationWarning the agent's thread caused.

Each child notes what it inherited before the agent's fork hooks run (the master registers its
own hook first: children run them in registration order), so the test knows which moments the
forks hit; the first child of each kind of moment stays alive to be reported on."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reloadscope.agent.server import socket_path
from scenario import SRC, pythons, version_id

pytestmark = pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed")

MASTER = r"""
import gc, importlib, json, os, sys, threading, time

here, mode = sys.argv[1], sys.argv[2]
master = os.getpid()
AGENT = "reloadscope.agent" if mode == "install" else "_reloadscope_agent"


def inherited():
    # What the child got, before the agent's own hooks have run in it.
    agent = sys.modules.get(AGENT)
    state = "none"
    if agent is not None:
        spec = agent.__dict__.get("__spec__")
        if getattr(spec, "_initializing", False):
            state = "loading"
        elif agent.__dict__.get("_server") is not None:
            state = "listening"
        else:
            state = "loaded"
    finders = [type(f).__name__ for f in sys.meta_path]
    if not gc.isenabled():
        kind = "scanning"
    elif state == "loading":
        kind = "loading"
    elif "Finder" in finders:
        kind = "boot"
    else:
        kind = state
    forksafe = sys.modules.get(AGENT + ".forksafe")
    armed = forksafe is not None and forksafe.__dict__.get("_armed") is True
    booting = "reloadscope-boot" in BEFORE or "Finder" in finders or state == "loading"
    if booting and state in ("none", "loading") and not armed:
        # Forked after the bootstrap began, before the agent's first module registered its
        # fork hooks: nothing of the agent can act here (the next attach cleans up).
        kind = "unhooked"
    INHERITED.update(kind=kind, agent=state, finders=finders, gc=gc.isenabled())


INHERITED = {}
BEFORE = []  # the threads there were just before the fork


def before():
    BEFORE[:] = [t.name for t in threading.enumerate()]
    # The bootstrap's thread is a bare _thread one (no threading name): known by its function,
    # or, in the moment after it was started, as an OS thread that runs no Python yet (this
    # program's own threads are all threading ones).
    frames = sys._current_frames()
    for frame in frames.values():
        while frame is not None:
            if frame.f_code.co_name == "_reloadscope_boot":
                BEFORE.append("reloadscope-boot")
            frame = frame.f_back
    with open("/proc/self/stat") as fh:
        os_threads = int(fh.read().rsplit(")", 1)[1].split()[17])
    if os_threads > len(frames):
        BEFORE.append("reloadscope-boot")


# First: the child runs it before the agent's hooks, the parent after the agent's "before".
os.register_at_fork(before=before, after_in_child=inherited)

sys.path.insert(0, here)
with open("plug.py", "w") as fh:
    fh.write("def f():\n    return 1\n")
import plug
keep = plug.f
with open("plug.py", "w") as fh:
    fh.write("def f():\n    return 2\n")
t = time.time() + 10
os.utime("plug.py", (t, t))
importlib.reload(plug)
# A heap large enough that a scan takes a while: forks land inside it.
ballast = [[i] for i in range(300_000)]
if mode == "install":
    import reloadscope
    reloadscope.install()


def socket_fds():
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                out.append(fd)
        except OSError:
            pass
    return out


def child(label):
    with open("/proc/self/status") as fh:
        threads = [int(line.split()[1]) for line in fh if line.startswith("Threads:")][0]
    names = [m for m in sys.modules if m.startswith(("_reloadscope_agent", "reloadscope.agent"))]
    agent = sys.modules.get(AGENT)
    note = dict(
        INHERITED,
        pid=os.getpid(),
        label=label,
        gc_now=gc.isenabled(),
        finders_now=[type(f).__name__ for f in sys.meta_path],
        threads=threads,
        thread_names=[t.name for t in threading.enumerate()],
        sockets=socket_fds(),
        agent_modules=names,
        agent_half=agent is not None and bool(getattr(agent.__spec__, "_initializing", False)),
    )
    tmp = os.path.join(here, f"state-{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        json.dump(note, fh)
    os.replace(tmp, os.path.join(here, f"state-{os.getpid()}.json"))
    try:
        fd = os.open(os.path.join(here, "keep-" + note["kind"]), os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
    except FileExistsError:
        if label != "after":
            os._exit(0)
    with open(os.path.join(here, f"kept-{os.getpid()}"), "w") as fh:
        fh.write(note["kind"])
    while os.getppid() == master:
        boot(f"boot-{os.getpid()}")
        stacks = os.path.join(here, f"stacks-{os.getpid()}")
        if os.path.exists(stacks):  # the test's diagnosis of an agent that did not come
            import faulthandler

            os.unlink(stacks)
            with open(stacks + ".txt", "w") as fh:
                faulthandler.dump_traceback(fh, all_threads=True)
                fh.write(repr(sorted(k for k in sys.modules if "reloadscope" in k)))
        asked = os.path.join(here, f"note-{os.getpid()}")
        if os.path.exists(asked):  # after it was reported on: what is left of the agent
            os.unlink(asked)
            agent = sys.modules.get(AGENT)
            again = dict(
                finders=[type(f).__name__ for f in sys.meta_path],
                agent_half=agent is not None and bool(
                    getattr(agent.__spec__, "_initializing", False)
                ),
                gc=gc.isenabled(),
            )
            tmp = os.path.join(here, f"again-{os.getpid()}.tmp")
            with open(tmp, "w") as fh:
                json.dump(again, fh)
            os.replace(tmp, os.path.join(here, f"again-{os.getpid()}.json"))
        time.sleep(0.05)
    os._exit(0)


def boot(name):
    # What an injection makes this process run (gdb's PyRun_SimpleString, sys.remote_exec):
    # the bootstrap string, in __main__, from the main thread.
    path = os.path.join(here, name)
    if os.path.exists(path):
        with open(path) as fh:
            code = fh.read()
        os.unlink(path)
        exec(compile(code, "<string>", "exec"), sys.modules["__main__"].__dict__)


def fork(label):
    pid = os.fork()
    if pid == 0:
        try:
            child(label)
        finally:
            os._exit(0)
    print("forked", pid, file=sys.stderr, flush=True)  # after the warning it caused, if any
    return pid


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


print("ready", flush=True)
flag = lambda name: os.path.exists(os.path.join(here, name))
while not flag("go"):
    time.sleep(0.01)
n = 0
while not flag("stop"):
    boot("boot")
    fork("during")
    n += 1
    reap()
    time.sleep(0.01)
with open(os.path.join(here, "stopped"), "w") as fh:
    fh.write(str(n))
while not flag("after"):
    reap()
    time.sleep(0.01)
fork("after")
with open(os.path.join(here, "after-done"), "w"):
    pass
if mode == "install":
    # The program's own thread: its fork warning is the program's, and stays.
    ev = threading.Event()
    threading.Thread(target=ev.wait, daemon=True).start()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    ev.set()
    print("own-thread fork done", flush=True)
while True:
    reap()
    time.sleep(0.05)
"""


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=SRC, PYTHONDONTWRITEBYTECODE="1")


def cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reloadscope", *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=timeout,
    )


def wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"timed out waiting for {path.name}"
        time.sleep(0.02)


# The bootstrap's part of fork safety.  A child forked after the bootstrap thread began
# importing the agent but before
# the agent's first module registered its fork hooks has a half-executed agent in sys.modules,
# and the import locks that thread held (the agent's, and any other module's it was passing
# through, such as __future__'s) belong to a thread the child does not have: importing them
# waits forever.  The bootstrap forgets such an agent and those locks and loads a fresh agent.
# A half-executed agent whose loader is alive (another bootstrap thread here) is left to it.
def boot_text() -> str:
    """The injector's bootstrap (it forgets a half-loaded agent a fork left: see BOOT)."""
    from reloadscope.attach import inject

    assert "_module_locks" in inject.BOOT
    return inject.bootstrap()


def attach(d: Path, pid: int, name: str, kind: str = "") -> subprocess.CompletedProcess[str]:
    """``reloadscope report PID --json`` after the process ran the injector's bootstrap.

    The process runs it itself (it looks for the file ``name`` in ``d``), as gdb or
    ``sys.remote_exec`` would have it run it: what follows is the agent's own doing, and
    this test does not depend on the debugger working on the machine."""
    sock = Path(socket_path(pid))
    sock.unlink(missing_ok=True)  # left by an earlier process of this PID
    tmp = d / f"{name}.tmp"
    tmp.write_text(boot_text())
    tmp.rename(d / name)
    deadline = time.monotonic() + 60
    while not sock.exists():
        assert alive(pid), f"process {pid} died"
        if time.monotonic() > deadline:
            (d / f"stacks-{pid}").touch()
            time.sleep(2)
            dump = d / f"stacks-{pid}.txt"
            raise AssertionError(
                f"no agent listened in process {pid} ({kind or name}) within 60 s:\n"
                + (dump.read_text() if dump.exists() else "(no stacks)")
            )
        time.sleep(0.02)
    return cli("report", str(pid), "--json")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def run_master(python: str, d: Path, mode: str) -> tuple[list[dict], str, str]:
    """Start the master, fork children through ``report MASTER --json``, then report on the
    children kept.  Returns the children's notes, the master's stderr, and the report lines."""
    (d / "master.py").write_text(MASTER)
    env = _env() if mode == "install" else {"PATH": os.environ.get("PATH", "/usr/bin")}
    # Every DeprecationWarning shown each time: a fork warning the agent let through is seen.
    p = subprocess.Popen(
        [python, "-W", "always::DeprecationWarning", str(d / "master.py"), str(d), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=d,
    )
    kept: list[int] = []
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        if mode == "install":
            deadline = time.monotonic() + 60
            while not os.path.exists(socket_path(p.pid)):
                assert time.monotonic() < deadline, "install()'s listener did not appear"
                time.sleep(0.02)
        (d / "go").touch()
        time.sleep(0.3)  # children from before the attach too
        # install()'s listener answers; a plain master gets the injector's bootstrap.
        out = cli("report", str(p.pid), "--json") if mode == "install" else attach(d, p.pid, "boot")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["process"]["pid"] == p.pid
        (d / "stop").touch()
        wait_for(d / "stopped")
        (d / "after").touch()
        wait_for(d / "after-done")
        if mode == "install":
            assert p.stdout.readline().strip() == "own-thread fork done"
        forks = int((d / "stopped").read_text()) + 1
        deadline = time.monotonic() + 60
        while len(list(d.glob("state-*.json"))) < forks:  # the last children may still write
            assert time.monotonic() < deadline, "children did not note their state"
            time.sleep(0.05)
        kept = [int(f.name.split("-")[1]) for f in d.glob("kept-*")]
        notes = []
        for f in d.glob("state-*.json"):
            notes.append(json.loads(f.read_text()))
        reports = []
        for pid in sorted(kept):
            assert alive(pid), f"kept child {pid} died"
            kind = (d / f"kept-{pid}").read_text()
            r = attach(d, pid, f"boot-{pid}", kind)
            assert r.returncode == 0, f"child {pid} forked while {kind}: {r.stderr}"
            assert json.loads(r.stdout)["process"]["pid"] == pid
            (d / f"note-{pid}").touch()
            wait_for(d / f"again-{pid}.json")
            again = json.loads((d / f"again-{pid}.json").read_text())
            ours = [f for f in again["finders"] if f in ("_ReloadFinder", "Finder")]
            assert ours == (["_ReloadFinder"] if mode == "install" else []), (kind, again)
            assert not again["agent_half"] and again["gc"], (kind, again)
            reports.append(kind)
    finally:
        for pid in kept:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        p.kill()
        _, err = p.communicate(timeout=60)
    return notes, err, ",".join(reports)


def check_children(notes: list[dict], *, recording: bool) -> None:
    assert notes, "no child noted its state"
    for n in notes:
        what = f"child {n['pid']} forked while {n['kind']} ({n['label']})"
        assert n["gc_now"], f"{what}: the collector is off for good"
        assert n["threads"] == 1 and n["thread_names"] == ["MainThread"], what
        assert n["sockets"] == [], f"{what}: the parent's sockets {n['sockets']}"
        if n["kind"] == "unhooked":
            # Forked after the bootstrap began loading the agent, before the agent's first
            # module: nothing of the agent has run here yet.  The next attach cleans up (the
            # kept one is reported on, and checked afterwards).
            continue
        ours = [f for f in n["finders_now"] if f in ("_ReloadFinder", "Finder")]
        # install()'s recorder goes on recording in its workers; an injection's does not.
        assert ours == (["_ReloadFinder"] if recording else []), f"{what}: finders {ours}"
        assert not n["agent_half"], f"{what}: a half-loaded agent stayed ({n['agent_modules']})"


def check_no_fork_warning(python: str, err: str, notes: list[dict], *, own_thread: bool) -> None:
    """No fork warning the agent's threads caused.  The fork the program makes beside a thread
    of its own warns; so may one in the moment before the agent's hooks exist."""
    kinds = {n["pid"]: n["kind"] for n in notes}
    warned, blamed = [], []
    for line in err.splitlines():
        if "is multi-threaded, use of fork()" in line:
            warned.append(line)
        elif line.startswith("forked ") and len(warned) > len(blamed):
            blamed.append(kinds.get(int(line.split()[1]), "?"))
    minor = int(version_id(python).split(".")[1])
    if minor < 12:
        assert not warned
        return
    assert len(warned) == len(blamed) + (1 if own_thread else 0), err[-3000:]
    # Known gap (open): on 3.13+, about one run in ten, a fork while the bootstrap's thread is
    # still loading the agent (hooks armed) warns; not understood yet.  Everything later (the
    # listener, the scan) must never warn.
    allowed = {"unhooked", "loading"} if minor >= 13 else {"unhooked"}
    assert all(k in allowed for k in blamed), blamed


@pytest.mark.parametrize("python", pythons(), ids=version_id)
def test_children_forked_during_an_injected_attach_and_scan_are_clean(tmp_path, python):
    notes, err, reported = run_master(python, tmp_path, "plain")
    kinds = {n["kind"] for n in notes}
    # The forks hit the agent at work (its listener up, or its scan), not only before/after.
    assert kinds & {"listening", "scanning"}, kinds
    check_children(notes, recording=False)
    check_no_fork_warning(python, err, notes, own_thread=False)
    assert "after" in {n["label"] for n in notes}
    assert reported, "no child was reported on"


@pytest.mark.parametrize("python", pythons(), ids=version_id)
def test_children_forked_during_a_scan_of_an_installed_agent_are_clean(tmp_path, python):
    notes, err, reported = run_master(python, tmp_path, "install")
    kinds = {n["kind"] for n in notes}
    assert "scanning" in kinds, kinds  # some forks happened while the scan had gc off
    check_children(notes, recording=True)
    check_no_fork_warning(python, err, notes, own_thread=True)
    assert reported, "no child was reported on"


# The listener's socket is made with the GIL released: a fork then must wait until the agent
# has recorded it, or the child keeps a socket nothing of it knows (forksafe.hold_forks).
HOLD = r"""
import os, threading, time
from reloadscope.agent import forksafe
held = forksafe.hold_forks()
def later():
    time.sleep(0.5)
    forksafe.release_forks(held)
threading.Thread(target=later).start()
began = time.monotonic()
pid = os.fork()
if pid == 0:  # the child may hold it at once: no thread of the parent holds it here
    t = time.monotonic()
    mine = forksafe.hold_forks()
    os._exit(0 if mine is not None and time.monotonic() - t < 0.2 else 1)
waited = time.monotonic() - began
_, status = os.waitpid(pid, 0)
again = forksafe.hold_forks()  # given back after the fork
print(waited >= 0.4, os.waitstatus_to_exitcode(status), again is not None)
"""


def test_a_fork_waits_while_an_agent_thread_makes_a_descriptor():
    out = subprocess.run(
        [sys.executable, "-c", HOLD], capture_output=True, text=True, env=_env(), timeout=60
    )
    assert out.stdout.split() == ["True", "0", "True"], (out.stdout, out.stderr)
