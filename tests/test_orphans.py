"""No orphaned agent, ever: an injected agent leaves by itself when its client dies without
detaching (at any phase), or never comes; a later client never inherits one for good.

Each test attaches to a real target through the real injection path (gdb), kills the real
client process with SIGKILL, and then watches the target's own view of itself: its
``sys.meta_path``, its threads and its socket."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from procinfo import tasks
from scenario import SRC
from test_terminal import tmux  # noqa: F401  (the fixture: the UI in a real terminal)

pytestmark = pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed")

WATCHER = r"""
import os, sys, threading, time
here = os.path.dirname(os.path.abspath(__file__))
print("ready", flush=True)
while True:
    state = " ".join(sorted(type(f).__name__ for f in sys.meta_path))
    state += " | " + " ".join(sorted(t.name for t in threading.enumerate()))
    tmp = os.path.join(here, "state.tmp")
    with open(tmp, "w") as fh:
        fh.write(state)
    os.replace(tmp, os.path.join(here, "state"))
    time.sleep(0.02)
"""

CLIENT = r"""
import sys, time
from reloadscope.attach.session import Session
from reloadscope.attach.inject import inject
pid, phase = int(sys.argv[1]), sys.argv[2]
if phase == "injected":  # the agent was started, but this client never connects
    inject(pid)
    print("phase reached", flush=True)
    time.sleep(600)
s = Session(pid)
if phase == "scanning":
    s.client._out.write(b'{"id": 1, "op": "scan"}\n')
    s.client._out.flush()
if phase == "waiting":  # following: a long wait for the next generation
    s.client._out.write(b'{"id": 1, "op": "wait", "after": 0, "timeout": 30}\n')
    s.client._out.flush()
