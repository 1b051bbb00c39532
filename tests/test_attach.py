"""PID commands against real child processes whose agent listens (run / install)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from procinfo import fds, tasks, ticks
from reloadscope.agent.server import MAX_REQUEST, socket_path
from scenario import SRC

TARGET = """
import importlib, os, sys, threading, time
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
def write(text, bump):
    path = os.path.join(here, "tplug.py")
    with open(path, "w") as fh:
        fh.write(text)
    os.utime(path, (time.time() + bump, time.time() + bump))
    importlib.invalidate_caches()
write("def f():\\n    return 1\\n", 0)
{setup}
import tplug
keep = tplug.f
write("def f():\\n    return 2\\n", 10)
importlib.reload(tplug)
ticks = 0
def work():
    global ticks
    while True:
        ticks += 1
        with open(os.path.join(here, "ticks.tmp"), "w") as fh:
            fh.write(str(ticks))
        os.replace(os.path.join(here, "ticks.tmp"), os.path.join(here, "ticks"))
        time.sleep(0.02)
threading.Thread(target=work, daemon=True).start()
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=SRC, PYTHONDONTWRITEBYTECODE="1")


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reloadscope", *args],
        capture_output=True,
        text=True,
        env=env(),
        timeout=timeout,
    )


def start(tmp_path: Path, how: str) -> subprocess.Popen[str]:
    setup = "import reloadscope; reloadscope.install()" if how == "install" else ""
    script = tmp_path / "target.py"
    script.write_text(TARGET.format(setup=setup))
    cmd = [sys.executable, str(script)]
    if how == "run":
        cmd = [sys.executable, "-m", "reloadscope", "run", str(script)]
    p = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), cwd=tmp_path
    )
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "ready", p.stderr.read() if p.stderr else ""
    deadline = time.time() + 10
    while how != "plain" and not os.path.exists(socket_path(p.pid)):
        assert time.time() < deadline, "agent socket never appeared"
        time.sleep(0.05)
    return p


@pytest.fixture(params=["run", "install"])
def target(request, tmp_path):
    p = start(tmp_path, request.param)
    yield p
    p.kill()
    p.wait()


