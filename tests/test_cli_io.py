"""Scriptable input and output: ``snapshot PID -o -`` to a pipe, ``report -`` from one."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

from scenario import RELOADED_PLUG, SRC

TARGET = (
    RELOADED_PLUG
    + """
print(os.getpid(), flush=True)
sys.stdin.read()
"""
)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "LC_"))}
    return dict(env, PYTHONPATH=SRC)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "reloadscope", *args]


def test_snapshot_to_stdout_pipes_into_report_from_stdin(tmp_path: Path):
    (tmp_path / "app.py").write_text(TARGET)
    target = subprocess.Popen(
        [*_cli("run"), "app.py"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=_env(),
    )
    try:
        assert target.stdout is not None
        pid = target.stdout.readline().strip()
        snap = subprocess.run(
            _cli("snapshot", pid, "-o", "-"), capture_output=True, env=_env(), timeout=60
        )
        assert snap.returncode == 0, snap.stderr
        assert snap.stderr.decode().strip() == f"1 stale object in process {pid}"
        doc = json.loads(gzip.decompress(snap.stdout))  # the bytes of a .rsnap file
        assert doc["format"] == "reloadscope-snapshot"
        assert not list(tmp_path.glob("*.rsnap")) and not list(Path.cwd().glob("reloadscope-*"))
        rep = subprocess.run(
            _cli("report", "-", "--json"),
            input=snap.stdout,
            capture_output=True,
            env=_env(),
            timeout=60,
        )
        assert rep.returncode == 0, rep.stderr
        report = json.loads(rep.stdout)
        assert report["process"]["pid"] == int(pid)
        (mod,) = report["modules"]
        assert mod["name"] == "plug" and mod["stale"][0]["qualname"] == "f"
        assert "__main__.keep" in [p["text"] for p in mod["stale"][0]["paths"]]
    finally:
        target.kill()
        target.communicate()


def test_snapshot_to_a_terminal_is_refused_before_attaching():
    leader, follower = os.openpty()
    try:
        p = subprocess.run(
            _cli("snapshot", str(os.getpid()), "-o", "-"),
            stdout=follower,
            stderr=subprocess.PIPE,
            env=_env(),
            timeout=60,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert p.returncode == 2
    err = p.stderr.decode()
    assert err.startswith("reloadscope: error: ") and len(err.splitlines()) == 1
    assert "terminal" in err