print("phase reached", flush=True)
time.sleep(600)
"""


def _state(d: Path) -> str:
    return (d / "state").read_text()


def _socket(pid: int) -> Path:
    return Path(f"/tmp/reloadscope-{os.getuid()}/{pid}.sock")


@pytest.fixture
def target(tmp_path: Path):
    (tmp_path / "w.py").write_text(WATCHER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    p = subprocess.Popen(
        [sys.executable, str(tmp_path / "w.py")], cwd=tmp_path, stdout=subprocess.PIPE, env=env
    )
    assert p.stdout.readline().strip() == b"ready"
    time.sleep(0.1)
    try:
        yield p, tmp_path
    finally:
        p.kill()
        p.wait()


def _wait_clean(p: subprocess.Popen, d: Path, before: str, before_tasks, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if _state(d) == before and not _socket(p.pid).exists() and tasks(p.pid) == before_tasks:
            return
        time.sleep(0.1)
    raise AssertionError(
        f"the agent stayed: state {_state(d)!r} (before {before!r}), "
        f"socket {_socket(p.pid).exists()}"
    )


@pytest.mark.parametrize("phase", ["injected", "connected", "scanning", "waiting"])
def test_a_killed_client_leaves_no_agent(target, phase):
    p, d = target
    before, before_tasks = _state(d), tasks(p.pid)
    # Killed while it waits, the agent must notice at once, not after the wait's 30 s (nor
    # leave only by its idle time, which is long here).
    idle = "60" if phase == "waiting" else "2"
    env = dict(os.environ, PYTHONPATH=SRC, RELOADSCOPE_AGENT_IDLE_S=idle)
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, str(p.pid), phase], stdout=subprocess.PIPE, env=env
    )
    try:
        assert client.stdout.readline().strip() == b"phase reached"
        deadline = time.time() + 10  # the target writes down what it sees every 20 ms
        while not ("_ReloadFinder" in _state(d) and "reloadscope-agent" in _state(d)):
            assert time.time() < deadline, f"no agent in the target: {_state(d)!r}"
            time.sleep(0.02)
        client.send_signal(signal.SIGKILL)
        client.wait()
        # Killed while connected: it leaves at once; never connected: after its idle time.
        _wait_clean(p, d, before, before_tasks, timeout=5 if phase == "waiting" else 15)
    finally:
        client.kill()
        client.wait()
    assert p.poll() is None


def test_a_later_client_does_not_inherit_a_leftover_agent(target):
    p, d = target
    before, before_tasks = _state(d), tasks(p.pid)
    env = dict(os.environ, PYTHONPATH=SRC, RELOADSCOPE_AGENT_IDLE_S="60")
    inject_only = subprocess.run(
        [sys.executable, "-c", "import sys; from reloadscope.attach.inject import inject; "
         "inject(int(sys.argv[1]))", str(p.pid)],
        env=env, timeout=60, capture_output=True, text=True,
    )  # fmt: skip
    assert inject_only.returncode == 0, inject_only.stderr
    assert _socket(p.pid).exists()  # a leftover: its injector is gone, its idle time long
    report = subprocess.run(
        [sys.executable, "-m", "reloadscope", "report", str(p.pid), "--json"],
        env=env, timeout=60, capture_output=True, text=True,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    # The report used the leftover, and the leftover left with that client.
    _wait_clean(p, d, before, before_tasks, timeout=10)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_a_killed_ui_leaves_no_agent(target, tmux):  # noqa: F811
    p, d = target
    before, before_tasks = _state(d), tasks(p.pid)
    t = tmux(f"env PYTHONPATH={SRC} {sys.executable} -m reloadscope attach {p.pid}", d)
    t.wait_for("live process")
    assert "_ReloadFinder" in _state(d)
    ui = subprocess.run(
        ["pgrep", "-f", f"reloadscope attach {p.pid}"], capture_output=True, text=True
    ).stdout.split()
    assert ui, "the UI process was not found"
    for pid in ui:
        os.kill(int(pid), signal.SIGKILL)
    _wait_clean(p, d, before, before_tasks, timeout=10)


def test_an_agent_that_cannot_listen_leaves_nothing(scenario):
    # Its socket directory is not private (another user could have made it): it must not
    # listen there, and must not stay recording either.
    r = scenario.run(
        """
        import os, sys, threading, rs
        from reloadscope import agent
        d = f"/tmp/reloadscope-{os.getuid()}"
        os.makedirs(d, exist_ok=True)
        mode = os.stat(d).st_mode & 0o777
        os.chmod(d, 0o777)
        try:
            try:
                agent.serve_injected()
                raised = None
            except Exception as e:
                raised = type(e).__name__
        finally:
            os.chmod(d, mode)
        finders = [type(f).__name__ for f in sys.meta_path]
        rs.report({"modules": []}, raised=raised, finders=finders, recorder=agent.recorder(),
                  threads=[t.name for t in threading.enumerate()])
        """
    )
    assert r.extra["raised"] == "PermissionError"
    assert "_ReloadFinder" not in r.extra["finders"]
    assert r.extra["recorder"] is None
    assert r.extra["threads"] == ["MainThread"]


SIGPIPE_DEFAULT = """
import os, signal, sys, time
signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # as many command-line tools do
sys.path.insert(0, sys.argv[1])
import reloadscope
reloadscope.install()
keep = [list(range(100)) for _ in range(20000)]  # a scan answer of some size, a heap to walk
print("ready", os.getpid(), flush=True)
while True:
    time.sleep(0.05)
"""


def test_a_client_gone_before_its_answer_never_kills_a_target_with_default_sigpipe(tmp_path):
    import json
    import socket as socketlib

    p = subprocess.Popen(
        [sys.executable, "-c", SIGPIPE_DEFAULT, SRC],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert p.stdout is not None
        assert p.stdout.readline().startswith("ready")
        path = _socket(p.pid)

        def connect() -> socketlib.socket:
            # (A socket file a killed process of this PID left may be there before ours.)
            deadline = time.time() + 20
            while True:
                c = socketlib.socket(socketlib.AF_UNIX)
                try:
                    c.connect(str(path))
                    return c
                except OSError:
                    c.close()
                    if time.time() > deadline:
                        raise
                    time.sleep(0.05)

        for _ in range(3):
            c = connect()
            assert json.loads(c.makefile("rb").readline())["reloadscope"] == 1
            c.sendall(b'{"op": "scan", "id": 1}\n')
            c.close()  # gone before the answer: the agent's write fails
            time.sleep(1.0)
            assert p.poll() is None, f"the target died: {p.returncode}"
        out = subprocess.run(
            [sys.executable, "-m", "reloadscope", "report", str(p.pid), "--json"],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=SRC),
            timeout=90,
        )
        assert out.returncode == 0, out.stderr  # and its agent still answers
    finally:
        p.kill()
        p.wait()
