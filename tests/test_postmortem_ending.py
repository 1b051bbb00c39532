"""A post-mortem file says how the process ended (issue 22, item 3): a real program that
records, keeps an old handler in a registry across a reload and crashes running it.  The text
report's header, the JSON (SPEC's ``exit``) and the UI (header, ``e``) say "ended by an
unhandled TypeError", and the stale handler the crash ran is marked."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scenario import SRC

CRASH = r"""
import importlib, os, sys
sys.path.insert(0, os.getcwd())
import reloadscope
reloadscope.install(listen=False, snapshot_on_exit=os.path.join(os.getcwd(), "crash.rsnap"))
with open("plug.py", "w") as fh:
    fh.write("def handle(x):\n    return x + 1\n")
import plug
HANDLERS = [plug.handle]
KEPT = plug.handle
with open("plug.py", "w") as fh:
    fh.write("def handle(x):\n    return str(x) + '!'\n")
t = os.path.getmtime("plug.py") + 5
os.utime("plug.py", (t, t))
importlib.reload(plug)
def serve():
    return HANDLERS[0](None)  # the old handler: the fix did not take effect
if sys.argv[1] == "crash":
    serve()
"""


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reloadscope", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=SRC, COLUMNS="200"),
    )


def snapshot(tmp_path: Path, how: str) -> Path:
    (tmp_path / "crash.py").write_text(CRASH)
    out = subprocess.run(
        [sys.executable, "crash.py", how],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=SRC),
    )
    assert out.returncode == (1 if how == "crash" else 0), out.stderr
    assert "post-mortem snapshot written" in out.stderr
    return tmp_path / "crash.rsnap"


@pytest.fixture
def crashed(tmp_path: Path) -> Path:
    return snapshot(tmp_path, "crash")


def test_the_text_report_says_how_it_ended_and_marks_what_the_crash_ran(crashed):
    out = cli("report", str(crashed), cwd=crashed.parent)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[2] == (
        "ended by an unhandled TypeError: unsupported operand type(s) for +: 'NoneType' and 'int'"
    )
    (handle,) = [x for x in lines if x.lstrip().startswith("function") and " handle " in x]
    assert handle.endswith("in the crash's traceback")


def test_the_json_carries_exit_and_the_mark(crashed):
    out = cli("report", str(crashed), "--json", cwd=crashed.parent)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["exit"]["exception"].startswith("TypeError: unsupported operand")
    assert any("return HANDLERS[0](None)" in line for line in doc["exit"]["traceback"])
    (plug,) = [m for m in doc["modules"] if m["name"] == "plug"]
    (handle,) = [e for e in plug["stale"] if e["kind"] == "function"]
    assert handle["in_traceback"] is True
    # The crashed frame's entry: object.__sizeof__ read a pointer as a frame's item count on
    # 3.11+ and reported petabytes.
    assert all(0 < e["size"] < 10_000 for e in plug["stale"]), plug["stale"]
    assert sorted(p["text"] for p in handle["paths"])[:2] == [
        "__main__.HANDLERS[0]",
        "__main__.KEPT",
    ]


def test_a_normal_end_is_said_too(tmp_path):
    path = snapshot(tmp_path, "normal")
    out = cli("report", str(path), cwd=tmp_path)
    assert out.stdout.splitlines()[2] == "ended normally"
    assert "in the crash's traceback" not in out.stdout


def test_the_ui_shows_the_ending_in_its_header_and_the_traceback_on_e(crashed):
    from reloadscope.ui.app import ReloadScopeApp, TextScreen
    from reloadscope.ui.source import FileSource

    async def go() -> None:
        app = ReloadScopeApp(FileSource(str(crashed)))
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(100):
                if app.report is not None:
                    break
                await pilot.pause(0.05)
            assert "ended by an unhandled TypeError" in app.sub_title
            marked = [
                str(app.query_one("#stale").get_row_at(i)[1])
                for i in range(app.query_one("#stale").row_count)
            ]
            assert "! handle" in marked, marked
            await pilot.press("e")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, TextScreen)
            assert "return HANDLERS[0](None)" in screen.text
            assert "stale objects the crash ran or held: handle" in screen.text

    asyncio.run(go())
