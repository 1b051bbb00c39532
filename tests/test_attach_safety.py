"""Attach safety (FIELD-NOTES, "Attach safety"), against real processes, signals, tracers and
users: a stopped or traced target is refused before anything touches it; only the target's own
agent is believed (its directory, its socket and the process at the other end are checked);
concurrent clients wait for each other instead of failing with a made-up permission problem.

The tests that need other users create throwaway ones (``rs-test-*``, removed afterwards) and
need root; the others run as anyone."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from procinfo import fds, progresses, tasks, ticks
from scenario import SRC

HAS_GDB = shutil.which("gdb") is not None
needs_gdb = pytest.mark.skipif(not HAS_GDB, reason="gdb is not installed")

TARGET = r"""
import os, sys, threading, time
here = sys.argv[1]
if len(sys.argv) > 2 and sys.argv[2] == "install":
    import reloadscope
    reloadscope.install()
n = 0
print("ready", flush=True)
while True:
    n += 1
    tmp = os.path.join(here, "ticks.tmp")
    with open(tmp, "w") as fh:
        fh.write(str(n))
    os.replace(tmp, os.path.join(here, "ticks"))
    time.sleep(0.02)
"""

# Holds a real ptrace attachment to the process given, without stopping it (PTRACE_SEIZE),
# until killed: what a debugger or strace does, from a process of our own.
SEIZE = r"""
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long
if libc.ptrace(0x4206, int(sys.argv[1]), None, None) != 0:  # PTRACE_SEIZE
    sys.exit("PTRACE_SEIZE: " + os.strerror(ctypes.get_errno()))
if len(sys.argv) > 2:
    with open(sys.argv[2], "w") as fh:
        fh.write(str(os.getpid()))
print("seized", flush=True)
time.sleep(300)
"""

# Pretends to be the agent of process ``claimed`` on ``path``: greets with the protocol and
# that PID, answers ping, and answers a scan with a real scan of itself, whose process has a
# module reloaded with an old function kept (so the report names rs_impostor_marker).  Every
# request it receives is written to ``log``.
IMPOSTOR = r"""
import importlib, json, os, socket, sys, time
path, claimed, log, here = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
sys.path.insert(0, here)
def write(text, bump):
    p = os.path.join(here, "rs_impostor_marker.py")
    with open(p, "w") as fh:
        fh.write(text)
    os.utime(p, (time.time() + bump, time.time() + bump))
    importlib.invalidate_caches()
write("def f():\n    return 1\n", 0)
import rs_impostor_marker
keep = rs_impostor_marker.f
write("def f():\n    return 2\n", 10)
importlib.reload(rs_impostor_marker)
def answer(req):
    op = req.get("op")
    if op == "ping":
        return "pong"
    if op == "scan":
        try:
            import reloadscope.agent as agent
            return agent._handlers()["scan"](req)
        except Exception as e:
            raise RuntimeError(f"IMPOSTOR-MARKER scan ({e})")
    if op == "snapshot":
        return "/tmp/IMPOSTOR-MARKER.rsnap"
    if op == "release":
        return False
    return "detached"
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(8)
print("ready", flush=True)
def converse(f):
    f.write(json.dumps({"reloadscope": 1, "pid": claimed, "python": "3.11.2"}).encode() + b"\n")
    f.flush()
    for line in f:
        with open(log, "a") as fh:
            fh.write(line.decode())
        req = json.loads(line)
        try:
            reply = {"id": req.get("id"), "ok": True, "result": answer(req)}
        except Exception as e:
            reply = {"id": req.get("id"), "ok": False, "error": str(e)}
        f.write(json.dumps(reply).encode() + b"\n")
        f.flush()
while True:
    conn, _ = s.accept()
    f = conn.makefile("rwb")
    try:
        converse(f)
    except OSError:  # a client that hung up at once: serve the next one
        pass
    try:
        f.close()
    except OSError:
        pass
    conn.close()
