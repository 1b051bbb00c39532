"""The examples the docs use, run for real, and what reloadscope says about each.

- ``examples/notebook.ipynb`` (docs/howto/notebook.md): its code cells, in order, in a real
  IPython kernel (``kernel_driver.Kernel``): the cell after the edit names the stale objects,
  ``%reloadscope`` shows what holds them, ``%reloadscope --fix --apply`` repairs them, and the
  last report has nothing stale.  The notebook is committed without outputs.
- ``examples/pytest_suite/`` (docs/howto/pytest.md): ``pytest --reloadscope`` and
  ``pytest --reloadscope-fail-on-stale`` on a copy of it, in a subprocess: the summary names
  exactly the test that leaks, and the exit status is 0, then 1.

(``examples/threaded_server.py`` is driven by tests/test_fix_server.py and
``examples/plugin_host.py`` by tests/test_fix.py and the docs' sessions.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kernel_driver import Cell
from scenario import SRC
from targets import RUNNING, python_with

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOK = EXAMPLES / "notebook.ipynb"


def _code_cells() -> list[str]:
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4, nb["nbformat"]
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for c in code:  # committed clean: what it prints is made here, by a real kernel
        assert c["outputs"] == [] and c["execution_count"] is None, c["source"]
    return ["".join(c["source"]) for c in code]


def test_the_notebook_is_clean_and_does_what_the_guide_says():
    cells = _code_cells()
    for wanted in ("%load_ext reloadscope", "%autoreload 2", "%reloadscope --fix --apply"):
        assert any(wanted in c for c in cells), wanted
    assert sum(c.startswith("%%writefile greeter.py") for c in cells) == 2  # written, edited
    assert "examples/notebook.ipynb" in (
        EXAMPLES.parent / "docs" / "howto" / "notebook.md"
    ).read_text(encoding="utf-8")


def test_the_notebook_in_a_real_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("jupyter_client")
    python = python_with(RUNNING, "ipython", "ipykernel")
    from kernel_driver import Kernel

    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's scratch directory
    monkeypatch.delenv("GREETING", raising=False)
    ran = []
    with Kernel(tmp_path, python) as k:
        for source in _code_cells():
            ran.append((source, k.run(source, timeout=120)))

    def cell(source: str) -> Cell:
        """What the code cell whose source is (or, for a magic, starts with) ``source`` gave."""
        (got,) = [c for s, c in ran if s.strip() == source or s.startswith(source + "\n")]
        return got

    assert cell("import greeter").result == "'HELLO, ADA'"
    writes = [c.stdout.strip() for s, c in ran if s.startswith("%%writefile greeter.py")]
    assert writes == ["Writing greeter.py", "Overwriting greeter.py"], writes

    # After the edit: autoreload reloaded greeter and failed to update its old classes; the
    # objects made before run the old code, and reloadscope's warning names them.
    edited = cell('ada.hello(), say(), greeter.LoudGreeter("Cy").hello()')
    assert edited.result == "('HELLO, ADA', 'HELLO, ADA', 'GOOD DAY, CY!')", edited.stderr
    assert "[autoreload of greeter failed" in edited.stderr, edited.stderr
    warning = edited.stderr[edited.stderr.index("reloadscope: ") :]
    assert re.match(r"reloadscope: \d+ stale objects after this cell's reload:", warning), warning
    for line in (
        "class LoudGreeter (greeter), held by __main__.ada.__class__",
        "function LoudGreeter.hello (greeter), held by __main__.say.__func__",
    ):
        assert line in warning, warning

    reports = [c.stdout for s, c in ran if s.strip() == "%reloadscope"]
    assert len(reports) == 2, reports  # after the edit, and after the fix
    report, last = reports
    assert re.search(r"^[1-9]\d* stale objects in 1 module$", report, re.M), report
    for line in (
        "class      LoudGreeter  (gen 0,",
        "held by __main__.ada.__class__",
        "function   LoudGreeter.hello  (gen 0,",
        "held by __main__.say.__func__",
        "instance   LoudGreeter  (gen 0,",
        "held by __main__.ada",
    ):
        assert line in report, report

    plan = cell("%reloadscope --fix").stdout
    for line in (
        "__main__.ada.__class__ = greeter.LoudGreeter",
        "__main__.say = MethodType(greeter.LoudGreeter.hello, __main__.say.__self__)",
        "Nothing has been changed.",
    ):
        assert line in plan, plan

    applied = cell("%reloadscope --fix --apply")
    assert applied.stderr == "", applied.stderr
    assert applied.stdout.startswith("Applied 2 changes"), applied.stdout
    assert "Nothing stale remains." in applied.stdout, applied.stdout

    assert cell("ada.hello(), say()").result == "('GOOD DAY, ADA!', 'GOOD DAY, ADA!')"
    assert "0 stale objects" in last and "held by" not in last, last


def _pytest(suite: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "RELOADSCOPE_"))}
    env.update(PYTHONPATH=SRC, PYTHONDONTWRITEBYTECODE="1", NO_COLOR="1", COLUMNS="80")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args, str(suite)],
        cwd=suite.parent,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        stdin=subprocess.DEVNULL,
    )


LEAK = "test_greeter.py::test_reload_keeps_working: 1 stale object"


@pytest.mark.parametrize(
    ("option", "status"), [("--reloadscope", 0), ("--reloadscope-fail-on-stale", 1)]
)
def test_the_pytest_suite(tmp_path: Path, option: str, status: int) -> None:
    suite = tmp_path / "pytest_suite"
    shutil.copytree(EXAMPLES / "pytest_suite", suite, ignore=shutil.ignore_patterns("__pycache__"))
    done = _pytest(suite, option)
    out = done.stdout
    assert done.returncode == status, out + done.stderr
    assert "3 passed" in out, out
    summary = out[out.index("reloadscope: stale objects left by tests") :]
    # Exactly one test named, the one that leaks, with the holder and the fix.
    named = re.findall(r"^(test_\S+::\S+): ", summary, re.M)
    assert named == ["test_greeter.py::test_reload_keeps_working"], summary
    for line in (
        LEAK,
        "  function   greetings.greeter.greet  (gen 0, ",  # then its size
        "      held by greetings.registry.HANDLERS[0]",
        "      fix: registered in a container that outlives the reload: register again after "
        "reloading, and make registration idempotent (key it by name)",
    ):
        assert any(ln.startswith(line) for ln in summary.splitlines()), (line, summary)
    verdict = "1 test left stale objects" + (
        "; the session fails (--reloadscope-fail-on-stale)" if status else " ("
    )
    assert verdict in summary, summary
