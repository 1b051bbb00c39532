"""The timeline screen and the UI's polish (issue 15): focus, shortened paths, step counts,
plurals, the header, keys in the help and the docs, evidence and blind spots."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from reloadscope.model import Report
from reloadscope.snapshot import load, write
from reloadscope.ui import view
from reloadscope.ui.app import HELP, ReloadScopeApp
from reloadscope.ui.source import FileSource
from reloadscope.ui.timeline import TimelineScreen, timeline_text
from scenario import Scenario, python_versions
from test_timeline import GROW

FIXTURE = Path(__file__).parent / "fixtures" / "snapshot-v1.rsnap"
# The UI's reference page (the README links to it).
UI_DOC = (Path(__file__).resolve().parent.parent / "docs" / "reference" / "ui.md").read_text(
    encoding="utf-8"
)


async def _loaded(app: ReloadScopeApp, pilot) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()


def _text(app: ReloadScopeApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def _column(app: ReloadScopeApp, col: int | str) -> list[str]:
    """A column of the stale table, by index or by label (a narrow table drops size and
    count before it cuts held by)."""
    table = app.query_one("#stale", DataTable)
    if isinstance(col, str):
        col = [str(c.label) for c in table.columns.values()].index(col)
    return [str(table.get_row_at(r)[col]) for r in range(table.row_count)]


def _screen_text(app: ReloadScopeApp) -> str:
    import html

    svg = app.export_screenshot()
    rows: dict[float, list[tuple[float, str]]] = {}
    for m in re.finditer(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', svg):
        rows.setdefault(float(m.group(2)), []).append(
            (float(m.group(1)), html.unescape(m.group(3)))
        )
    return "\n".join(
        "".join(t for _, t in sorted(r)).replace("\xa0", " ") for _, r in sorted(rows.items())
    )


def _doc_with(tmp_path: Path, change) -> Path:
    doc = load(FIXTURE).to_json()
    change(doc)
    return write(Report.from_json(doc, load(FIXTURE).sources), tmp_path / "changed.rsnap")


def test_the_timeline_screen_shows_each_generation(tmp_path):
    Scenario(tmp_path).run(GROW)
    report = load(tmp_path / "grow.rsnap")
    m = report.module("growplug")
    assert m is not None

    async def go():
        app = ReloadScopeApp(FileSource(tmp_path / "grow.rsnap"))
        async with app.run_test(size=(120, 40)) as pilot:
            await _loaded(app, pilot)
            await pilot.press("t")
            await pilot.pause()
            assert isinstance(app.screen, TimelineScreen)
            shown = _screen_text(app)
            await pilot.press("t")  # t closes it again
            await pilot.pause()
            assert not isinstance(app.screen, TimelineScreen)
        return shown

    shown = asyncio.run(go())
    assert "growplug: 4 generations, current 3" in shown
    bars = []
    for g in m.generations:
        row = re.search(
            rf"^│\s+{g.number}  \S+ \S+  (import|reload \S+)\s+(\d+)\s+(\d+ B)\s+(\S+ \S+)\s*(█*)",
            shown,
            re.M,
        )
        assert row, (g.number, shown)
        assert int(row.group(2)) == g.stale
        assert row.group(3) == f"{g.stale_bytes} B"
        bars.append(len(row.group(5)))
    assert bars[0] < bars[1] < bars[2] == 24 and bars[3] == 0  # growth at a glance
    assert "retained" in shown


def test_timeline_text_of_an_old_snapshot_says_not_measured():
    text = timeline_text(load(FIXTURE))
    line = next(ln for ln in text.splitlines() if ln.lstrip().startswith("0 "))
    assert re.search(r"import\s+5\s+2104 B\s+\?", line), line


def test_focus_starts_on_the_stale_objects():
    async def go():
        app = ReloadScopeApp(FileSource(FIXTURE))
        async with app.run_test(size=(100, 30)) as pilot:
            await _loaded(app, pilot)
            table = app.query_one("#stale", DataTable)
            assert app.focused is table
            await pilot.press("down", "down")
            await pilot.pause()
            assert table.cursor_row == 2
            assert _column(app, 1)[2] in _text(app, "#paths")

    asyncio.run(go())


LONG_THREAD = (
    "thread 'MainThread' > serve_forever() /srv/app/very/long/directory/name/server.py:4242 > "
    "local 'handler'"
)


def test_thread_paths_are_shortened_in_the_middle(tmp_path):
    assert view.shorten(LONG_THREAD, 50) == "thread 'MainThread' > … > local 'handler'"
    assert view.shorten(LONG_THREAD + ".__func__", 50).endswith("local 'handler'.__func__")
    assert view.shorten(LONG_THREAD, 30) == "thread 'Mai… > local 'handler'"
    assert view.shorten(LONG_THREAD, 16) == "…local 'handler'"
    short = view.shorten("app.main.REGISTRY['a-very-long-key-indeed'][0].__func__", 30)
    assert len(short) == 30 and short.startswith("app.main") and short.endswith("__func__")
    assert view.shorten("app.main.greet", 30) == "app.main.greet"

    def thread_path(doc):
        entry = doc["modules"][0]["stale"][0]
        entry["paths"] = [{"root": "thread", "text": LONG_THREAD, "depth": 1, "steps": 2}]

    snap = _doc_with(tmp_path, thread_path)

    async def go():
        app = ReloadScopeApp(FileSource(snap))
        async with app.run_test(size=(100, 30)) as pilot:
            await _loaded(app, pilot)
            held = _column(app, "held by")
            assert LONG_THREAD in _text(app, "#paths")  # the panel has it whole
        return held

    held = asyncio.run(go())
    cells = [c for c in held if "handler" in c or c.startswith("thread")]
    assert len(cells) == 1, held
    cell = cells[0]
    assert cell.endswith("local 'handler'") and "…" in cell, cell


STEPS = r"""
import rs, reloadscope
reloadscope.install(listen=False)
rs.write("stepplug.py", '''
class Thing:
    def run(self):
        return 1
def handler():
    return 1
def make():
    def inner():
        return 1
    return inner
''')
rs.write("stepholder.py", "")
import stepplug, stepholder
class Box:
    pass
