"""The grouping of stale entries by their holder (reloadscope.holders), on documents."""

from __future__ import annotations

import pytest

from reloadscope.holders import GROWING_HINT, group, holder_path
from reloadscope.model import Module, Path, Report, StaleObject


@pytest.mark.parametrize(
    ("root", "text", "steps", "holder"),
    [
        ("module", "__main__.SUBSCRIBERS[3]", 2, "__main__.SUBSCRIBERS"),
        ("module", "__main__.HANDLERS['greet'][0]", 3, "__main__.HANDLERS['greet']"),
        ("module", "__main__.HANDLERS['a.b[0]'][0]", 3, "__main__.HANDLERS['a.b[0]']"),
        ("module", "consumer.greet", 1, "consumer"),
        ("module", "app.main.greet", 1, "app.main"),
        ("module", "app.main.REGISTRY['greet'][0].__func__", 4, "app.main.REGISTRY['greet']"),
        ("module", "__main__.SUBS[2].__self__.__class__", 4, "__main__.SUBS"),
        ("module", "__main__.SUBS[2].__self__", 3, "__main__.SUBS"),
        ("module", "consumer.callback.__func__", 2, "consumer"),
        ("module", "app.main.make.__closure__[0].cell_contents", 2, "app.main.make"),
        ("module", "app.main.Sub.__bases__[0]", 2, "app.main.Sub"),
        ("module", "app.main.widget.__class__", 2, "app.main.widget"),
        ("module", "app.main.obj.__dict__['x y']", 2, "app.main.obj"),
        ("module", "m.S.__iter__().__reduce__()[1][0][2]", 2, "m.S"),
        ("module", "m.D.values().__iter__().__reduce__()[1][0][2]", 2, "m.D"),
        ("module", "m.__dict__['not an identifier']", 1, "m"),
        ("module", "__import__('gc').get_referents(m.x.y)[1]", 3, "m.x.y"),
        ("module", "<unnamed reference of m.x>", 2, "m.x"),
        (
            "thread",
            "thread 'MainThread' > serve() app/server.py:42 > local 'handler'.__func__",
            3,
            "thread 'MainThread' > serve() app/server.py:42 > local 'handler'",
        ),
        (
            "thread",
            "thread 'MainThread' > serve() app/server.py:42 > local 'handler'",
            2,
            "thread 'MainThread' > serve() app/server.py:42",
        ),
        ("other", "sys.gettrace()", 1, "sys.gettrace()"),
        ("other", "signal.getsignal(signal.SIGINT).__self__", 2, "signal.getsignal(signal.SIGINT)"),
        ("other", "not reachable from any module: held outside the gc graph (x.y)", 0, None),
    ],
)
def test_holder_path(root, text, steps, holder):
    assert holder_path(root, text, steps) == (text if holder is None else holder)


def entry(text, generation, *, count=1, size=100, hint="fix it", root="module", steps=2):
    return StaleObject(
        "function", "on_event", "function", generation, count, size,
        (Path(root, text, hint, steps=steps),),
    )  # fmt: skip


def test_group_growing_list_and_dict():
    stale = tuple(entry(f"__main__.SUBSCRIBERS[{g}]", g) for g in range(6)) + tuple(
        entry(f"__main__.HANDLERS['greet'][{g}]", g, steps=3) for g in range(6)
    ) + (entry("consumer.on_event", 0, size=50, steps=1),)  # fmt: skip
    hs = group([Module("plugins", None, 6, (), (), stale)])
    assert [(h.path, h.count, h.generations, h.growing) for h in hs] == [
        ("__main__.SUBSCRIBERS", 6, (0, 1, 2, 3, 4, 5), True),
        ("__main__.HANDLERS['greet']", 6, (0, 1, 2, 3, 4, 5), True),
        ("consumer", 1, (0,), False),
    ]
    assert hs[0].hint == f"grows by one per reload; {GROWING_HINT}"
    assert hs[0].bytes == 600
    assert hs[0].entries == tuple(("plugins", i) for i in range(6))
    assert hs[2].hint == "fix it"
    # Growing by attributes (a leftover name per reload): the entries' own advice.
    names = tuple(entry(f"plugins.Handler{g}", g, hint="leftover name", steps=1) for g in (0, 1))
    (h,) = group([Module("plugins", None, 2, (), (), names)])
    assert (h.path, h.growing, h.hint) == ("plugins", True, "leftover name")
    assert hs[0].to_json()["generations"] == [0, 1, 2, 3, 4, 5]


