"""What a PID command waits for, on a terminal: a progress line on stderr (a real pty), never
on a pipe, never when the wait is short, and never in the way of the output."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import shutil
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from reloadscope.agent.server import socket_path
from scenario import SRC

ERASE = "\r\x1b[K"

TARGET = """
import sys
{setup}
print("ready", flush=True)
sys.stdin.read()  # until the test closes our stdin
"""
LISTENING = "import reloadscope\nreloadscope.install(listen=True)"
# An agent from before progress lines: it answers "progress": true with the answer alone (the
# real server, only never given the connection to send progress on).
OLD_AGENT = (
    LISTENING
    + """
from reloadscope.agent import server
_answer = server.Server._answer
server.Server._answer = lambda self, line, out=None: _answer(self, line)
"""
)

# An agent whose scans take a while: the wait passes the default threshold of a second.
SLOW_AGENT = (
    LISTENING
    + """
import time
from reloadscope import agent
_scan = agent._server.handlers["scan"]
def _slow(req):
    time.sleep(1.5)
    return _scan(req)
agent._server.handlers["scan"] = _slow
"""
)


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("RELOADSCOPE_")}
    return dict(e, PYTHONPATH=SRC, PYTHONDONTWRITEBYTECODE="1", **extra)


def start(tmp_path: Path, setup: str) -> subprocess.Popen[str]:
    p = subprocess.Popen(
        [sys.executable, "-c", TARGET.format(setup=setup)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env(),
        cwd=tmp_path,
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    if setup:
        deadline = time.time() + 10
        while not os.path.exists(socket_path(p.pid)):
            assert time.time() < deadline, "agent socket never appeared"
            time.sleep(0.02)
    return p


@pytest.fixture
def target(request, tmp_path):
    p = start(tmp_path, getattr(request, "param", LISTENING))
    yield p
    p.kill()
    p.wait()


class Run:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    def lines(self) -> list[str]:
        """The progress lines drawn, in order (each starts with the erase sequence)."""
        return [s.split("\r\n")[0] for s in self.stderr.split(ERASE)[1:] if s]


def _read_all(fd: int, into: list[bytes]) -> None:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: every copy of the terminal's other end is closed
            return
        if not chunk:
            return
        into.append(chunk)


def cli_on_terminal(*args: str, columns: int = 200, **extra: str) -> Run:
    """Run the CLI with stderr on a pseudo-terminal (stdout on a pipe, as for '| jq')."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    got: list[bytes] = []
    reader = threading.Thread(target=_read_all, args=(master, got), daemon=True)
    reader.start()
    try:
        p = subprocess.run(
            [sys.executable, "-m", "reloadscope", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            env=env(**extra),
            timeout=120,
        )
    finally:
        os.close(slave)
    reader.join(10)
    os.close(master)
    return Run(p.returncode, p.stdout.decode(), b"".join(got).decode())


def cli_on_pipes(*args: str, **extra: str) -> Run:
    p = subprocess.run(
        [sys.executable, "-m", "reloadscope", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env(**extra),
        timeout=120,
    )
    return Run(p.returncode, p.stdout, p.stderr)


NOW = {"RELOADSCOPE_PROGRESS_AFTER_S": "0"}  # every wait counts as long


def test_report_json_on_a_terminal_says_what_it_scans_and_erases_it(target):
    r = cli_on_terminal("report", str(target.pid), "--json", **NOW)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)  # stdout is the document and nothing else
    n = doc["scan"]["objects"]
    assert r.lines() == [
        f"reloadscope: scanning PID {target.pid}...",
        f"reloadscope: scanning {n:,} objects in PID {target.pid}...",
    ], r.stderr
    assert r.stderr.endswith(ERASE), r.stderr  # the line is gone before anything else


def test_report_on_a_pipe_shows_no_progress(target):
    r = cli_on_pipes("report", str(target.pid), "--json", **NOW)
    assert r.returncode == 0 and r.stderr == ""
    assert json.loads(r.stdout)["process"]["pid"] == target.pid


def test_a_quick_report_shows_no_progress_on_a_terminal(target):
    # The default threshold is a second; scanning this small target takes a fraction of it.
    r = cli_on_terminal("report", str(target.pid))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.startswith(f"reloadscope report: pid {target.pid}")


@pytest.mark.parametrize("target", [SLOW_AGENT], indirect=True, ids=["slow-agent"])
def test_a_wait_over_a_second_shows_the_line_with_the_default_threshold(target):
    r = cli_on_terminal("report", str(target.pid), "--json")
    assert r.returncode == 0, r.stderr
    n = json.loads(r.stdout)["scan"]["objects"]
    # Drawn after a second (the scan had not begun), then at once when the count came.
    assert r.lines() == [
        f"reloadscope: scanning PID {target.pid}...",
        f"reloadscope: scanning {n:,} objects in PID {target.pid}...",
    ], r.stderr
    assert r.stderr.endswith(ERASE)


def test_snapshot_pid_erases_the_line_before_its_own_output(target, tmp_path):
    out = tmp_path / "now.rsnap"
    r = cli_on_terminal("snapshot", str(target.pid), "-o", str(out), **NOW)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == str(out)
    progress, _, rest = r.stderr.rpartition(ERASE)
    assert f"objects in PID {target.pid}..." in progress
    assert rest == f"0 stale objects in process {target.pid}\r\n", r.stderr


def test_a_narrow_terminal_gets_lines_that_fit(target):
    r = cli_on_terminal("report", str(target.pid), "--json", columns=30, **NOW)
    assert r.returncode == 0, r.stderr
    lines = r.lines()
    assert lines and all(len(line) <= 29 for line in lines), lines
    assert lines[-1].startswith("reloadscope: scanning") and lines[-1].endswith("...")


@pytest.mark.parametrize("target", [OLD_AGENT], indirect=True, ids=["old-agent"])
def test_an_agent_that_sends_no_progress_still_answers(target):
    r = cli_on_terminal("report", str(target.pid), "--json", **NOW)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["process"]["pid"] == target.pid
    assert r.lines() == [f"reloadscope: scanning PID {target.pid}..."], r.stderr


def test_the_agent_sends_progress_only_to_a_client_that_asks(target):
    s = socket.socket(socket.AF_UNIX)
    s.connect(socket_path(target.pid))
    f = s.makefile("rwb")
    assert json.loads(f.readline())["reloadscope"] == 1
    f.write(b'{"id": 1, "op": "scan", "progress": true}\n')
    f.flush()
    news = json.loads(f.readline())
    answer = json.loads(f.readline())
    assert answer["id"] == 1 and answer["ok"] is True
    assert news == {"id": 1, "progress": {"objects": answer["result"]["report"]["scan"]["objects"]}}
    f.write(b'{"id": 2, "op": "scan"}\n')  # as every client before progress lines
    f.flush()
    answer = json.loads(f.readline())
    assert answer["id"] == 2 and answer["ok"] is True and "progress" not in answer
    f.write(b'{"id": 3, "op": "ping", "progress": true}\n')  # nothing to tell: the answer
    f.flush()
    assert json.loads(f.readline()) == {"id": 3, "ok": True, "result": "pong"}
    s.close()


def _can_inject() -> bool:
    return shutil.which("gdb") is not None or hasattr(sys, "remote_exec")


@pytest.mark.skipif(not _can_inject(), reason="injection needs gdb (or sys.remote_exec, 3.14+)")
@pytest.mark.parametrize("target", [""], indirect=True, ids=["no-agent"])
def test_an_injection_is_shown_then_the_scan(target):
    r = cli_on_terminal("report", str(target.pid), "--json", **NOW)
    assert r.returncode == 0, r.stderr
    lines = r.lines()
    assert re.fullmatch(
        rf"reloadscope: injecting the agent into PID {target.pid} \((gdb|sys\.remote_exec)\)\.\.\.",
        lines[0],
    ), lines
    assert lines[-1].startswith("reloadscope: scanning ") and lines[-1].endswith(
        f" objects in PID {target.pid}..."
    ), lines
    assert r.stderr.endswith(ERASE)


@pytest.mark.skipif(not _can_inject(), reason="injection needs gdb (or sys.remote_exec, 3.14+)")
@pytest.mark.parametrize("target", [""], indirect=True, ids=["no-agent"])
def test_attach_shows_the_injection_before_the_ui_takes_the_terminal(target):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    p = subprocess.Popen(
        [sys.executable, "-m", "reloadscope", "attach", str(target.pid)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env(TERM="xterm-256color", **NOW),
        start_new_session=True,
    )
    os.close(slave)
    got: list[bytes] = []
    reader = threading.Thread(target=_read_all, args=(master, got), daemon=True)
    reader.start()  # drained all along: a UI whose terminal is full stops reading keys
    try:
        deadline = time.time() + 60
        # The UI is up once it shows the process it attached to.
        while b"live process" not in b"".join(got) and time.time() < deadline:
            time.sleep(0.1)
        text = b"".join(got).decode(errors="replace")
        assert "live process" in text, text[-2000:]
        line = f"reloadscope: injecting the agent into PID {target.pid} ("
        assert line in text, text[:2000]
        # Erased before the UI started drawing.
        assert text.index(ERASE, text.index(line)) < text.index("live process")
        deadline = time.time() + 30
        while p.poll() is None and time.time() < deadline:
            os.write(master, b"q")  # until the UI, ready for keys, quits
            time.sleep(0.3)
        assert p.wait(5) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        reader.join(10)
        os.close(master)
    assert target.poll() is None  # the target runs on


def test_no_collect_scans_without_a_collection_first(target):
    # SPEC: report PID and snapshot PID accept --no-collect.
    plain = json.loads(cli_on_pipes("report", str(target.pid), "--json", **NOW).stdout)
    r = cli_on_pipes("report", str(target.pid), "--json", "--no-collect", **NOW)
    assert r.returncode == 0, r.stderr
    assert plain["scan"]["collected"] is True
    assert json.loads(r.stdout)["scan"]["collected"] is False
