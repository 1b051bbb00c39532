"""Attaching never hangs or kills the target (issue 20): real targets on every CPython, through
the real CLI and gdb.

The targets are the hard cases: CPU-bound threads fighting over the GIL while the main thread
sleeps 2 ms at a time; a main thread blocked in ``read(2)`` while another thread holds the GIL
in one long C call; the CLI's process group getting Ctrl-C, or the CLI killed, in the middle of
an injection; switch intervals so short that the bootstrap's thread races the code that started
it.  After each: the target still runs (its ticks advance), nobody traces it, no thread of it
waits forever, and it can be reported on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from procinfo import progresses
from scenario import SRC, pythons, version_id

needs_gdb = pytest.mark.skipif(
    subprocess.run(["which", "gdb"], capture_output=True).returncode != 0,
    reason="gdb is not installed",
)
pytestmark = needs_gdb

# Ticks (from the main thread) prove the target runs; it stays a plain process that never
# imported reloadscope, so every report injects.
TICKER = r"""
import os, sys, threading, time
here = sys.argv[1]
def tick(n):
    tmp = os.path.join(here, "ticks.tmp")
    with open(tmp, "w") as fh:
        fh.write(str(n))
    os.replace(tmp, os.path.join(here, "ticks"))
"""

BUSY = (
    TICKER
    + r"""
def hog():
    while True:
        sum(range(2000))
for _ in range(3):
    threading.Thread(target=hog, daemon=True).start()
if len(sys.argv) > 2:
    sys.setswitchinterval(float(sys.argv[2]))
print("ready", flush=True)
n = 0
while True:
    n += 1
    if n % 50 == 0:
        tick(n)
    time.sleep(0.002)
"""
)

# The main thread waits in read(2) on a pipe nobody writes; a second thread takes the GIL into
# one C call of HOLD seconds (ctypes.PyDLL keeps the GIL), HOLD_AFTER seconds after "ready".
# A third thread ticks, so that progress shows once the GIL is free again.
GIL_HOG = (
    TICKER
    + r"""
import ctypes
hold, after = float(sys.argv[2]), float(sys.argv[3])
def hog():
    time.sleep(after)
    ctypes.PyDLL(None).usleep(int(hold * 1e6))
def ticker():
    n = 0
    while True:
        n += 1
        tick(n)
        time.sleep(0.02)