def test_group_unknown_generations_and_gaps():
    late = tuple(entry(f"__main__.SUBSCRIBERS[{i}]", None, count=2) for i in range(3))
    (h,) = group([Module("plugins", None, None, (), (), late, generations_known=False)])
    assert (h.count, h.generations, h.growing, h.hint) == (6, (None,), False, "fix it")
    # Two generations that are not consecutive: not growing; mixed known and unknown.
    gaps = (entry("m.L[0]", 0), entry("m.L[1]", 2), entry("m.L[2]", None, hint="other"))
    (h,) = group([Module("plugins", None, 3, (), (), gaps)])
    assert (h.generations, h.growing, h.hint) == ((0, 2, None), False, "fix it")
    # Consecutive generations of different modules are not a run.
    a = Module("a", None, 1, (), (), (entry("m.L[0]", 0),))
    b = Module("b", None, 2, (), (), (entry("m.L[1]", 1),))
    (h,) = group([a, b])
    assert (h.count, h.generations, h.growing) == (2, (0, 1), False)


def test_group_no_paths_and_roots_kept_apart():
    s = StaleObject("other", "x", "object", 0, 1, 10, ())
    t = entry("thread 'T' > f() a.py:1 > local 'm'.L[0]", 0, root="thread", steps=4)
    hs = group([Module("m", None, 1, (), (), (s, t, entry("m.L[0]", 0)))])
    assert sorted((h.root, h.path) for h in hs) == [
        ("module", "m.L"),
        ("other", "no path found"),
        ("thread", "thread 'T' > f() a.py:1 > local 'm'.L"),
    ]


def test_report_document_gets_holders():
    doc = {
        "format": "reloadscope-report",
        "version": 1,
        "process": {"pid": 1, "python": "3.12.0", "argv": []},
        "taken_at": "2026-01-01T00:00:00+00:00",
        "scan": {"duration_s": 0.1, "objects": 10, "complete": True},
        "modules": [
            {
                "name": "plugins",
                "file": None,
                "current_generation": 2,
                "generations": [],
                "leftover_names": [],
                "stale": [
                    {
                        "kind": "function",
                        "qualname": "on_event",
                        "type": "function",
                        "generation": g,
                        "count": 1,
                        "size": 136,
                        "paths": [{"root": "module", "text": f"__main__.SUBS[{g}]"}],
                    }
                    for g in (0, 1)
                ],
            }
        ],
    }
    r = Report.from_json(doc)
    (h,) = r.to_json()["holders"]
    assert h["path"] == "__main__.SUBS"
    assert (h["count"], h["generations"], h["growing"], h["bytes"]) == (2, [0, 1], True, 272)
    assert "holders" not in doc  # the caller's document is not changed
    assert r.holders[0].path == "__main__.SUBS"


# A real plugin host: it registers the plugin's callbacks again after every reload. ---------------
HOST = """
    import reloadscope, rs
    {install}
    import plugins
    SUBSCRIBERS = []
    HANDLERS = {{}}
    def register():
        SUBSCRIBERS.append(plugins.on_event)
        HANDLERS.setdefault("greet", []).append(plugins.on_greet)
    register()
    for n in range(1, 7):
        rs.edit(plugins, f"def on_event(): return {{n}}\\ndef on_greet(): return {{n}}\\n")
        register()
    report = reloadscope.scan()
    rs.report(report.to_json(), text=report.text())
"""


@pytest.mark.parametrize("recording", [True, False], ids=["recording", "late"])
def test_a_plugin_host_that_registers_on_every_reload(scenario, recording):
    scenario.write("plugins.py", "def on_event(): return 0\ndef on_greet(): return 0\n")
    install = "reloadscope.install()" if recording else ""
    r = scenario.run(HOST.format(install=install))
    holders = r.doc["holders"]
    top = holders[:2]
    assert sorted(h["path"] for h in top) == ["__main__.HANDLERS['greet']", "__main__.SUBSCRIBERS"]
    gens = [0, 1, 2, 3, 4, 5] if recording else [None]
    for h in top:
        assert h["root"] == "module"
        assert h["count"] == 6
        assert h["generations"] == gens
        assert h["growing"] is recording
        fn = "on_event" if h["path"] == "__main__.SUBSCRIBERS" else "on_greet"
        assert h["bytes"] == sum(s["size"] for s in r.stale("plugins", qualname=fn))
        # Late, the old functions of unknown generation share one entry (count 6).
        assert len(h["entries"]) == (6 if recording else 1)
    if recording:
        assert top[0]["hint"].startswith("grows by one per reload; registration is not idempotent")
    else:
        assert "grows" not in top[0]["hint"] and top[0]["hint"]
    assert len(holders) == 2
    # The readable report names them right after its header and count line.
    lines = r.doc["_extra"]["text"].splitlines()
    at = lines.index("12 stale objects in 1 module")
    assert all(ln.startswith("  could not see:") for ln in lines[2:at])
    assert lines[at + 2] == "Holders (root causes), most stale objects first:"
    named = " ".join(lines[at + 3 : at + 7])
    assert "__main__.SUBSCRIBERS: 6 stale (" in named
    assert "__main__.HANDLERS['greet']: 6 stale (" in named
    assert ("gens 0-5, growing" in named) is recording


