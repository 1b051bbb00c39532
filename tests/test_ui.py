"""The terminal UI driven for real (Textual's pilot) on each kind of source."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from reloadscope.agent.server import socket_path
from reloadscope.ui.app import ReloadScopeApp, TextScreen
from reloadscope.ui.source import FileSource, LiveSource
from scenario import SRC

FIXTURE = Path(__file__).parent / "fixtures" / "snapshot-v1.rsnap"

# Scanning this process while Textual's asyncio loop runs in it breaks CPython 3.12.1's GC
# ("PyObject_GC_Track: object already tracked" on an _asyncio.FutureIter, then memory grows
# by gigabytes until the OOM killer comes); seen before follow too (commit 0381145).


async def _loaded(app: ReloadScopeApp, pilot) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()


def _text(app: ReloadScopeApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def _column(app: ReloadScopeApp, selector: str, col: int) -> list[str]:
    table = app.query_one(selector, DataTable)
    return [str(table.get_row_at(r)[col]) for r in range(table.row_count)]


def run(coro) -> None:
    asyncio.run(coro)


def test_opens_on_the_findings_without_a_key_press():
    async def go():
        app = ReloadScopeApp(FileSource(FIXTURE))
        async with app.run_test(size=(120, 40)) as pilot:
            await _loaded(app, pilot)
            assert _column(app, "#modules", 0)[0] == "demo_greeter"
            names = _column(app, "#stale", 1)
            assert {"greet", "Greeter", "shout"} <= set(names)
            assert "demo_app.visitor.__class__" in _text(app, "#paths")  # first row: the class
            assert "fix:" in _text(app, "#paths")
            assert "snapshot" in app.sub_title

    run(go())


def test_navigation_filter_and_sort():
    async def go():
        app = ReloadScopeApp(FileSource(FIXTURE))
        async with app.run_test(size=(120, 40)) as pilot:
            await _loaded(app, pilot)
            assert app.focused is app.query_one("#stale")  # no tab needed
            await pilot.press("down")
            second = _column(app, "#stale", 1)[1]
            assert second in _text(app, "#paths")
            await pilot.press("slash")
            await pilot.press(*"shout")
            await pilot.pause()
            assert _column(app, "#stale", 1) == ["shout"]
            assert "demo_greeter.shout" in _text(app, "#paths")
            await pilot.press("escape")
            await pilot.pause()
            assert len(_column(app, "#stale", 1)) > 1
            app.sort = "size"
            app._fill_stale()
            sizes = [int(x) for x in _column(app, "#stale", 4)]
            assert sizes == sorted(sizes, reverse=True)

    run(go())


def test_diff_help_save_and_rescan(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    async def go():
        app = ReloadScopeApp(FileSource(FIXTURE))
        async with app.run_test(size=(120, 40)) as pilot:
            await _loaded(app, pilot)
            await pilot.press("d")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, TextScreen)
            assert '+    return f"Hi there, {name}!"' in screen.text
            assert '-    return f"Hello, {name}"' in screen.text
            await pilot.press("escape")
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, TextScreen) and "quit" in app.screen.text
            await pilot.press("escape")
            await pilot.press("s")
            await pilot.pause()
            assert list(tmp_path.glob("reloadscope-*.rsnap"))
            await pilot.press("r")  # a file cannot be rescanned: says so, keeps the report
            await pilot.pause()
            assert _column(app, "#modules", 0)[0] == "demo_greeter"
            await pilot.press("q")

    run(go())


TARGET = r"""
import importlib, os, sys, time
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
path = os.path.join(here, "liveplug.py")
open(path, "w").write("def handler():\n    return 1\n")
import liveplug
keep = liveplug.handler
open(path, "w").write("def handler():\n    return 2\n")
os.utime(path, (time.time() + 10, time.time() + 10))
importlib.reload(liveplug)
print("ready", flush=True)
while True:
    time.sleep(0.02)
