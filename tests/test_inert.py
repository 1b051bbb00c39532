"""Inert output: names, keys, paths and argv that come from a target reach a terminal only as
escaped text (never ESC sequences, never markup), in the text report and in the UI."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys

from textual.widgets import DataTable, Static

from reloadscope.inert import inert
from reloadscope.ui.app import ReloadScopeApp
from reloadscope.ui.source import FileSource
from scenario import SRC

EVIL = "\x1b]52;c;cHduZWQ=\x07\x1b[2J"  # OSC 52 writes the clipboard; CSI 2J clears the screen

PLUG = """
def f():
    return 1
f.__qualname__ = {qualname!r}
"""

APP = """
import plug
MARKUP = {{"/a[/]b": plug.f}}
ESCAPES = {{{evil!r}: plug.f}}
SURROGATE = {{"\\ud800": plug.f}}
"""

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _snapshot(scenario, tmp_path):
    scenario.write("plug.py", PLUG.format(qualname="f" + EVIL))
    scenario.write("app.py", APP.format(evil=EVIL))
    path = tmp_path / "evil.rsnap"
    scenario.run(
        f"""
        import sys, rs, reloadscope, plug, app
        sys.argv[1:] = [{EVIL!r}]
        rs.edit(plug, {PLUG.format(qualname="f" + EVIL).replace("1", "2")!r})
        reloadscope.snapshot({str(path)!r})
        rs.report({{"modules": []}})
        """
    )
    return path


def test_inert_escapes_controls_and_lone_surrogates():
    assert inert("a\x1b[2Jb\x07\x9b\ud800") == "a\\x1b[2Jb\\x07\\x9b\\ud800"
    assert inert("plain [markup] stays") == "plain [markup] stays"
    assert inert("evil\u202egnp.exe") == "evil\\u202egnp.exe"  # right-to-left override
    assert inert(None) == "?"


def test_text_report_prints_target_strings_inert(scenario, tmp_path):
    path = _snapshot(scenario, tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "reloadscope", "report", str(path)],
        capture_output=True,
        text=True,
        errors="surrogateescape",
        env=dict(os.environ, PYTHONPATH=SRC),
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert not CONTROL.search(out.stdout), repr(out.stdout)
    assert "\\x1b]52;c;" in out.stdout  # shown, escaped: in the qualname, the keys, argv
    assert "/a[/]b" in out.stdout and "\\ud800" in out.stdout


def test_ui_shows_target_strings_as_text(scenario, tmp_path):
    # A key like '/a[/]b' used to crash the UI as Rich markup; ESC must not reach the screen.
    path = _snapshot(scenario, tmp_path)

    async def go():
        app = ReloadScopeApp(FileSource(path))
        async with app.run_test(size=(140, 40)) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            table = app.query_one("#stale", DataTable)
            cells = [str(c) for r in range(table.row_count) for c in table.get_row_at(r)]
            assert any("\\x1b]52" in c for c in cells), cells
            assert not any("\x1b" in c for c in cells)
            panel = str(app.query_one("#paths", Static).render())
            assert "\x1b" not in panel and "\\x1b" in panel
            keys = " ".join(cells) + panel
            assert "/a[/]b" in keys or "\\ud800" in keys, keys

    asyncio.run(go())