def test_the_ui_lists_the_holders_and_enter_shows_what_one_holds(tmp_path):
    import asyncio
    import json

    from textual.widgets import DataTable

    from reloadscope.ui.app import ReloadScopeApp
    from reloadscope.ui.holders import HoldersScreen
    from reloadscope.ui.source import FileSource

    stale = [
        {
            "kind": "function",
            "qualname": name,
            "type": "function",
            "generation": g,
            "count": 1,
            "size": 136,
            "paths": [{"root": "module", "text": f"__main__.{holder}[{g}]", "steps": 2}],
        }
        for g in range(3)
        for name, holder in (("on_event", "SUBSCRIBERS"), ("on_greet", "HANDLERS['greet']"))
    ] + [
        {
            "kind": "function",
            "qualname": "helper",
            "type": "function",
            "generation": 0,
            "count": 1,
            "size": 136,
            "paths": [{"root": "module", "text": "consumer.helper", "steps": 1}],
        }
    ]
    doc = {
        "format": "reloadscope-report",
        "version": 1,
        "process": {"pid": 7, "python": "3.12.0", "argv": ["host.py"]},
        "taken_at": "2026-01-01T00:00:00+00:00",
        "scan": {"duration_s": 0.1, "objects": 10, "complete": True},
        "modules": [
            {
                "name": "plugins",
                "file": None,
                "current_generation": 3,
                "generations": [],
                "leftover_names": [],
                "stale": stale,
            }
        ],
    }
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))

    async def go():
        app = ReloadScopeApp(FileSource(path))
        async with app.run_test(size=(80, 24)) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            await pilot.press("h")
            await pilot.pause()
            assert isinstance(app.screen, HoldersScreen)
            table = app.screen.query_one("#holders-table", DataTable)
            rows = [[str(c) for c in table.get_row_at(r)] for r in range(table.row_count)]
            assert rows == [
                ["__main__.SUBSCRIBERS", "3", "gens 0-2", "yes"],
                ["__main__.HANDLERS['greet']", "3", "gens 0-2", "yes"],
                ["consumer", "1", "gen 0", ""],
            ]
            await pilot.press("down", "enter")
            await pilot.pause()
            assert not isinstance(app.screen, HoldersScreen)
            stale = app.query_one("#stale", DataTable)
            assert [r.qualname for r in app.rows] == ["on_greet"] * 3
            assert "HANDLERS['greet']" in str(stale.border_title)
            await pilot.press("escape")
            await pilot.pause()
            assert len(app.rows) == 7

    asyncio.run(go())


def _doc(gens: range) -> dict:
    stale = [
        {
            "kind": "function",
            "qualname": "on_event",
            "type": "function",
            "generation": g,
            "count": 1,
            "size": 136,
            "paths": [{"root": "module", "text": f"__main__.SUBSCRIBERS[{g}]", "steps": 2}],
        }
        for g in gens
    ]
    return {
        "format": "reloadscope-report",
        "version": 1,
        "process": {"pid": 7, "python": "3.12.0", "argv": []},
        "taken_at": "2026-01-01T00:00:00+00:00",
        "scan": {"duration_s": 0.1, "objects": 10, "complete": True},
        "modules": [
            {
                "name": "plugins",
                "file": None,
                "current_generation": len(gens),
                "generations": [],
                "leftover_names": [],
                "stale": stale,
            }
        ],
    }


def test_watch_names_the_holders_that_grew():
    from reloadscope.follow import grown_holders

    one, two, three = (Report.from_json(_doc(range(n))) for n in (1, 2, 3))
    assert grown_holders(None, one) == []  # one generation: not growing yet
    (c,) = grown_holders(one, two)
    assert c.new == 1
    assert c.line() == (
        f"holder __main__.SUBSCRIBERS grew: +1 stale (2 now, gens 0, 1): "
        f"grows by one per reload; {GROWING_HINT}"
    )
    assert c.as_json() == {
        "holder": "__main__.SUBSCRIBERS",
        "root": "module",
        "count": 2,
        "new": 1,
        "generations": [0, 1],
        "growing": True,
        "hint": f"grows by one per reload; {GROWING_HINT}",
    }
    assert [c.new for c in grown_holders(one, three)] == [2]
    assert grown_holders(three, three) == []
    assert grown_holders(three, two) == []  # it shrank
