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


@pytest.mark.parametrize("name", ["uwsgi", "python3.9"])
def test_a_renamed_interpreter_is_told_by_its_files(tmp_path: Path, name):
    # An embedding host's name says nothing, and a name that claims another version lies.
    exe = tmp_path / name
    shutil.copy2(sys.executable, exe)
    p = _running([str(exe), *SLEEP])
    try:
        found = interpreter(p.pid)
        assert found is not None
        assert found.version == "{}.{}".format(*sys.version_info[:2])
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

    exe = tmp_path / "uwsgi"
    shutil.copy2(sys.executable, exe)
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
        assert row and row[0]["python"] == "{}.{}".format(*sys.version_info[:2]), ps.stdout
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
