"""Targets in containers: a private /tmp (mount namespace, as systemd's PrivateTmp) and a PID
namespace, made for real with ``unshare``.  The target is reached through /proc/PID/root and
its namespace PID, ``ps`` says whether its agent listens, and no socket named by its
namespace PID ever appears in the host's directory."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from scenario import SRC

pytestmark = [
    pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare is not installed"),
    pytest.mark.skipif(os.getuid() != 0, reason="making namespaces needs root here"),
    pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed"),
]

TARGET = r"""
import os, sys, time
mode = sys.argv[1]
if mode == "install":
    sys.path.insert(0, sys.argv[2])
    import reloadscope
    reloadscope.install()
print("ready", os.getpid(), flush=True)
while True:
    time.sleep(0.05)
"""

HOST_DIR = Path(f"/tmp/reloadscope-{os.getuid()}")

WRAP = {
    # a private /tmp, as systemd's PrivateTmp gives a service
    "private-tmp": ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                    'mount -t tmpfs none /tmp && exec "$@"', "sh"],
    # a PID namespace sharing the host's /tmp (its PIDs mean other processes here)
    "pid-ns": ["unshare", "--pid", "--fork", "--mount-proc"],
    # both, as a container has
    "container": ["unshare", "--pid", "--fork", "--mount-proc", "--mount", "sh", "-c",
                  'mount -t tmpfs none /tmp && exec "$@"', "sh"],
}  # fmt: skip


@pytest.fixture(scope="module")
def package() -> Iterator[str]:
    """A copy of reloadscope outside /tmp, which a private /tmp hides (a checkout may be in
    /tmp, as CI's is)."""
    d = tempfile.mkdtemp(prefix="reloadscope-ns-", dir="/var/tmp")
    shutil.copytree(Path(SRC) / "reloadscope", Path(d) / "reloadscope")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _start(kind: str, mode: str, package: str) -> tuple[subprocess.Popen, int, int]:
    """(the unshare process, the target's host PID, its PID inside its namespace)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    p = subprocess.Popen(
        [*WRAP[kind], sys.executable, "-c", TARGET, mode, package],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = p.stdout.readline().split()
    assert line[:1] == ["ready"], line
    inner = int(line[1])
    deadline = time.time() + 10
    while True:
        top = psutil.Process(p.pid)  # unshare without --fork becomes the target itself
        found = [
            c.pid
            for c in [top, *top.children(recursive=True)]
            if c.cmdline()[:2] == [sys.executable, "-c"]
        ]
        if found or time.time() > deadline:
            break
        time.sleep(0.05)
    assert found, "the target was not found under unshare"
    return p, found[0], inner


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reloadscope", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=SRC),
        timeout=90,
    )


def _host_sockets() -> set[str]:
    return set(os.listdir(HOST_DIR)) if HOST_DIR.is_dir() else set()


@pytest.mark.parametrize("mode", ["inject", "install"])
@pytest.mark.parametrize("kind", list(WRAP))
def test_a_target_in_a_namespace_is_reached(kind, mode, package):
    before = _host_sockets()
    p, pid, inner = _start(kind, mode, package)
    try:
        if kind != "private-tmp":
            assert inner != pid  # its own PID namespace
        if mode == "install":  # its own agent listens, in its own /tmp
            deadline = time.time() + 10
            while True:
                ps = json.loads(_cli("ps", "--json").stdout)
                row = [r for r in ps if r["pid"] == pid]
                if (row and row[0]["agent"]) or time.time() > deadline:
                    break
                time.sleep(0.1)
            assert row and row[0]["agent"], row
        out = _cli("report", str(pid), "--json")
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        assert doc["process"]["pid"] == inner  # the agent sees its own PID
        # No socket named by its namespace PID alone reached the host's directory (that name
        # belongs to the host's process of that PID); with a private /tmp, nothing at all.
        new = _host_sockets() - before
        if inner != pid:
            assert f"{inner}.sock" not in new, new
        if kind != "pid-ns":
            assert not {n for n in new if n.startswith(f"{inner}.")}, new
        assert p.poll() is None
    finally:
        p.kill()
        p.wait()
        for c in psutil.process_iter(["cmdline"]):
            if (c.info["cmdline"] or [])[:3] == [sys.executable, "-c", TARGET]:
                c.kill()


def test_a_pid_namespace_names_its_socket_apart(package):
    # Sharing the host's /tmp, the agent of PID 2 in a namespace must not take the name of
    # the host's process 2: its name carries its PID namespace.
    started = time.time()
    p, pid, inner = _start("pid-ns", "install", package)
    ns = os.stat(f"/proc/{pid}/ns/pid").st_ino
    expected = HOST_DIR / f"{inner}.ns{ns}.sock"
    try:
        wait = time.time() + 10
        while not expected.exists() and time.time() < wait:
            time.sleep(0.05)
        assert expected.is_socket(), sorted(_host_sockets())
        bare = HOST_DIR / f"{inner}.sock"
        assert not bare.exists() or bare.stat().st_mtime < started  # none made now
    finally:
        p.kill()
        p.wait()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # the target itself: killing unshare leaves it running
        expected.unlink(missing_ok=True)  # a killed agent cannot remove its own