"""


def test_live_source_rescans_and_quit_detaches(tmp_path):
    (tmp_path / "t.py").write_text(TARGET)
    env = dict(os.environ, PYTHONPATH=SRC, PYTHONDONTWRITEBYTECODE="1")
    p = subprocess.Popen(
        [sys.executable, "-m", "reloadscope", "run", str(tmp_path / "t.py")],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        p.stdout.readline()
        deadline = time.time() + 10
        while not os.path.exists(socket_path(p.pid)) and time.time() < deadline:
            time.sleep(0.05)

        async def go():
            app = ReloadScopeApp(LiveSource(p.pid))
            async with app.run_test(size=(100, 30)) as pilot:
                await _loaded(app, pilot)
                assert _column(app, "#modules", 0)[0] == "liveplug"
                assert "__main__.keep" in _text(app, "#paths")
                await pilot.press("g")
                await _loaded(app, pilot)
                assert "live process" in app.sub_title
                await pilot.press("q")

        run(go())
        assert p.poll() is None  # the target runs on
        assert os.path.exists(socket_path(p.pid))  # its own agent (run) keeps listening
    finally:
        p.kill()
        p.wait()


def test_works_at_80x24():
    async def go():
        app = ReloadScopeApp(FileSource(FIXTURE))
        async with app.run_test(size=(80, 24)) as pilot:
            await _loaded(app, pilot)
            # The name is shortened in the middle when it must be: the counts always show.
            assert _column(app, "#modules", 0)[0] in ("demo_greeter", "dem…greeter")
            assert _column(app, "#modules", 2)[0] == "5"
            assert app.query_one("#stale", DataTable).row_count >= 3

    run(go())


def test_export_writes_the_reference_graph(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    async def go():
        app = ReloadScopeApp(FileSource(FIXTURE))
        async with app.run_test(size=(120, 40)) as pilot:
            await _loaded(app, pilot)
            await pilot.press("tab", "x")
            await pilot.pause()

    run(go())
    (dot,) = tmp_path.glob("*.dot")
    text = dot.read_text()
    assert text.startswith("digraph") and "demo_app.visitor.__class__" in text


def test_thousands_of_rows_load_and_filter(tmp_path):
    from reloadscope.model import Report
    from reloadscope.snapshot import write

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from bench_snapshot import make_document

    doc, sources = make_document(5000)
    big = write(Report.from_json(doc, sources), tmp_path / "big.rsnap")

    async def go():
        app = ReloadScopeApp(FileSource(big))
        async with app.run_test(size=(120, 40)) as pilot:
            await _loaded(app, pilot)
            assert app.query_one("#modules", DataTable).row_count == 50
            assert app.query_one("#stale", DataTable).row_count == 100
            await pilot.press("tab", "slash", *"event_42")
            await pilot.pause()
            rows = _column(app, "#stale", 1)
            assert rows == ["Handler42.on_event_42"]

    run(go())


def test_this_process_as_the_source(tmp_path):
    import importlib

    import reloadscope
    from reloadscope.ui.source import ProcessSource

    (tmp_path / "uiplug.py").write_text("def handler():\n    return 1\n")
    sys.path.insert(0, str(tmp_path))
    reloadscope.install(listen=False)
    try:
        import uiplug

        held = [uiplug.handler]
        (tmp_path / "uiplug.py").write_text("def handler():\n    return 2\n")
        t = time.time() + 10
        os.utime(tmp_path / "uiplug.py", (t, t))
        importlib.invalidate_caches()
        importlib.reload(uiplug)

        async def go():
            app = ReloadScopeApp(ProcessSource())
            async with app.run_test(size=(120, 40)) as pilot:
                await _loaded(app, pilot)
                assert "uiplug" in _column(app, "#modules", 0)
                app.query_one("#modules", DataTable).move_cursor(
                    row=_column(app, "#modules", 0).index("uiplug")
                )
                await pilot.pause()
                assert _column(app, "#stale", 1) == ["handler"]
                # The app's own objects are not findings.
                assert not any(m.startswith("reloadscope") for m in _column(app, "#modules", 0))
                await pilot.press("r")
                await _loaded(app, pilot)
                assert "this process" in app.sub_title

        run(go())
        assert held
    finally:
        reloadscope.uninstall()
        sys.path.remove(str(tmp_path))
        sys.modules.pop("uiplug", None)


def test_generations_and_choosing_which_two_to_diff():
    async def go():
        app = ReloadScopeApp(FileSource(FIXTURE))
        async with app.run_test(size=(120, 40)) as pilot:
            await _loaded(app, pilot)
            await pilot.press("shift+tab", "enter")  # from the stale objects to the modules
            await pilot.pause()
            assert isinstance(app.screen, TextScreen)
            assert "0: import" in app.screen.text and "1: reload" in app.screen.text
            await pilot.press("escape", "d")
            await pilot.pause()
            assert "generation 0" in app.screen.text and "generation 1" in app.screen.text
            await pilot.press("right_square_bracket")  # from = to: nothing differs
            await pilot.pause()
            assert "have the same source" in app.screen.text

    run(go())


@pytest.mark.parametrize("objgraph_installed", [True, False])
def test_export_in_this_process_uses_objgraph_when_it_is_installed(
    tmp_path, monkeypatch, objgraph_installed
):
    import importlib

    import reloadscope
    from reloadscope.ui.source import ProcessSource

    if objgraph_installed:
        pytest.importorskip("objgraph")
    else:
        monkeypatch.setitem(sys.modules, "objgraph", None)  # import objgraph raises ImportError
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exportplug.py").write_text("def handler():\n    return 1\n")
    sys.path.insert(0, str(tmp_path))
    reloadscope.install(listen=False)
    notes: list[str] = []
    try:
        import exportplug

        held = [exportplug.handler]
        (tmp_path / "exportplug.py").write_text("def handler():\n    return 2\n")
        t = time.time() + 10
        os.utime(tmp_path / "exportplug.py", (t, t))
        importlib.invalidate_caches()
        importlib.reload(exportplug)

        async def go():
            app = ReloadScopeApp(ProcessSource())
            monkeypatch.setattr(app, "notify", lambda message, **kw: notes.append(str(message)))
            async with app.run_test(size=(120, 40)) as pilot:
                await _loaded(app, pilot)
                app.query_one("#modules", DataTable).move_cursor(
                    row=_column(app, "#modules", 0).index("exportplug")
                )
                await pilot.pause()
                await pilot.press("tab", "x")
                await pilot.pause()

        run(go())
        assert held
    finally:
        reloadscope.uninstall()
        sys.path.remove(str(tmp_path))
        sys.modules.pop("exportplug", None)
    (dot,) = tmp_path.glob("*.dot")
    text = dot.read_text()
    assert any(n.startswith("wrote ") for n in notes), notes
    if objgraph_installed:
        assert text.startswith("digraph ObjectGraph"), text[:200]  # objgraph's back-references
    else:
        assert "objgraph is not installed" in " ".join(notes), notes
        assert text.startswith("digraph") and "held" in text  # the reported paths


def test_follow_in_this_process_marks_new_rows_and_names_the_gone(tmp_path):
    """No key press: a reload in this process (recording on) is rescanned by itself; the new
    stale rows are marked, the changed module shows its change, and what went away is named."""
    import importlib

    import reloadscope
    from reloadscope.ui.source import ProcessSource

    def edit(n: int) -> None:
        (tmp_path / "followplug.py").write_text(f"def handler():\n    return {n}\n")
        t = time.time() + 10 * n
        os.utime(tmp_path / "followplug.py", (t, t))
        importlib.invalidate_caches()

    edit(0)
    sys.path.insert(0, str(tmp_path))
    reloadscope.install(listen=False)
    try:
        import followplug

        held = [followplug.handler]

        async def until(app: ReloadScopeApp, pilot, text: str) -> str:
            deadline = time.monotonic() + 15
            while text not in _text(app, "#follow"):
                assert time.monotonic() < deadline, _text(app, "#follow")
                await pilot.pause(0.1)
            return _text(app, "#follow")

        async def go():
            app = ReloadScopeApp(ProcessSource())
            async with app.run_test(size=(120, 40)) as pilot:
                await _loaded(app, pilot)
                await until(app, pilot, "following: rescans after each reload")
                edit(1)
                importlib.reload(followplug)  # generation 1: handler of generation 0 is stale
                line = await until(app, pilot, "gen 1 of followplug:")
                assert "+1 stale, -0 gone (1 now)" in line
                row = _column(app, "#modules", 0).index("followplug")
                assert _column(app, "#modules", 2)[row] == "1 (+1 -0)"
                app.query_one("#modules", DataTable).move_cursor(row=row)
                await pilot.pause()
                assert _column(app, "#stale", 1) == ["+ handler"]  # new: marked
                held.pop()  # generation 0's handler goes...
                held.append(followplug.handler)  # ...and generation 1's stays
                edit(2)
                importlib.reload(followplug)
                line = await until(app, pilot, "gen 2 of followplug:")
                assert "+1 stale, -1 gone (1 now) gone: handler" in line
                assert _column(app, "#stale", 1) == ["+ handler"]
                assert _column(app, "#stale", 2) == ["1"]  # the one of generation 1
                await pilot.press("f")  # paused: a reload is heard, not shown
                edit(3)
                importlib.reload(followplug)
                await until(app, pilot, "not shown yet: gen 3 of followplug")
                await pilot.pause(2)
                assert "gen 2 of followplug:" in _text(app, "#follow")
                await pilot.press("r")  # a rescan asked for shows it, and what changed
                line = await until(app, pilot, "gen 3 of followplug:")
                assert "+0 stale, -0 gone (1 now)" in line
                assert "not shown yet" not in line  # shown now
                await pilot.press("q")

        run(go())
        assert held
    finally:
        reloadscope.uninstall()
        sys.path.remove(str(tmp_path))
        sys.modules.pop("followplug", None)


def test_a_file_source_does_not_follow():
    import threading

    async def go():
        app = ReloadScopeApp(FileSource(FIXTURE))
        async with app.run_test(size=(120, 40)) as pilot:
            await _loaded(app, pilot)
            assert not app.query_one("#follow").display
            assert app.check_action("pause_follow", ()) is False
            assert app.check_action("resume_follow", ()) is False
            assert not any(t.name == "reloadscope-follow" for t in threading.enumerate())

    run(go())
