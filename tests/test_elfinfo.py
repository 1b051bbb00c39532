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
