"""No false positive in a real process: an application that imports and uses a broad corpus of
popular packages (tests/corpus_app.py) and reloads nothing must scan clean, on every CPython
found here, with and without ``reloadscope.install()`` as its very first line.

Each version needs an interpreter that has the ``corpus`` extra: the running one for its own
version, else the venv ``.ci/run`` makes for it at ``${RELOADSCOPE_VENVS:-~/.cache/reloadscope/
venvs}/3.X``.  The children of the selected tests run side by side (one per core), started
when the first of them is needed.
"""

from __future__ import annotations

import concurrent.futures
import os
import shlex
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from scenario import Result, Scenario, python_versions
from targets import extras_python as corpus_python
from targets import venvs_dir

HERE = Path(__file__).resolve().parent
VERSIONS = list(python_versions())
MODES = ["plain", "install"]
MIN_USED = 25
TIMEOUT = 120
# A child needs about 1.2 GB of address space; a runaway scan (23 GB was seen) gets a MemoryError
# instead of the machine's OOM killer.
MEMORY_CAP_KB = 4 * 1024 * 1024

CHILD = """
{install}
import os, sys, traceback
import rs
import corpus_app
import reloadscope
try:
    rep = reloadscope.scan()
except BaseException:
    # Out at once: the corpus's exit handlers can take minutes beside a failed scan's garbage.
    traceback.print_exc()
    sys.stderr.flush()
    os._exit(1)
rs.report(
    rep.to_json(),
    stale_count=rep.stale_count,
    used=corpus_app.USED,
    missing=corpus_app.MISSING,
    broken=corpus_app.BROKEN,
    python=sys.version.split()[0],
)
"""
INSTALL = "import reloadscope; reloadscope.install()"


def text(s: str | bytes | None) -> str:
    return s.decode(errors="replace") if isinstance(s, bytes) else s or ""


def run_child(root: Path, python: str, mode: str) -> tuple[Result, float]:
    capped = root / "python"
    capped.write_text(f'#!/bin/sh\nulimit -v {MEMORY_CAP_KB}\nexec {shlex.quote(python)} "$@"\n')
    capped.chmod(0o755)
    scenario = Scenario(root, str(capped))
    shutil.copy(HERE / "corpus_app.py", root / "corpus_app.py")
    scratch = root / "scratch"
    scratch.mkdir()
    env = {
        "CORPUS_SCRATCH": str(scratch),
        "IPYTHONDIR": str(scratch / "ipython"),
        "JUPYTER_CONFIG_DIR": str(scratch / "jupyter-config"),
        "JUPYTER_DATA_DIR": str(scratch / "jupyter-data"),
        "JUPYTER_RUNTIME_DIR": str(scratch / "jupyter-runtime"),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    start = time.perf_counter()
    try:
        result = scenario.run(
            CHILD.format(install=INSTALL if mode == "install" else ""), timeout=TIMEOUT, env=env
        )
    except subprocess.TimeoutExpired as e:
        out = "\n".join(text(s) for s in (e.output, e.stderr))
        raise AssertionError(f"child still running after {TIMEOUT} s:\n{out[-8000:]}") from None
    return result, time.perf_counter() - start


@pytest.fixture(scope="module")
def children(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """(version, mode) -> a future of (Result, seconds), for every selected test of this file."""
    wanted = []
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if item.module is sys.modules[__name__] and "version" in params and "mode" in params:
            python = corpus_python(params["version"])
            if python is not None:
                wanted.append((params["version"], params["mode"], python))
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1)
    futures = {
        (version, mode): pool.submit(
            run_child, tmp_path_factory.mktemp(f"corpus-{version}-{mode}"), python, mode
        )
        for version, mode, python in wanted
    }
    yield futures
    for future in futures.values():
        future.cancel()
    pool.shutdown(wait=True)


def describe(entry: dict[str, Any], module: str) -> str:
    paths = entry.get("paths") or []
    path = paths[0]["text"] if paths else "(no path)"
    evidence = entry.get("evidence") or {}
    why = f" [{evidence.get('kind')}: {evidence.get('text')}]" if evidence else ""
    return f"{module}  {entry['kind']}  {entry['qualname']}  count={entry['count']}  {path}{why}"


@pytest.mark.versions
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("version", VERSIONS)
def test_corpus_scans_clean(version: str, mode: str, children: Any) -> None:
    python = corpus_python(version)
    if python is None:
        pytest.skip(
            f"no CPython {version} with the corpus: {venvs_dir() / version} does not exist "
            "(.ci/run makes it: a venv with .[test])"
        )
    result, seconds = children[(version, mode)].result()
    extra = result.extra
    used, missing, broken = extra["used"], extra["missing"], extra["broken"]
    summary = (
        f"CPython {extra['python']} ({python}), {mode}: child {seconds:.1f} s, scan "
        f"{result.doc['scan']['duration_s']:.1f} s of {result.doc['scan']['objects']} objects; "
        f"{len(used)} packages used: {', '.join(used)}"
        + (f"; missing: {missing}" if missing else "")
        + (f"; broken: {', '.join(broken)}" if broken else "")
        + "".join(f"\nblind spot: {b}" for b in result.doc["scan"].get("blind_spots", []))
    )
    if broken:
        warnings.warn(
            f"CPython {version}: using these failed: "
            + "\n".join(f"{name}: {tb}" for name, tb in broken.items()),
            stacklevel=1,
        )
    assert len(used) >= MIN_USED, f"only {len(used)} of the corpus could be used\n{summary}\n" + (
        "\n".join(f"{name}: {tb}" for name, tb in broken.items())
    )
    offending = [describe(s, m["name"]) for m in result.doc["modules"] for s in m["stale"]]
    assert extra["stale_count"] == 0 and not offending, (
        f"{extra['stale_count']} stale objects in a process that reloaded nothing "
        f"({len(offending)} entries):\n  " + "\n  ".join(offending) + f"\n{summary}"
    )