"""


def _env(**extra: str) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=SRC, PYTHONDONTWRITEBYTECODE="1", **extra)


def cli(*args: str, timeout: float = 90, env: dict[str, str] | None = None, **kw):
    return subprocess.run(
        [sys.executable, "-m", "reloadscope", *args],
        capture_output=True,
        text=True,
        env=env or _env(),
        timeout=timeout,
        **kw,
    )


def one_error(out: subprocess.CompletedProcess[str]) -> str:
    """The single error line of a failed CLI, checked to be exactly that."""
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("reloadscope: error: "), out.stderr
    assert "Traceback" not in out.stderr
    return lines[0].removeprefix("reloadscope: error: ")


def state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as fh:
        text = fh.read()
    return text[text.rfind(")") + 1 :].split()[0]


def tracer_pid(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    return 0


def comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as fh:
        return fh.read().strip()


def wait_until(cond, what: str, timeout: float = 10) -> None:
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.kill()
    p.wait()


def start_target(d: Path, how: str = "plain", **popen) -> subprocess.Popen[str]:
    script = d / "target.py"
    script.write_text(TARGET)
    python = popen.pop("python", sys.executable)
    env = popen.pop("env", None)
    if env is None:
        env = _env() if how == "install" else {"PATH": os.environ.get("PATH", "/usr/bin")}
    p = subprocess.Popen(
        [python, str(script), str(d), how],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=d,
        **popen,
    )
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "ready"
    wait_until(lambda: ticks(d) > 0, "the target's first tick")
    return p


def sock_path(pid: int, uid: int | None = None) -> str:
    return f"/tmp/reloadscope-{os.getuid() if uid is None else uid}/{pid}.sock"


@pytest.fixture
def target(request, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    how = getattr(request, "param", "plain")
    p = start_target(tmp_path, how)
    if how == "install":
        wait_until(lambda: os.path.exists(sock_path(p.pid)), "the agent's socket")
    try:
        yield p
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
        stop(p)


# -- 1. stopped and traced targets ---------------------------------------------------------------


@pytest.mark.parametrize("target", ["plain", "install"], indirect=True)
def test_a_stopped_target_is_refused_untouched_and_runs_on_after_cont(target, tmp_path):
    pid = target.pid
    had_socket = os.path.exists(sock_path(pid))
    os.kill(pid, signal.SIGSTOP)
    wait_until(lambda: state(pid) == "T", "the target to stop")
    before_tasks, before_fds = tasks(pid), fds(pid)
    t0 = time.monotonic()
    out = cli("report", str(pid))
    assert one_error(out) == (
        f"process {pid} is stopped (SIGSTOP/job control): resume it with 'kill -CONT {pid}' "
        "and try again"
    )
    assert out.stdout == ""
    assert time.monotonic() - t0 < 15, "the stopped target was waited for"
    # Nothing touched it: no tracer, still stopped, same threads and descriptors.
    assert state(pid) == "T" and tracer_pid(pid) == 0
    assert tasks(pid) == before_tasks and fds(pid) == before_fds
    assert os.path.exists(sock_path(pid)) == had_socket
    os.kill(pid, signal.SIGCONT)
    assert progresses(tmp_path), "the target did not run on after SIGCONT"
    time.sleep(0.5)
    assert target.poll() is None, f"the target died after SIGCONT (status {target.returncode})"
    assert tasks(pid) == before_tasks, "an agent thread was added"
    assert os.path.exists(sock_path(pid)) == had_socket
    # Resumed, it is an ordinary target again.
    again = cli("report", str(pid), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["process"]["pid"] == pid


@pytest.mark.parametrize("target", ["install"], indirect=True)
def test_a_target_stopped_during_a_session_is_named_not_waited_for(target):
    from reloadscope.attach.client import AttachError
    from reloadscope.attach.session import Session

    pid = target.pid
    with Session(pid, timeout=20) as s:
        assert s.client.request("ping") == "pong"
        os.kill(pid, signal.SIGSTOP)
        wait_until(lambda: state(pid) == "T", "the target to stop")
        t0 = time.monotonic()
        with pytest.raises(AttachError) as e:
            s.client.request("ping")
        assert time.monotonic() - t0 < 5, "waited for a stopped process to answer"
    assert str(e.value) == (
        f"process {pid} is stopped (SIGSTOP/job control): resume it with 'kill -CONT {pid}' "
        "and try again"
    )
    os.kill(pid, signal.SIGCONT)
    assert target.poll() is None


def _tracer(kind: str, pid: int, d: Path) -> subprocess.Popen[str]:
    """A real tracer of ``pid`` that stays attached until killed."""
    if kind == "seize":
        (d / "seize.py").write_text(SEIZE)
        t = subprocess.Popen(
            [sys.executable, str(d / "seize.py"), str(pid)], stdout=subprocess.PIPE, text=True
        )
        assert t.stdout is not None and t.stdout.readline().strip() == "seized"
    elif kind == "strace":
        strace = shutil.which("strace")
        if strace is None:
            pytest.skip("strace is not installed")
        t = subprocess.Popen([strace, "-p", str(pid), "-o", os.devnull], stderr=subprocess.DEVNULL)
    else:
        gdb = shutil.which("gdb")
        if gdb is None:
            pytest.skip("gdb is not installed")
        # A batch session that stays attached (the target stopped under it) for a minute.
        t = subprocess.Popen(
            [gdb, "-p", str(pid), "-batch", "-nx", "-ex", "python import time; time.sleep(60)"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
    wait_until(lambda: tracer_pid(pid) == t.pid, f"{kind} to attach")
    return t


def _stat_or_none(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


@pytest.mark.parametrize("kind", ["seize", "strace", "gdb"])
def test_a_traced_target_is_refused_and_its_tracer_named(target, tmp_path, kind):
    pid = target.pid
    t = _tracer(kind, pid, tmp_path)
    # (A socket file at this pid may be left by an earlier process of the same pid that was
    # killed: what counts is that this attempt made none.)
    had_socket = _stat_or_none(sock_path(pid))
    try:
        before_tasks = tasks(pid)
        out = cli("report", str(pid))
        assert one_error(out) == (
            f"process {pid} is being traced by process {t.pid} ({comm(t.pid)}): detach that "
            "debugger first"
        )
        assert out.stdout == ""
        assert tracer_pid(pid) == t.pid and tasks(pid) == before_tasks
        assert _stat_or_none(sock_path(pid)) == had_socket
        if kind != "gdb":  # gdb holds it stopped; the others let it run
            assert progresses(tmp_path)
    finally:
        stop(t)
    wait_until(lambda: tracer_pid(pid) == 0, "the tracer to be gone")
    if state(pid) in "Tt":
        os.kill(pid, signal.SIGCONT)
    assert progresses(tmp_path) and target.poll() is None


# -- 3. concurrent clients -----------------------------------------------------------------------


@needs_gdb
def test_five_concurrent_reports_on_a_target_without_an_agent_all_succeed(target, tmp_path):
    pid = target.pid
    before_tasks, before_fds = tasks(pid), fds(pid)
    clients = [
        subprocess.Popen(
            [sys.executable, "-m", "reloadscope", "report", str(pid), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for _ in range(5)
    ]
    results = []
    try:
        for c in clients:
            stdout, stderr = c.communicate(timeout=120)
            results.append((c.returncode, stdout, stderr))
    finally:
        for c in clients:
            stop(c)
    for rc, stdout, stderr in results:
        assert "CAP_SYS_PTRACE" not in stderr and "permission denied" not in stderr, stderr
        assert rc == 0, stderr
        assert json.loads(stdout)["process"]["pid"] == pid
        for line in stderr.splitlines():  # those that waited said so, and why
            assert line.startswith("reloadscope: waiting for another reloadscope (PID "), stderr
            assert line.endswith(f"attached to process {pid}, to finish"), stderr
    assert sum(bool(stderr) for _, _, stderr in results) >= 1  # they did meet
    wait_until(lambda: tasks(pid) == before_tasks, "the agent to leave")
    assert fds(pid) == before_fds
    assert not os.path.exists(sock_path(pid))
    assert progresses(tmp_path) and target.poll() is None


GDB_AFTER_A_DEBUGGER = """#!/bin/sh
# gdb, but another debugger attaches to the target first (before gdb is told to attach).
"{python}" "{seize}" "$SEIZE_PID" "{pidfile}" > /dev/null 2>&1 &
n=0
while [ ! -s "{pidfile}" ] && [ $n -lt 500 ]; do sleep 0.02; n=$((n + 1)); done
exec "{gdb}" "$@"
"""


@needs_gdb
def test_a_debugger_that_attaches_first_is_named_not_a_missing_capability(target, tmp_path):
    # The race: the target was not traced when reloadscope looked, but another debugger got
    # there before gdb did.  The real gdb's ptrace attach then really fails with EPERM.
    pid = target.pid
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "seize.py").write_text(SEIZE)
    pidfile = tmp_path / "seizer.pid"
    wrapper = bin_dir / "gdb"
    wrapper.write_text(
        GDB_AFTER_A_DEBUGGER.format(
            python=sys.executable,
            seize=tmp_path / "seize.py",
            pidfile=pidfile,
            gdb=shutil.which("gdb"),
        )
    )
    wrapper.chmod(0o755)
    try:
        path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
        out = cli("report", str(pid), env=_env(PATH=path, SEIZE_PID=str(pid)))
        assert pidfile.exists(), (out.returncode, out.stdout, out.stderr)
        seizer = int(pidfile.read_text())
        message = one_error(out)
        assert "CAP_SYS_PTRACE" not in message and "permission denied" not in message
        assert message.startswith(
            f"another debugger (PID {seizer}) is attached to process {pid}: "
        ), message
        assert tracer_pid(pid) == seizer
    finally:
        if pidfile.exists() and pidfile.read_text():
            try:
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass
    wait_until(lambda: tracer_pid(pid) == 0, "the other debugger to be gone")
    assert progresses(tmp_path) and target.poll() is None


@pytest.mark.parametrize("target", ["plain", "install"], indirect=True)
def test_ps_believes_an_agent_only_when_the_process_listens(request, target):
    # A socket file outlives an agent killed with SIGKILL, and a new process may get that PID.
    pid, path = target.pid, sock_path(target.pid)
    listed = lambda: {r["pid"]: r["agent"] for r in json.loads(cli("ps", "--json").stdout)}  # noqa: E731
    listens = request.node.callspec.params["target"] == "install"
    made = not os.path.exists(path)  # (for a plain target, a killed process's may be there)
    if made:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        dead = socket.socket(socket.AF_UNIX)
        dead.bind(path)  # bound and left, never listened on by the target
        dead.close()
        os.chmod(path, 0o600)
    try:
        assert listed()[pid] is listens  # the target's own agent is believed, a file is not
    finally:
        if made:
            os.unlink(path)


def test_the_lock_is_in_a_private_directory_of_the_caller(target):
    from reloadscope.attach import lock
    from reloadscope.attach.client import AttachError

    held = lock.acquire(target.pid)
    try:
        st = os.lstat(lock.lock_dir())
        assert stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()
        assert stat.S_IMODE(st.st_mode) == 0o700
        heard: list[str] = []
        t0 = time.monotonic()
        with pytest.raises(AttachError) as e:
            lock.acquire(target.pid, timeout=0.5, on_wait=heard.append)
        assert 0.4 < time.monotonic() - t0 < 5
        assert heard == [
            f"waiting for another reloadscope (PID {os.getpid()}), attached to process "
            f"{target.pid}, to finish"
        ]
        assert f"another reloadscope (PID {os.getpid()}) has been attached" in str(e.value)
    finally:
        held.release()
    lock.acquire(target.pid, timeout=0.5).release()  # free again


# -- 2. only the target's own agent is believed (throwaway users, root) ---------------------------


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int

    def popen(self) -> dict:
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


@dataclass(frozen=True)
class Users:
    a: User  # owns the target
    b: User  # another user, the attacker
    shared: Path  # a directory every user can read (pytest's tmp_path is root's alone)
    deps: Path  # psutil, for a reloadscope CLI run by those users (root's pyenv is private)


SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="module")
def users() -> Iterator[Users]:
    if os.getuid() != 0:
        pytest.skip("creating throwaway users needs root")
    if shutil.which("useradd") is None or shutil.which("userdel") is None:
        pytest.skip("useradd/userdel are not installed")
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip(f"{SYSTEM_PYTHON}, a Python other users can run, is missing")
    tag = uuid.uuid4().hex[:6]
    made: list[User] = []
    shared = Path(tempfile.mkdtemp(prefix="rs-test-", dir="/tmp"))
    try:
        for role in ("a", "b"):
            name = f"rs-test-{role}-{tag}"
            subprocess.run(
                ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                check=True,
                capture_output=True,
            )
            pw = pwd.getpwnam(name)
            made.append(User(name, pw.pw_uid, pw.pw_gid))
        shared.chmod(0o755)
        deps = shared / "deps"
        deps.mkdir()
        import psutil

        shutil.copytree(Path(psutil.__file__).parent, deps / "psutil")
        for root, dirs, files in os.walk(shared):
            for n in dirs + files:
                os.chmod(os.path.join(root, n), 0o755)
        yield Users(made[0], made[1], shared, deps)
    finally:
        for u in made:
            for d in (f"/tmp/reloadscope-{u.uid}", f"/tmp/reloadscope-client-{u.uid}"):
                _remove(d)
            subprocess.run(["userdel", u.name], capture_output=True)
        shutil.rmtree(shared, ignore_errors=True)


def _remove(path: str) -> None:
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class World:
    users: Users
    dir: Path  # this test's directory, every user's to write
    procs: list[subprocess.Popen]

    @property
    def agent_dir(self) -> str:
        return f"/tmp/reloadscope-{self.users.a.uid}"

    def subdir(self, name: str, owner: User) -> Path:
        d = self.dir / name
        d.mkdir()
        os.chown(d, owner.uid, owner.gid)
        return d

    def target(self, how: str = "plain") -> subprocess.Popen[str]:
        """A Python process of user a (the system Python: other users cannot run root's)."""
        d = self.subdir(f"target-{len(self.procs)}", self.users.a)
        env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
        if how == "install":
            env["PYTHONPATH"] = SRC
        p = start_target(d, how, python=SYSTEM_PYTHON, env=env, **self.users.a.popen())
        self.procs.append(p)
        if how == "install":
            wait_until(lambda: os.path.exists(sock_path(p.pid, self.users.a.uid)), "the agent")
        return p

    def impostor(self, path: str, claimed: int, who: User) -> tuple[subprocess.Popen[str], Path]:
        """A process of ``who`` posing as the agent of ``claimed`` on ``path``."""
        d = self.subdir(f"impostor-{len(self.procs)}", who)
        (d / "impostor.py").write_text(IMPOSTOR)
        log = d / "requests"
        p = subprocess.Popen(
            [SYSTEM_PYTHON, str(d / "impostor.py"), path, str(claimed), str(log), str(d)],
            stdout=subprocess.PIPE,
            text=True,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": SRC, "PYTHONDONTWRITEBYTECODE": "1"},
            cwd=d,
            **who.popen(),
        )
        self.procs.append(p)
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        return p, log

    def cli(self, *args: str, as_user: User | None = None) -> subprocess.CompletedProcess[str]:
        if as_user is None:
            return cli(*args, cwd=self.dir)
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": f"{SRC}{os.pathsep}{self.users.deps}",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        return subprocess.run(
            [SYSTEM_PYTHON, "-m", "reloadscope", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=90,
            cwd=self.dir,
            **as_user.popen(),
        )


@pytest.fixture
def world(users: Users) -> Iterator[World]:
    d = Path(tempfile.mkdtemp(prefix="case-", dir=users.shared))
    d.chmod(0o777)
    w = World(users, d, [])
    _remove(w.agent_dir)
    try:
        yield w
    finally:
        for p in w.procs:
            stop(p)
        _remove(w.agent_dir)
        _remove(f"/tmp/reloadscope-{users.b.uid}")
        shutil.rmtree(d, ignore_errors=True)


def _refused(w: World, target: subprocess.Popen, log: Path, why: str) -> None:
    """report and snapshot both refuse with ``why``; the impostor heard nothing, nothing it
    could say was shown or saved, and the target was not touched."""
    pid = target.pid
    before_tasks, before_fds = tasks(pid), fds(pid)
    out = w.cli("report", str(pid))
    message = one_error(out)
    assert message.startswith(
        f"{sock_path(pid, w.users.a.uid)} is not the agent of process {pid}: "
    )
    assert why in message, message
    assert message.endswith("and try again"), message
    snap = w.dir / "live.rsnap"
    out2 = w.cli("snapshot", str(pid), "-o", str(snap))
    assert one_error(out2) == message
    for o in (out, out2):
        assert "impostor" not in (o.stdout + o.stderr).lower()
        assert o.stdout == ""
    assert not snap.exists() and not Path("/tmp/IMPOSTOR-MARKER.rsnap").exists()
    assert not log.exists() or log.read_text() == "", "a request reached the impostor"
    assert tasks(pid) == before_tasks and fds(pid) == before_fds and tracer_pid(pid) == 0
    assert target.poll() is None


def test_a_directory_of_another_user_is_refused_and_its_answer_never_shown(world):
    a, b = world.users.a, world.users.b
    target = world.target()
    os.mkdir(world.agent_dir, 0o700)
    os.chown(world.agent_dir, b.uid, b.gid)  # b was first to create a's directory
    _, log = world.impostor(sock_path(target.pid, a.uid), target.pid, b)
    _refused(world, target, log, f"belongs to uid {b.uid} ({b.name}), not to the process's user")
    # a itself cannot remove b's directory from /tmp: the message says who can.
    out = world.cli("report", str(target.pid), as_user=a)
    assert one_error(out).endswith(f"; have root remove {world.agent_dir} and try again")
    assert "impostor" not in (out.stdout + out.stderr).lower()
    assert not log.exists() or log.read_text() == ""


def test_a_symlinked_directory_is_refused(world):
    a, b = world.users.a, world.users.b
    target = world.target()
    elsewhere = world.subdir("elsewhere", b)
    elsewhere.chmod(0o700)
    _, log = world.impostor(str(elsewhere / f"{target.pid}.sock"), target.pid, b)
    os.symlink(elsewhere, world.agent_dir)
    os.lchown(world.agent_dir, b.uid, b.gid)
    _refused(world, target, log, f"/tmp/reloadscope-{a.uid} is a symbolic link")


def test_a_directory_open_to_other_users_is_refused(world):
    a, b = world.users.a, world.users.b
    target = world.target()
    os.mkdir(world.agent_dir)
    os.chown(world.agent_dir, a.uid, a.gid)
    os.chmod(world.agent_dir, 0o777)  # a's own, but anyone may put a socket in it
    _, log = world.impostor(sock_path(target.pid, a.uid), target.pid, b)
    _refused(world, target, log, f"/tmp/reloadscope-{a.uid} has mode 0777")


@needs_gdb
def test_an_impostor_of_the_same_user_is_refused(world):
    a = world.users.a
    target = world.target()  # no agent of its own
    os.mkdir(world.agent_dir, 0o700)
    os.chown(world.agent_dir, a.uid, a.gid)  # a's, private: all as a real agent has it
    impostor, log = world.impostor(sock_path(target.pid, a.uid), target.pid, a)
    _refused(
        world,
        target,
        log,
        f"process {impostor.pid} ({comm(impostor.pid)}) listens on it, not process {target.pid}",
    )
    # As a itself, too.
    out = world.cli("report", str(target.pid), as_user=a)
    assert f"process {impostor.pid} ({comm(impostor.pid)}) listens on it" in one_error(out)
    assert not log.exists() or log.read_text() == ""


@pytest.mark.parametrize("caller", ["root", "same-user"])
@pytest.mark.parametrize("how", ["install", "inject"])
def test_the_targets_own_agent_is_believed(world, how, caller):
    if how == "inject" and not HAS_GDB:
        pytest.skip("gdb is not installed")
    a = world.users.a
    target = world.target("install" if how == "install" else "plain")
    before_tasks = tasks(target.pid)
    for _ in range(2):  # and again, once the first has left
        out = world.cli(
            "report", str(target.pid), "--json", as_user=a if caller != "root" else None
        )
        assert out.returncode == 0, out.stderr
        assert out.stderr == ""
        assert json.loads(out.stdout)["process"]["pid"] == target.pid
        if how == "inject":
            wait_until(lambda: tasks(target.pid) == before_tasks, "the injected agent to leave")
    st = os.lstat(world.agent_dir) if os.path.lexists(world.agent_dir) else None
    assert st is None or (st.st_uid == a.uid and stat.S_IMODE(st.st_mode) == 0o700)
    assert target.poll() is None


def test_a_stale_socket_in_a_trusted_directory_is_replaced_by_a_new_agent(world):
    if not HAS_GDB:
        pytest.skip("gdb is not installed")
    a = world.users.a
    target = world.target()
    os.mkdir(world.agent_dir, 0o700)
    os.chown(world.agent_dir, a.uid, a.gid)
    path = sock_path(target.pid, a.uid)
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(path)  # bound, never listening: what a killed agent leaves
    dead.close()
    os.chown(path, a.uid, a.gid)
    out = world.cli("report", str(target.pid), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["process"]["pid"] == target.pid


# -- 1. no privilege crossing ----------------------------------------------------------------


def test_root_never_runs_a_file_the_targets_user_controls(world):
    # User a runs a real CPython from a directory of theirs, as a venv whose site-packages
    # holds a .pth file (code any interpreter started from there runs), under a name that
    # claims 3.14.  Attaching as root used to take the version from the name and run the
    # target's executable to call sys.remote_exec: user a's code, as root.
    a = world.users.a
    d = world.subdir("venv", a)
    version = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    site = d / "lib" / f"python{version}" / "site-packages"
    site.mkdir(parents=True)
    marker = d / "ran-as"
    (d / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = false\n")
    (site / "evil.pth").write_text(
        f"import os; open({str(marker)!r}, 'w').write(str(os.getuid()))\n"
    )
    (d / "bin").mkdir()  # a venv's layout: bin/python, with pyvenv.cfg one level up
    exe = d / "bin" / "python3.14"
    shutil.copy2(os.path.realpath(SYSTEM_PYTHON), exe)
    for path in (d / "lib", d / "lib" / f"python{version}", site, *d.rglob("*")):
        os.chown(path, a.uid, a.gid)
    code = "import time; print('ready', flush=True)\nwhile True: time.sleep(0.05)"
    p = subprocess.Popen(
        [str(exe), "-c", code], stdout=subprocess.PIPE, text=True, env={"PATH": "/usr/bin"},
        **a.popen(),
    )  # fmt: skip
    world.procs.append(p)
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    assert marker.read_text() == str(a.uid)  # the .pth runs in whatever starts there
    marker.unlink()
    out = world.cli("report", str(p.pid), "--json")
    assert not marker.exists(), f"a file of user {a.name} ran as uid {marker.read_text()}"
    # The version came from what the process maps, not from the file's name: gdb was used.
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["process"]["pid"] == p.pid
    assert p.poll() is None
