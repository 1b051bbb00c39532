"""The UI at 80x24 first: what the footer offers, where every other key is (the help and the
command palette), which keys a snapshot or an ended process turns off, and what quitting an
injected agent says first."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from reloadscope.model import Report
from reloadscope.snapshot import load, write
from reloadscope.ui import picker
from reloadscope.ui.app import HELP, KEYS, QuitScreen, ReloadScopeApp, TextScreen
from reloadscope.ui.source import FileSource, LiveSource, ProcessSource
from scenario import SRC
from test_screenshots import screenshots

FIXTURE = Path(__file__).parent / "fixtures" / "snapshot-v1.rsnap"


def _screen_text(app: ReloadScopeApp) -> str:
    """The screen's text, each cell in its column (scripts/screenshots.py reads it so)."""
    return screenshots.svg_text(app.export_screenshot())


async def _loaded(app: ReloadScopeApp, pilot) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()  # the widths are fitted after the first layout


def _footer(app: ReloadScopeApp) -> str:
    return _screen_text(app).splitlines()[-1]


def _offered(app: ReloadScopeApp) -> list[str]:
    """The footer's entries that apply now, as the footer words them ("? help")."""
    names = {"question_mark": "?", "slash": "/"}
    return [
        f"{names.get(b.key, b.key)} {b.description}"
        for b in ReloadScopeApp.BINDINGS
        if b.show and app.check_action(b.action, ()) is not False
    ]


def _palette(app: ReloadScopeApp) -> list[str]:
    return [c.title for c in app.get_system_commands(app.screen)]


def _post_mortem(tmp_path: Path) -> Path:
    doc = load(FIXTURE).to_json()
    doc["exit"] = {"exception": "TypeError: boom", "traceback": ["  File 'x.py', line 1"]}
    return write(Report.from_json(doc, load(FIXTURE).sources), tmp_path / "crash.rsnap")


def _whole_footer(app: ReloadScopeApp) -> str:
    footer = _footer(app)
    for entry in _offered(app):
        assert entry in footer, (entry, footer)  # whole, not cut at the edge
    assert footer.startswith("? help") and "^p palette" in footer, footer
    return footer


def test_a_snapshot_at_80x24_offers_help_first_and_no_live_only_keys(tmp_path):
    async def go():
        notes: list[str] = []
        app = ReloadScopeApp(FileSource(FIXTURE))
        app.notify = lambda message, **kw: notes.append(str(message))  # type: ignore[method-assign]
        async with app.run_test(size=(80, 24)) as pilot:
            await _loaded(app, pilot)
            footer = _whole_footer(app)
            for action in ("rescan", "collect", "pause_follow", "resume_follow", "toggle_follow"):
                assert app.check_action(action, ()) is False, action
            assert "rescan" not in footer and "gc" not in footer and "follow" not in footer
            palette = _palette(app)
            assert "Rescan (r)" not in palette and "Pause or resume following (f)" not in palette
            await pilot.press("r")  # says why, changes nothing
            await pilot.pause()
            assert notes == ["a snapshot file cannot be rescanned"]
            return footer

    footer = asyncio.run(go())
    entries = ["? help", "/ filter", "h holders", "b fix", "t timeline", "q quit"]
    at = [footer.index(e) for e in entries]
    assert at == sorted(at) and at[0] == 0, footer


