"""The fix dialog (``b``: the selected stale object, ``B``: all), driven for real (Textual's
pilot): in this process, in a live child process attached over its agent, and on a snapshot
file.  The dialog lists every change before anything is written (the holders still hold the
old objects, and a second scan still finds them); confirming carries out exactly the listed
changes, after which the callbacks return the new code's results."""

from __future__ import annotations

import asyncio
import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

from textual.widgets import Button, DataTable, Static

import reloadscope
from realprocs import env, read_json, report, stale, wait_for
from reloadscope.agent.server import socket_path
from reloadscope.ui.app import ReloadScopeApp
from reloadscope.ui.fix import FixScreen
from reloadscope.ui.source import FileSource, LiveSource, ProcessSource

FIXTURE = Path(__file__).parent / "fixtures" / "snapshot-v1.rsnap"

PLUG = """\
def handler():
    return "handler v{v}"

class Widget:
    def show(self):
        return "show v{v}"
"""

# Holds generation 1's objects the ways a program does: a from-import copy, a registry list,
# and an instance made before the reload.
HOST = """\
import {plug}
from {plug} import handler

HANDLERS = [handler]
obj = {plug}.Widget()

def results():
    return {{"copy": handler(), "registry": HANDLERS[0](), "method": obj.show()}}
"""


def write_plug(path: Path, v: int) -> None:
    path.write_text(PLUG.format(v=v))
    t = time.time() + 10 * v
    os.utime(path, (t, t))  # a newer mtime: the reload never reads a stale .pyc
    importlib.invalidate_caches()


async def _settled(app: ReloadScopeApp, pilot) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()


def _dialog(app: ReloadScopeApp) -> FixScreen:
    assert isinstance(app.screen, FixScreen), app.screen
    return app.screen


def _dialog_text(app: ReloadScopeApp) -> str:
    return str(_dialog(app).query_one("#fix-text", Static).render())


def _stale_names(app: ReloadScopeApp, module: str) -> list[tuple[str, str, int | None]]:
    assert app.report is not None
    return [
        (s.kind, s.qualname, s.generation)
        for m in app.report.modules
        if m.name == module
        for s in m.stale
    ]


def _select(app: ReloadScopeApp, module: str, qualname: str, kind: str) -> None:
    names = [m.name for m in app.modules]
    app.query_one("#modules", DataTable).move_cursor(row=names.index(module))
    app._fill_stale()
    row = next(i for i, s in enumerate(app.rows) if (s.qualname, s.kind) == (qualname, kind))
    app.query_one("#stale", DataTable).move_cursor(row=row)


