"""Which interpreter runs a test's children for one target CPython, when they need packages.

``scenario.python_versions()`` finds every CPython 3.10+ on the machine; a bare one has only the
standard library.  The tests whose children import installed packages (the corpus, IPython,
jurigged, discord.py, ...) run them with an interpreter of that version that has the ``test``
extras: the running one for its own version, else the venv ``.ci/run`` makes for it at
``${RELOADSCOPE_VENVS:-~/.cache/reloadscope/venvs}/3.X``.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RUNNING = "{}.{}".format(*sys.version_info[:2])


def venvs_dir() -> Path:
    default = os.path.expanduser("~/.cache/reloadscope/venvs")
    return Path(os.environ.get("RELOADSCOPE_VENVS") or default)


def extras_python(version: str) -> str | None:
    """An interpreter of ``version`` that has the test extras: this one, or .ci/run's venv."""
    if version == RUNNING:
        return sys.executable
    exe = venvs_dir() / version / "bin" / "python"
    return str(exe) if os.access(exe, os.X_OK) else None


_DISTRIBUTIONS = """
import importlib.metadata, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        found[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        pass
print(json.dumps(found))
"""


@functools.cache
def distributions(python: str, names: tuple[str, ...]) -> dict[str, str]:
    """name -> installed version, for those of ``names`` that ``python`` has."""
    proc = subprocess.run(
        [python, "-I", "-c", _DISTRIBUTIONS, *names],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        raise AssertionError(f"{python} could not list its packages:\n{proc.stderr}")
    return json.loads(proc.stdout)


def _major(version: str) -> int:
    head = version.split(".")[0]
    return int(head) if head.isdigit() else 0


def python_with(version: str, *needs: str, why: str = "") -> str:
    """The interpreter of ``version`` whose packages include every one of ``needs`` (a
    distribution name, optionally ``name>=MAJOR``), or skip the test saying what is missing.
    ``why`` is added to the reason when a package is missing or too old."""
    python = extras_python(version)
    if python is None:
        pytest.skip(
            f"no CPython {version} with the test extras: {venvs_dir() / version} does not exist "
            "(.ci/run makes it: a venv with .[test])"
        )
    wanted = {}
    for need in needs:
        name, _, minimum = need.partition(">=")
        wanted[name] = int(minimum) if minimum else 0
    have = distributions(python, tuple(wanted))
    lacking = [
        f"{name} {have[name]}, not {name}>={minimum}" if name in have else f"no {name}"
        for name, minimum in wanted.items()
        if name not in have or _major(have[name]) < minimum
    ]
    if lacking:
        pytest.skip(f"CPython {version} ({python}) has {'; '.join(lacking)}{why}")
    return python
