"""The UI in a real terminal (tmux): findings on screen with no key press, q quits."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from scenario import SRC

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
FIXTURE = Path(__file__).parent / "fixtures" / "snapshot-v1.rsnap"


class Tmux:
    def __init__(self, name: str, command: str, cwd: Path) -> None:
        # Unique: pids come round again (pid_max is often 32768), and a session of a killed
        # run may still hold an earlier process's name.  On a server of its own: the shared
        # one exits when its last session is killed, and a new session started meanwhile
        # fails (seen on 3.15: the next parametrised test's first command exited 1).
        self.name = name = f"{name}-{uuid.uuid4().hex[:8]}"
        self.tmux = ["tmux", "-L", name]
        env = f"PYTHONPATH={SRC} PYTHONDONTWRITEBYTECODE=1 TERM=xterm-256color"
        subprocess.run(
            [
                *self.tmux,
                "new-session",
                "-d",
                "-s",
                name,
                "-x",
                "120",
                "-y",
                "40",
                "-c",
                str(cwd),
                f"env {env} {command}; sleep 30",
            ],
            check=True,
        )

    def screen(self) -> str:
        return subprocess.run(
            [*self.tmux, "capture-pane", "-p", "-t", self.name], capture_output=True, text=True
        ).stdout

    def wait_for(self, text: str, timeout: float = 20) -> str:
        deadline = time.time() + timeout
        while time.time() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared on screen:\n{self.screen()}")

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", self.name, *keys], check=True)

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)


@pytest.fixture
def tmux(request):
    sessions: list[Tmux] = []

    def make(command: str, cwd: Path) -> Tmux:
        t = Tmux(f"rs-{os.getpid()}-{len(sessions)}-{request.node.name[:20]}", command, cwd)
        sessions.append(t)
        return t

    yield make
    for t in sessions:
        t.close()


def test_open_file_shows_findings_and_quits(tmux, tmp_path):
    t = tmux(f"{sys.executable} -m reloadscope open {FIXTURE}; echo EXITED $?", tmp_path)
    screen = t.wait_for("demo_app.visitor.__class__")
    assert "demo_greeter" in screen and "fix:" in screen
    t.keys("q")
    t.wait_for("EXITED 0")


BREAKPOINT_SCRIPT = r"""
import importlib, os, sys, threading, time
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
path = os.path.join(here, "bplug.py")
open(path, "w").write("def cb():\n    return 1\n")
import reloadscope
reloadscope.install(listen=False)
import bplug
callbacks = [bplug.cb]
open(path, "w").write("def cb():\n    return 2\n")
os.utime(path, (time.time() + 10, time.time() + 10))
importlib.reload(bplug)
def worker():
    breakpoint()  # PYTHONBREAKPOINT=reloadscope.breakpoint
how = sys.argv[1] if len(sys.argv) > 1 else "thread"
if how == "thread":
    t = threading.Thread(target=worker)
    t.start()
    t.join()
elif how == "asyncio":
    import asyncio
    async def main():
        breakpoint()
    asyncio.run(main())
else:
    breakpoint()
print("CARRIED ON", bplug.cb())
"""


@pytest.mark.parametrize("how", ["main", "thread", "asyncio"])
def test_breakpoint_then_the_program_carries_on(tmux, tmp_path, how):
    (tmp_path / "bp.py").write_text(BREAKPOINT_SCRIPT)
    t = tmux(f"env PYTHONBREAKPOINT=reloadscope.breakpoint {sys.executable} bp.py {how}", tmp_path)
    t.wait_for("__main__.callbacks[0]")
    t.wait_for("bplug")  # the modules table may be drawn a frame after the held-by panel
    t.keys("q")
    t.wait_for("CARRIED ON 2")


def test_attach_pid_in_a_terminal_then_the_target_runs_on(tmux, tmp_path):
    target = tmp_path / "target.py"
    target.write_text(
        BREAKPOINT_SCRIPT.split("def worker")[0].replace("reloadscope.install(listen=False)", "")
        + "print('ready', flush=True)\nwhile True:\n"
        "    time.sleep(0.05)\n"
    )
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    p = subprocess.Popen(
        [sys.executable, str(target)], stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path
    )
    try:
        p.stdout.readline()
        t = tmux(f"{sys.executable} -m reloadscope attach {p.pid}; echo EXITED $?", tmp_path)
        t.wait_for("live process")
        t.keys("q")
        t.wait_for("EXITED 0")
        assert p.poll() is None
    finally:
        p.kill()
        p.wait()


def test_breakpoint_without_a_terminal_writes_a_snapshot(tmp_path):
    (tmp_path / "bp.py").write_text(BREAKPOINT_SCRIPT)
    out = subprocess.run(
        [sys.executable, "bp.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=dict(
            os.environ,
            PYTHONPATH=SRC,
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONBREAKPOINT="reloadscope.breakpoint",
        ),
    )
    assert out.returncode == 0, out.stderr
    assert "CARRIED ON 2" in out.stdout
    assert "no terminal here; snapshot written to" in out.stderr
    (snap,) = tmp_path.glob("reloadscope-*.rsnap")
    import reloadscope

    assert reloadscope.load(snap).module("bplug").stale_count == 1