def test_fix_in_this_process_lists_first_then_applies_only_what_was_listed(tmp_path):
    plug = tmp_path / "uifixplug.py"
    (tmp_path / "uifixhost.py").write_text(HOST.format(plug="uifixplug"))
    write_plug(plug, 1)
    sys.path.insert(0, str(tmp_path))
    reloadscope.install(listen=False)
    try:
        import uifixhost
        import uifixplug

        write_plug(plug, 2)
        importlib.reload(uifixplug)
        old = {"copy": "handler v1", "registry": "handler v1", "method": "show v1"}
        assert uifixhost.results() == old

        async def go():
            app = ReloadScopeApp(ProcessSource())
            async with app.run_test(size=(120, 40)) as pilot:
                await _settled(app, pilot)
                assert ("function", "handler", 0) in _stale_names(app, "uifixplug")
                assert ("instance", "Widget", 0) in _stale_names(app, "uifixplug")

                # B: every change is listed, nothing is written; escape writes nothing.
                await pilot.press("B")
                await _settled(app, pilot)
                text = _dialog_text(app)
                for line in (
                    "uifixhost.handler = uifixplug.handler",
                    "uifixhost.HANDLERS[0] = uifixplug.handler",
                    "obj.__class__ = uifixplug.Widget",
                    "# obj: instances of uifixplug.Widget (generation 0)",
                    "Nothing has been written yet.",
                ):
                    assert line in text, text
                assert uifixhost.results() == old
                # Focus is on the list (arrows scroll it), not on Apply: enter applies nothing.
                assert app.focused is _dialog(app).query_one("#fix-body")
                await pilot.press("enter")
                await _settled(app, pilot)
                assert _dialog(app).state == "review" and uifixhost.results() == old
                await pilot.press("escape")
                await pilot.pause()
                assert not isinstance(app.screen, FixScreen)
                assert uifixhost.results() == old

                # b on the old handler: its changes only; y carries out exactly those.
                _select(app, "uifixplug", "handler", "function")
                await pilot.press("b")
                await _settled(app, pilot)
                text = _dialog_text(app)
                assert "uifixhost.handler = uifixplug.handler" in text, text
                assert "uifixhost.HANDLERS[0] = uifixplug.handler" in text, text
                assert "__class__" not in text, text  # the instance is another entry
                assert uifixhost.results() == old
                await pilot.press("y")
                await _settled(app, pilot)
                text = _dialog_text(app)
                assert text.startswith("Applied 2 changes in process"), text
                assert "not in the reviewed plan" not in text, text  # the unlisted: not shown
                assert "uifixplug.handler (function, generation 0)" in text, text  # gone
                assert uifixhost.results() == {
                    "copy": "handler v2",
                    "registry": "handler v2",
                    "method": "show v1",  # not listed: not changed
                }
                await pilot.press("escape")
                await _settled(app, pilot)
                # The app scanned again: the handler is gone, the instance not.
                names = _stale_names(app, "uifixplug")
                assert ("function", "handler", 0) not in names, names
                assert ("instance", "Widget", 0) in names, names

                # B, then enter on Apply: the rest.
                await pilot.press("B")
                await _settled(app, pilot)
                assert "obj.__class__ = uifixplug.Widget" in _dialog_text(app)
                await pilot.press("tab")  # from the list to the Apply button
                assert app.focused is _dialog(app).query_one("#fix-apply", Button)
                await pilot.press("enter")
                await _settled(app, pilot)
                assert "Nothing stale remains." in _dialog_text(app), _dialog_text(app)
                await pilot.press("escape")
                await _settled(app, pilot)
                assert _stale_names(app, "uifixplug") == []

        snap = reloadscope.snapshot(tmp_path / "before.rsnap")  # (recorded before the fix)
        asyncio.run(go())
        assert uifixhost.results() == {
            "copy": "handler v2",
            "registry": "handler v2",
            "method": "show v2",
        }
        asyncio.run(_snapshot_plan(snap))
    finally:
        reloadscope.uninstall()
        sys.path.remove(str(tmp_path))
        sys.modules.pop("uifixhost", None)
        sys.modules.pop("uifixplug", None)


TARGET = r"""
import importlib, json, os, sys, time
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
plug = os.path.join(here, "liveplug.py")

def write(v):
    open(plug, "w").write(PLUG.format(v=v))
    os.utime(plug, (time.time() + 10 * v, time.time() + 10 * v))
    importlib.invalidate_caches()

write(1)
import liveplug, livehost
write(2)
importlib.reload(liveplug)
print("ready", flush=True)
seq = 0
while True:
    seq += 1
    tmp = os.path.join(here, "state.tmp")
    open(tmp, "w").write(json.dumps(dict(livehost.results(), seq=seq)))
    os.replace(tmp, os.path.join(here, "state.json"))
    time.sleep(0.02)
"""