stepholder.box = Box()
stepholder.box.attr = stepplug.handler          # an instance attribute (inline or __dict__)
stepholder.reg = {"k": [stepplug.Thing().run]}  # a bound method in a list in a dict
stepholder.made = stepplug.make()               # a closure
stepholder.inst = stepplug.Thing()
rs.edit(stepplug, "def handler():\n    return 2\n")
rs.report()
"""


def test_step_counts_agree_across_cpythons(tmp_path):
    found = python_versions()
    pair = [found[v] for v in ("3.10", "3.13") if v in found]
    if len(pair) < 2:
        pytest.skip("needs CPython 3.10 and 3.13")
    shown, depths = [], []
    for i, python in enumerate(pair):
        (tmp_path / str(i)).mkdir()
        r = Scenario(tmp_path / str(i), python).run(STEPS)
        report = Report.from_json(r.doc)
        m = report.module("stepplug")
        assert m is not None
        depths.append({p.text: p.depth for s in m.stale for p in s.paths})
        steps = {
            (s.kind, s.qualname, p.text): re.search(r"\((root: \w+, \d+ steps?)\)", line).group(1)
            for s in m.stale
            for p, line in zip(
                s.paths, [ln for ln in view.paths_text(s).splitlines() if ln.startswith("path ")]
            )
        }
        shown.append(steps)
    assert shown[0] == shown[1]
    # What the count no longer shows: 3.10 reaches the attribute through the instance's
    # __dict__, 3.13 through its inline values.
    assert depths[0]["stepholder.box.attr"] == 3 and depths[1]["stepholder.box.attr"] == 2
    assert len(shown[0]) >= 4
    # An instance attribute is one labelled step (.attr) on every CPython, whether the
    # instance stores it inline (3.11+) or in a __dict__ (3.10): .box and .attr.
    assert shown[0][("function", "handler", "stepholder.box.attr")] == "root: module, 2 steps"


def test_singular_and_plural():
    assert view.generations_text(load(FIXTURE).modules[0]).startswith("demo_greeter: 2 generations")
    report = load(FIXTURE)
    assert "5 stale objects in 1 module" in view.summary(report)
    one = report.modules[0].stale[2]  # greet: one path of one step
    assert "(root: module, 1 step)" in view.paths_text(one)
    from reloadscope.textreport import plural

    assert [plural(n, "module") for n in (0, 1, 2)] == ["0 modules", "1 module", "2 modules"]
    assert plural(1, "entry") == "1 entry" and plural(3, "entry") == "3 entries"


def test_the_header_names_the_process_once():
    async def go():
        app = ReloadScopeApp(FileSource(FIXTURE))
        async with app.run_test(size=(120, 30)) as pilot:
            await _loaded(app, pilot)
            return app.sub_title, _screen_text(app)

    title, screen = asyncio.run(go())
    assert title == "snapshot snapshot-v1.rsnap | pid 12582 | Python 3.11.7 | -c"
    assert screen.count("12582") == 1 and screen.count("Python 3.11.7") == 1, screen


def _key_name(key: str) -> str:
    return {"slash": "/", "question_mark": "?"}.get(key, key)


def test_every_footer_key_is_in_the_help_and_the_docs():
    shown = [b for b in ReloadScopeApp.BINDINGS if b.show]
    assert len(shown) >= 8
    keys_paragraph = UI_DOC.split("Keys: ", 1)[1].split("\n\n", 1)[0]
    for b in shown:
        for key in b.key.split(","):
            name = _key_name(key)
            assert re.search(rf"^  {re.escape(name)} ", HELP, re.M), f"{name} not in the help"
            assert f"`{name}`" in keys_paragraph, f"{name} not in the docs' keys"


def test_the_held_by_panel_shows_evidence_and_blind_spots(tmp_path):
    def with_evidence(doc):
        doc["scan"]["blind_spots"] = ["module demo_x changed on disk since it last ran"]
        for s in doc["modules"][0]["stale"]:
            s["evidence"] = {"kind": "recorded", "text": "recording saw generation 0 make it"}

    snap = _doc_with(tmp_path, with_evidence)

    async def go():
        app = ReloadScopeApp(FileSource(snap))
        async with app.run_test(size=(100, 30)) as pilot:
            await _loaded(app, pilot)
            text = _text(app, "#paths")
            screen = _screen_text(app)
            subtitle = app.query_one("#held").border_subtitle
        return text, screen, subtitle

    text, screen, subtitle = asyncio.run(go())
    assert "why stale [recorded]: recording saw generation 0 make it" in text
    assert "could not see: module demo_x changed on disk since it last ran" in text
    assert "why stale [recorded]" in screen  # on screen, not below the panel's edge
    assert subtitle and "a blind spot" in subtitle


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