threading.Thread(target=hog, daemon=True).start()
threading.Thread(target=ticker, daemon=True).start()
print("ready", flush=True)
r, w = os.pipe()
os.read(r, 1)
"""
)


def env(**extra: str) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=SRC, PYTHONDONTWRITEBYTECODE="1", **extra)


def cli(*args: str, timeout: float = 120, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reloadscope", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=kw.pop("env", None) or env(),  # type: ignore[arg-type]
        **kw,  # type: ignore[call-overload]
    )


def status(pid: int, field: str) -> str:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    return ""


def untraced(pid: int, timeout: float = 20) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if status(pid, "TracerPid") == "0":
            return True
        time.sleep(0.05)
    return False


def start(python: str, script: str, d: Path, *args: str) -> subprocess.Popen[str]:
    (d / "target.py").write_text(script)
    p = subprocess.Popen(
        [python, str(d / "target.py"), str(d), *args],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # not in the CLI's process group, as from another terminal
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return p


def stop(p: subprocess.Popen[str]) -> None:
    if p.poll() is None:
        p.kill()
    p.wait()


def assert_unharmed(p: subprocess.Popen[str], d: Path) -> None:
    """Running, untraced, making progress, not stopped: as before the attach."""
    assert p.poll() is None, f"the target died: {p.returncode}"
    assert untraced(p.pid), f"still traced by {status(p.pid, 'TracerPid')}"
    # Not stopped (T), traced-stopped (t) or dead; D is a brief wait in the kernel (a page
    # fault under load), as harmless as S.
    assert status(p.pid, "State")[0] in "RSD", status(p.pid, "State")
    assert progresses(d, 20), "the target makes no progress: hung"


def report_ok(pid: int, **kw: object) -> dict[str, object]:
    out = cli("report", str(pid), "--json", **kw)
    assert out.returncode == 0, (out.returncode, out.stderr)
    doc = json.loads(out.stdout)
    assert doc["process"]["pid"] == pid
    return doc


@pytest.fixture(params=pythons(), ids=version_id)
def python(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def busy(python: str, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    p = start(python, BUSY, tmp_path)
    yield p
    stop(p)


def test_a_busy_target_is_reported_on_again_and_again_and_runs_on(busy, tmp_path):
    # Three CPU-bound threads and a main thread in a 2 ms sleep loop: the main thread is as
    # likely to be stopped waiting for the GIL as sleeping.  Deciding from a look taken before
    # gdb stopped it hung every thread of such a target for good, now and then.
    for _ in range(4):
        report_ok(busy.pid)
    assert_unharmed(busy, tmp_path)
    with (
        subprocess.Popen(
            [sys.executable, "-m", "reloadscope", "report", str(busy.pid), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env(),
        ) as a,
        subprocess.Popen(
            [sys.executable, "-m", "reloadscope", "report", str(busy.pid), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env(),
        ) as b,
    ):
        outs = [a.communicate(timeout=180), b.communicate(timeout=180)]
    assert a.returncode == b.returncode == 0, outs
    assert_unharmed(busy, tmp_path)


def test_a_storm_of_reports_leaves_a_busy_target_running_and_attachable(tmp_path):
    # 50 reports one after the other, then 5 at once, on this interpreter's version.
    p = start(sys.executable, BUSY, tmp_path)
    try:
        for _ in range(50):
            report_ok(p.pid)
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "reloadscope", "report", str(p.pid), "--json"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env(),
            )
            for _ in range(5)
        ]
        for q in procs:
            _, err = q.communicate(timeout=300)
            assert q.returncode == 0, err
        assert_unharmed(p, tmp_path)
        report_ok(p.pid)
    finally:
        stop(p)


def test_the_bootstrap_does_not_race_the_code_that_started_it(python, tmp_path):
    # A switch interval of a microsecond: the bootstrap's thread runs while the code that
    # started it is still deleting its names (it read Finder from them, and never started).
    p = start(python, BUSY, tmp_path, "1e-6")
    try:
        for _ in range(3):
            report_ok(p.pid)
        assert_unharmed(p, tmp_path)
    finally:
        stop(p)


def test_a_gil_held_past_the_budget_is_a_clear_refusal_and_the_target_runs_on(python, tmp_path):
    # Main thread in read(2), another thread inside one C call that keeps the GIL for longer
    # than the CLI waits: gdb was killed inside its call, and the target died when the C call
    # returned.  Now: a refusal, and nothing of the attempt is left in the target.
    p = start(python, GIL_HOG, tmp_path, "6", "0.2")
    try:
        time.sleep(0.5)  # the hog holds the GIL now
        out = cli("report", str(p.pid), env=env(RELOADSCOPE_SAFE_POINT_S="2"))
        assert out.returncode == 2, (out.stdout, out.stderr)
        lines = out.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("reloadscope: error: "), out.stderr
        assert "did not reach a point where Python code can safely run" in lines[0]
        assert "nothing in it was changed" in lines[0]
        assert untraced(p.pid)
        time.sleep(5)  # the C call returns: the main thread passes where a breakpoint was
        assert_unharmed(p, tmp_path)
        report_ok(p.pid)
        assert_unharmed(p, tmp_path)
    finally:
        stop(p)


@pytest.mark.parametrize("how", ["ctrl-c", "kill"])
def test_an_injection_cut_short_leaves_the_target_as_it_was(python, tmp_path, how):
    # The CLI waits for a safe point (the GIL is held elsewhere); the terminal's Ctrl-C reaches
    # its whole process group, or the CLI is killed outright.  gdb ran in that group and died
    # inside its call (SIGSEGV in the target); a gdb killed with its breakpoints in would leave
    # an int3 for the target to die on (SIGTRAP).
    p = start(python, GIL_HOG, tmp_path, "5", "0.2")
    try:
        time.sleep(0.5)
        c = subprocess.Popen(
            [sys.executable, "-m", "reloadscope", "report", str(p.pid)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(RELOADSCOPE_SAFE_POINT_S="30"),
            start_new_session=True,  # a process group of its own, as a shell's job
        )
        deadline = time.time() + 30
        while status(p.pid, "TracerPid") == "0":  # gdb is attached: the injection is on
            assert time.time() < deadline, "gdb never attached"
            time.sleep(0.02)
        time.sleep(0.5)
        if how == "ctrl-c":
            os.killpg(c.pid, signal.SIGINT)
        else:
            c.kill()
        _, err = c.communicate(timeout=60)
        if how == "ctrl-c":
            assert c.returncode == 130, err
            assert "Traceback" not in err
        assert untraced(p.pid)
        time.sleep(5)  # the C call ends; the main thread runs where the breakpoints were
        assert_unharmed(p, tmp_path)
        report_ok(p.pid)
    finally:
        stop(p)