def test_fix_a_live_process(tmp_path):
    (tmp_path / "t.py").write_text(TARGET.replace("PLUG", repr(PLUG)))
    (tmp_path / "livehost.py").write_text(HOST.format(plug="liveplug"))
    p = subprocess.Popen(
        [sys.executable, "-m", "reloadscope", "run", str(tmp_path / "t.py")],
        stdout=subprocess.PIPE,
        text=True,
        env=env(),
    )
    state = tmp_path / "state.json"

    def alive() -> str:
        return "" if p.poll() is None else f"the target exited ({p.returncode})"

    def fresh() -> dict:
        """The target's callbacks' results, from a loop turn that began after this call."""
        before = read_json(state)["seq"]
        return wait_for("the next loop turn", lambda: _newer(state, before), 30, alive)

    try:
        assert p.stdout.readline() == "ready\n"
        wait_for("its agent", lambda: os.path.exists(socket_path(p.pid)), 30, alive)
        wait_for("its first state", lambda: read_json(state), 30, alive)
        old = {"copy": "handler v1", "registry": "handler v1", "method": "show v1"}

        async def go():
            app = ReloadScopeApp(LiveSource(p.pid))
            async with app.run_test(size=(100, 30)) as pilot:
                await _settled(app, pilot)
                names = _stale_names(app, "liveplug")
                assert ("function", "handler", 0) in names and ("instance", "Widget", 0) in names

                await pilot.press("B")
                await _settled(app, pilot)
                text = _dialog_text(app)
                for line in (
                    "livehost.handler = liveplug.handler",
                    "livehost.HANDLERS[0] = liveplug.handler",
                    "obj.__class__ = liveplug.Widget",
                    "# obj: instances of liveplug.Widget (generation 0)",
                ):
                    assert line in text, text
                assert f"in process {p.pid}:" in text, text
                assert _without_seq(fresh()) == old  # listed, not written
                await pilot.press("escape")
                await pilot.pause()
                assert not isinstance(app.screen, FixScreen)
                assert _without_seq(fresh()) == old
                first = app.report
                await pilot.press("r")  # a second scan of the child (one session at a time)
                await _settled(app, pilot)
                assert app.report is not first
                kept = set(_stale_names(app, "liveplug"))
                assert {("function", "handler", 0), ("instance", "Widget", 0)} <= kept, kept

                await pilot.press("B")
                await _settled(app, pilot)
                await pilot.press("y")
                await _settled(app, pilot)
                text = _dialog_text(app)
                assert text.startswith("Applied "), text
                assert "Nothing stale remains." in text, text
                await pilot.press("escape")
                await _settled(app, pilot)
                assert _stale_names(app, "liveplug") == []  # the app scanned again

        asyncio.run(go())
        assert _without_seq(fresh()) == {
            "copy": "handler v2",
            "registry": "handler v2",
            "method": "show v2",
        }
        assert stale(report(p.pid), "liveplug") == []
        assert p.poll() is None  # it runs on
    finally:
        p.kill()
        p.wait()


def _newer(state: Path, seq: int) -> dict | None:
    got = read_json(state)
    return got if got and got["seq"] > seq else None


def _without_seq(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "seq"}


async def _snapshot_plan(snap: Path) -> None:
    """A snapshot written before the fix: its plan names the rebinds its recorded paths
    give, and cannot be applied."""
    app = ReloadScopeApp(FileSource(snap))
    async with app.run_test(size=(100, 30)) as pilot:
        await _settled(app, pilot)
        _select(app, "uifixplug", "handler", "function")
        await pilot.press("b")
        await _settled(app, pilot)
        text = _dialog_text(app)
        assert "uifixhost.handler = uifixplug.handler" in text, text
        assert "A snapshot cannot be applied" in text, text
        assert _dialog(app).query_one("#fix-apply", Button).disabled


def test_a_snapshot_shows_its_plan_and_cannot_be_applied():
    async def go():
        app = ReloadScopeApp(FileSource(FIXTURE))
        async with app.run_test(size=(80, 24)) as pilot:
            await _settled(app, pilot)
            await pilot.press("B")
            await _settled(app, pilot)
            text = _dialog_text(app)
            assert "A snapshot cannot be applied" in text, text
            # The rebinds its recorded paths give, and the holders it cannot change.
            assert "demo_app.greet = demo_greeter.greet" in text, text
            assert "demo_greeter.shout" in text and "leftover name" in text, text
            apply = _dialog(app).query_one("#fix-apply", Button)
            assert apply.disabled
            await pilot.press("y")  # refused: says so, writes nothing
            await _settled(app, pilot)
            assert _dialog(app).state == "review"
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, FixScreen)
            assert app.query_one("#stale", DataTable).row_count >= 3

    asyncio.run(go())
