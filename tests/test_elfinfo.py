"""The CPython of a process is read from the files it maps, never from its name."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reloadscope.attach.elfinfo import interpreter
from scenario import python_versions

VERSIONS = python_versions()


def _running(cmd: list[str]) -> subprocess.Popen:
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    if "-c" in cmd:
        assert p.stdout.readline().strip() == "ready"
    else:
        time.sleep(0.2)
    return p


SLEEP = ["-c", "import time; print('ready', flush=True); time.sleep(60)"]


@pytest.mark.parametrize("version", list(VERSIONS))
def test_every_cpython_is_recognised_with_its_version(version):
    p = _running([VERSIONS[version], *SLEEP])
    try:
        found = interpreter(p.pid)
        assert found is not None and found.version == version, found
    finally:
        p.kill()
        p.wait()


def _renamed(tmp_path: Path, name: str) -> tuple[Path, str]:
    """A copy of some CPython under another name, and its version.  (An interpreter that
    finds its libraries relative to itself, as the provided 3.14/3.15 do, cannot run from a
    copy: take one that can.)"""
    for version, python in reversed(list(VERSIONS.items())):
        exe = tmp_path / name
        shutil.copy2(Path(python).resolve(), exe)
        ok = subprocess.run([str(exe), "-c", "pass"], capture_output=True, timeout=30)
        if ok.returncode == 0:
            return exe, version
        exe.unlink()
    pytest.skip("no CPython here runs from a copy")


@pytest.mark.parametrize("name", ["uwsgi", "python3.9"])
def test_a_renamed_interpreter_is_told_by_its_files(tmp_path: Path, name):
    # An embedding host's name says nothing, and a name that claims another version lies.
    exe, version = _renamed(tmp_path, name)
    p = _running([str(exe), *SLEEP])
    try:
        found = interpreter(p.pid)
        assert found is not None
        assert found.version == version
    finally:
        p.kill()
        p.wait()


def test_a_program_that_is_not_python_is_none():
    p = _running(["sleep", "30"])
    try:
        assert interpreter(p.pid) is None
    finally:
        p.kill()
        p.wait()


def test_a_file_named_like_python_that_is_not_python_is_none(tmp_path: Path):
    fake = tmp_path / "python3.14"
    shutil.copy2(shutil.which("sleep"), fake)
    p = _running([str(fake), "30"])
    try:
        assert interpreter(p.pid) is None
    finally:
        p.kill()
        p.wait()


@pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed")
def test_a_renamed_interpreter_is_listed_and_attached(tmp_path: Path):
    import json
    import os

    from scenario import SRC

    exe, version = _renamed(tmp_path, "uwsgi")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    p = subprocess.Popen([str(exe), *SLEEP], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert p.stdout.readline().strip() == "ready"
        cli = [sys.executable, "-m", "reloadscope"]
        cli_env = dict(os.environ, PYTHONPATH=SRC)
        ps = subprocess.run(
            [*cli, "ps", "--json"], capture_output=True, text=True, env=cli_env, timeout=60
        )
        assert ps.returncode == 0, ps.stderr
        row = [r for r in json.loads(ps.stdout) if r["pid"] == p.pid]
        assert row and row[0]["python"] == version, ps.stdout
        out = subprocess.run(
            [*cli, "report", str(p.pid), "--json"],
            capture_output=True,
            text=True,
            env=cli_env,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["process"]["pid"] == p.pid
    finally:
        p.kill()
        p.wait()