def test_report_pid_finds_the_stale_copy_and_leaves_the_target_running(target, tmp_path):
    before_threads, before_fds = tasks(target.pid), fds(target.pid)
    out = cli("report", str(target.pid), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    (mod,) = [m for m in doc["modules"] if m["name"] == "tplug"]
    (entry,) = mod["stale"]
    assert entry["qualname"] == "f" and entry["paths"][0]["text"] == "__main__.keep"
    assert doc["process"]["pid"] == target.pid
    t0 = ticks(tmp_path)
    time.sleep(0.3)
    assert ticks(tmp_path) > t0, "target stopped making progress"
    assert target.poll() is None
    assert tasks(target.pid) == before_threads
    assert fds(target.pid) == before_fds


def test_snapshot_pid_writes_the_file_and_prints_its_path_last(target, tmp_path):
    out = cli("snapshot", str(target.pid), "-o", str(tmp_path / "live.rsnap"))
    assert out.returncode == 0, out.stderr
    path = out.stdout.strip().splitlines()[-1]
    assert path == str(tmp_path / "live.rsnap")
    rep = cli("report", path, "--fail-on-stale")
    assert rep.returncode == 1 and "__main__.keep" in rep.stdout


def test_ps_lists_the_target_with_its_agent(target):
    out = cli("ps", "--json")
    assert out.returncode == 0, out.stderr
    rows = {row["pid"]: row for row in json.loads(out.stdout)}
    assert rows[target.pid]["agent"] is True
    assert rows[target.pid]["python"] == "{}.{}".format(*sys.version_info[:2])


def test_bad_requests_get_errors_and_the_agent_keeps_serving(target):
    s = socket.socket(socket.AF_UNIX)
    s.connect(socket_path(target.pid))
    f = s.makefile("rwb")
    hello = json.loads(f.readline())
    assert hello["reloadscope"] == 1 and hello["pid"] == target.pid
    for bad in (
        b"not json\n",
        b'{"no": "op"}\n',
        b'{"op": "nope", "id": 3}\n',
        b"x" * (MAX_REQUEST + 10) + b"\n",
    ):
        f.write(bad)
        f.flush()
        reply = json.loads(f.readline())
        assert reply["ok"] is False and reply["error"]
    f.write(b'{"op": "ping", "id": 9}\n')
    f.flush()
    assert json.loads(f.readline()) == {"id": 9, "ok": True, "result": "pong"}
    s.close()


def test_socket_is_private(target):
    path = socket_path(target.pid)
    assert os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o700
    assert os.stat(path).st_mode & 0o077 == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["report", "999999"], "no process with PID 999999"),
        (["report", "1"], "is not a Python process"),
        (["snapshot", "abc"], "'abc' is not a process ID"),
        (["run", "/nonexistent/script.py"], "no such script"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(args, message):
    out = cli(*args)
    assert out.returncode == 2
    assert out.stderr.startswith("reloadscope: error: ") and message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_run_passes_arguments_and_exit_status(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text("import sys\nprint(sys.argv)\nraise SystemExit(3)\n")
    out = cli("run", str(script), "--flag", "x")
    assert out.returncode == 3
    assert out.stdout.strip() == repr([str(script), "--flag", "x"])


def test_a_python_too_old_is_named(tmp_path):
    import glob

    olds = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.[6-9]*/bin/python")))
    if not olds:
        pytest.skip("no CPython older than 3.10 here")
    p = subprocess.Popen(
        [olds[-1], "-c", "import time; print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        p.stdout.readline()
        out = cli("report", str(p.pid))
        assert out.returncode == 2
        assert "needs CPython 3.10 or newer" in out.stderr and "runs Python 3." in out.stderr
    finally:
        p.kill()
        p.wait()


def test_no_socket_is_left_when_the_process_exits(tmp_path):
    script = tmp_path / "short.py"
    script.write_text("import time\nprint('ready', flush=True)\ntime.sleep(0.5)\n")
    p = subprocess.Popen(
        [sys.executable, "-m", "reloadscope", "run", str(script)],
        stdout=subprocess.PIPE,
        text=True,
        env=env(),
    )
    p.stdout.readline()
    deadline = time.time() + 5
    while not os.path.exists(socket_path(p.pid)) and time.time() < deadline:
        time.sleep(0.02)
    assert os.path.exists(socket_path(p.pid))
    assert p.wait(10) == 0
    assert not os.path.exists(socket_path(p.pid))


def test_a_stale_socket_of_a_dead_process_is_not_mistaken_for_an_agent(tmp_path):
    p = start(tmp_path, "plain")
    try:
        path = socket_path(p.pid)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        if os.path.exists(path):
            os.unlink(path)  # one a killed process of this PID left already: the same case
        dead = socket.socket(socket.AF_UNIX)
        dead.bind(path)  # bound, never listening: what a killed agent leaves
        dead.close()
        out = cli("report", str(p.pid), "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["process"]["pid"] == p.pid
    finally:
        p.kill()
        p.wait()


def test_a_write_lock_an_interrupted_call_left_held_does_not_hang_the_next_request(target):
    """A Ctrl-C that lands between taking the client's write lock and its ``with`` block's
    cleanup leaves the lock held by the main thread; the requests it makes next (the watch's
    detach in its ``finally``) must still go through: they waited for ever."""
    import threading

    from reloadscope.attach.client import Client

    client = Client(target.pid, timeout=30)
    answers: list[object] = []

    def interrupted_then_asks() -> None:
        client._writing.acquire()  # left held, as the interrupted call left it
        try:
            answers.append(client.request("ping"))
        except BaseException as e:  # reported below
            answers.append(e)
        finally:
            client.close()

    runner = threading.Thread(target=interrupted_then_asks, daemon=True)
    runner.start()
    runner.join(60)
    assert not runner.is_alive(), "the request waited for the lock its own thread holds"
    assert len(answers) == 1 and not isinstance(answers[0], BaseException), answers
    assert target.poll() is None