def test_every_key_is_reachable_at_80x24(tmp_path, monkeypatch):
    """In the footer, the help or the palette: every binding, for each kind of source."""

    async def check(app: ReloadScopeApp) -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await _loaded(app, pilot)
            footer = _whole_footer(app)
            palette = " ".join(_palette(app))
            for b in ReloadScopeApp.BINDINGS:
                if b.action in ("cannot_rescan", "clear_filter"):
                    continue  # what r and g say in a snapshot; escape in the filter
                for key in b.key.split(","):
                    name = {"question_mark": "?", "slash": "/"}.get(key, key)
                    in_help = f"\n  {name} " in HELP
                    in_palette = f"({name})" in palette
                    assert in_help, f"{name} is not in the help"
                    if app.check_action(b.action, ()) and not b.show:
                        assert in_palette, f"{name} ({b.action}) is not in the palette"
            # Every key of the help with a command is in the palette when it can run now.
            for key, action, title, _ in KEYS:
                if action is not None and app.check_action(action, ()):
                    assert f"{title} ({key})" in palette
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, TextScreen)
            shown = _screen_text(app)
            assert ("ctrl+p" in shown and "this help" in shown) or "ctrl+p" in HELP
            assert footer

    asyncio.run(check(ReloadScopeApp(FileSource(FIXTURE))))
    asyncio.run(check(ReloadScopeApp(FileSource(_post_mortem(tmp_path)))))
    # This process, recording: f is offered; and as the root of a process tree, p too.
    import reloadscope

    reloadscope.install(listen=False)
    try:
        asyncio.run(check(ReloadScopeApp(ProcessSource())))
        monkeypatch.setattr(picker, "can_pick", lambda source: True)
        app = ReloadScopeApp(ProcessSource())

        async def tree() -> str:
            async with app.run_test(size=(80, 24)) as pilot:
                await _loaded(app, pilot)
                return _whole_footer(app)

        footer = asyncio.run(tree())
        assert "f pause" in footer and "p tree" in footer and "q quit" in footer, footer
    finally:
        reloadscope.uninstall()


def test_the_help_reflows_to_the_width():
    async def go(size: tuple[int, int]) -> list[str]:
        app = ReloadScopeApp(FileSource(FIXTURE))
        async with app.run_test(size=size) as pilot:
            await _loaded(app, pilot)
            await pilot.press("question_mark")
            await pilot.pause()
            return _screen_text(app).splitlines()

    small = asyncio.run(go((80, 24)))
    assert all(len(line) <= 80 for line in small) and "this help" not in "".join(small[:5])
    narrow, wide = asyncio.run(go((80, 45))), asyncio.run(go((160, 45)))

    # The help's text has no line breaks of its own inside a key's description: at 160
    # columns b's whole description takes fewer lines than at 80.
    def lines_of(screen: list[str], start: str, until: str) -> int:
        i = next(i for i, line in enumerate(screen) if f"│ {start} " in line)
        j = next(j for j, line in enumerate(screen) if f"│ {until} " in line)
        return j - i

    assert lines_of(wide, "b", "B") < lines_of(narrow, "b", "B")
    assert "\n  b              fix the selected stale object: a dialog" in HELP
    assert not any(line.startswith(" " * 17) for line in HELP.splitlines())  # no hanging lines


def test_held_by_gets_the_width_before_size_and_count():
    async def go(size: tuple[int, int]) -> tuple[list[str], list[str]]:
        app = ReloadScopeApp(FileSource(FIXTURE))
        async with app.run_test(size=size) as pilot:
            await _loaded(app, pilot)
            table = app.query_one("#stale", DataTable)
            labels = [str(c.label) for c in table.columns.values()]
            held = labels.index("held by")
            cells = [str(table.get_row_at(r)[held]) for r in range(table.row_count)]
            modules = app.query_one("#modules", DataTable)
            stale_count = str(modules.get_row_at(0)[2])
            lines = _screen_text(app).splitlines()
            assert stale_count == "5" and any("gens  stale" in line for line in lines)
            return labels, cells

    labels, cells = asyncio.run(go((80, 24)))
    assert labels == ["kind", "qualname", "gen", "held by"]
    assert "demo_app.greet" in cells and "demo_app.visitor" in cells  # whole where they fit
    labels, cells = asyncio.run(go((160, 45)))
    assert labels == ["kind", "qualname", "gen", "count", "size", "held by"]
    assert "demo_app.visitor.__class__" in cells


# -- a live process ----------------------------------------------------------------------------

TARGET = r"""
import importlib, os, signal, sys, time
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
path = os.path.join(here, "endplug.py")
def write(n):
    open(path, "w").write(f"def handler():\n    return {n}\n")
    os.utime(path, (time.time() + 10 * n, time.time() + 10 * n))
    importlib.invalidate_caches()
write(0)
import endplug
keep = [endplug.handler]
def bump(signum, frame):
    keep.append(endplug.handler)
    write(len(keep))
    importlib.reload(endplug)
    print("reloaded", flush=True)
signal.signal(signal.SIGUSR1, bump)
print("ready", flush=True)
while True:
    time.sleep(0.02)
"""


def _start(tmp_path: Path, *, own_agent: bool) -> subprocess.Popen:
    from reloadscope.agent.server import socket_path

    (tmp_path / "t.py").write_text(TARGET)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    argv = [sys.executable, str(tmp_path / "t.py")]
    if own_agent:
        env["PYTHONPATH"] = SRC
        argv[1:1] = ["-m", "reloadscope", "run"]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    if own_agent:
        deadline = time.monotonic() + 30
        while not os.path.exists(socket_path(p.pid)):
            assert time.monotonic() < deadline, "the target's agent never listened"
            time.sleep(0.05)
    return p


async def _until(pilot, what, why: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, why
        await pilot.pause(0.1)


def test_a_target_that_exits_is_shown_as_ended_and_r_says_so(tmp_path):
    import signal

    p = _start(tmp_path, own_agent=True)
    os.kill(p.pid, signal.SIGUSR1)  # a stale handler to show
    assert p.stdout is not None and p.stdout.readline().strip() == "reloaded"
    notes: list[str] = []
    try:

        async def go():
            app = ReloadScopeApp(LiveSource(p.pid))
            app.notify = lambda message, **kw: notes.append(str(message))  # type: ignore[method-assign]
            async with app.run_test(size=(80, 24)) as pilot:
                await _loaded(app, pilot)
                assert app.sub_title.startswith("live process")
                assert "f pause" in _footer(app)
                p.kill()  # no key press from here until it shows
                await _until(pilot, lambda: app.ended, "the UI never saw the process end")
                await pilot.pause()
                header = _screen_text(app).splitlines()[0]
                assert "process ended" in header, header  # in 80 columns, not cut off
                assert app.check_action("rescan", ()) is False
                assert "f pause" not in _footer(app)
                await pilot.press("r")
                await pilot.pause()
                summary = str(app.query_one("#summary", Static).render())
                follow = str(app.query_one("#follow", Static).render())
                assert "has ended" in summary and "Errno" not in summary, summary
                assert "not following: the process has ended" in follow, follow
                assert app.query_one("#stale", DataTable).row_count  # its last scan stays
                await pilot.press("q")  # nothing to lose: quits at once

        asyncio.run(go())
    finally:
        p.kill()
        p.wait()
    assert any("has ended: nothing to rescan" in n for n in notes), notes


needs_gdb = pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed")


@needs_gdb
def test_quitting_an_injected_agent_after_a_reload_says_what_is_lost(tmp_path):
    import signal

    p = _start(tmp_path, own_agent=False)
    try:

        async def go():
            app = ReloadScopeApp(LiveSource(p.pid))  # injects the agent: a late attach
            async with app.run_test(size=(80, 24)) as pilot:
                await _loaded(app, pilot)
                assert app.lost_on_quit() is None  # nothing recorded yet: q would just quit
                os.kill(p.pid, signal.SIGUSR1)
                assert p.stdout is not None and p.stdout.readline().strip() == "reloaded"

                def reloaded() -> bool:
                    m = app.report.module("endplug") if app.report else None
                    return m is not None and len(m.generations) == 2

                await _until(pilot, reloaded, "the UI never followed the reload")
                await pilot.press("q")
                await pilot.pause()
                assert isinstance(app.screen, QuitScreen)
                said = _screen_text(app)
                assert "was injected by this attach" in said and "1 reload of endplug" in said
                assert "gen ?" in said
                await pilot.press("escape")  # stays
                await pilot.pause()
                assert not isinstance(app.screen, QuitScreen) and app.is_running
                await pilot.press("q")
                await pilot.pause()
                assert isinstance(app.screen, QuitScreen)
                await pilot.press("q")  # quits
                await pilot.pause()
                return app.is_running

        assert asyncio.run(go()) is False
        assert p.poll() is None  # detached; the target runs on
    finally:
        p.kill()
        p.wait()


def test_quitting_without_an_injected_agent_asks_nothing(tmp_path):
    async def go():
        app = ReloadScopeApp(FileSource(FIXTURE))
        async with app.run_test(size=(80, 24)) as pilot:
            await _loaded(app, pilot)
            assert app.lost_on_quit() is None
            await pilot.press("q")
            await pilot.pause()
            return app.is_running

    assert asyncio.run(go()) is False
