"""The first walk skips big containers (``graph.DEFER_FANOUT``); its paths must still be the
shortest.  Each case scans the same process twice, once as shipped and once with deferral
off, and compares the shortest path of every entry; it also checks which cases needed the
second, full walk, so the shortcut cannot silently stop working either.  Each also runs with
the instances of stale classes counted in bulk rather than listed (``scan.LISTED_PER_CLASS``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scenario import Scenario


@pytest.fixture(params=["listed", "bulk-instances"])
def scenario(request: pytest.FixtureRequest, tmp_path: Path) -> Scenario:
    """Every case runs twice: as shipped, and with every stale class's instances counted in
    bulk (the walks find the instances they show by class, ``graph.Kinds``)."""
    return Scenario(tmp_path, bulk_instances=request.param == "bulk-instances")


PLUG_V = """
class Session:
    def __init__(self, n):
        self.n = n

def handler(event):
    return @V@
"""

COMPARE = """
import json, reloadscope, rs
from reloadscope.agent import graph
import importlib
scan_mod = importlib.import_module("reloadscope.agent.scan")

def depths(doc):
    out = {}
    for m in doc["modules"]:
        for s in m["stale"]:
            key = (m["name"], s["kind"], s["qualname"], s["generation"])
            out[repr(key)] = [p["depth"] for p in s["paths"] if p["root"] == "module"][:1]
    return out

def both():
    import gc
    rec = reloadscope.agent._recorder
    s1 = scan_mod.Scan(rec)
    pruned, _ = s1.run()
    saved, graph.DEFER_FANOUT = graph.DEFER_FANOUT, None
    try:
        full, _ = scan_mod.Scan(rec, collect=False).run()
    finally:
        graph.DEFER_FANOUT = saved
    compare = {"pruned": depths(pruned), "full": depths(full)}
    rs.report(pruned, compare=dict(compare, walks=s1.walks, doubt=s1.doubt,
                                          reused=s1.levels_reused),
              calls=globals().get("calls"))
"""


def _run(scenario, body: str, last: str = "both()\n"):
    """Run ``body``, reload plug, then ``last`` (which scans both ways)."""
    scenario.write("plug.py", PLUG_V.replace("@V@", "1"))
    r = scenario.run(
        "import reloadscope, rs\nreloadscope.install()\nimport plug\n"
        + body
        + "\nrs.edit(plug, "
        + repr(PLUG_V.replace("@V@", "2"))
        + ")\n"
        + COMPARE
        + "\n"
        + last
    )
    cmp = r.doc["_extra"]["compare"]
    assert cmp["pruned"] == cmp["full"], json.dumps(cmp, indent=1)
    assert all(cmp["pruned"].values()), cmp  # every entry has a module path
    r.assert_paths_evaluate()
    return r, cmp


BIG = "junk = [[i] for i in range(30_000)]\nbig = {f'k{i}': [i] for i in range(30_000)}\n"


def test_deep_chains_beside_big_containers_need_one_walk(scenario):
    scenario.write(
        "app.py",
        BIG + "import plug\nkeep = [[[[plug.Session(1)]]]]\nhold = {'a': {'b': [plug.handler]}}\n",
    )
    _, cmp = _run(scenario, "import app")
    assert cmp["walks"] == 1, cmp["doubt"]
    # hold['a']['b'][0], keep[0][0][0][0], keep[0][0][0][0].__class__
    assert sorted(d[0] for d in cmp["pruned"].values()) == [4, 5, 6]


def test_stale_object_inside_a_big_container_is_found_shortest(scenario):
    # The deep chain is found first, but the big list holds the same function much closer.
    scenario.write(
        "app.py",
        BIG + "import plug\ndeep = [[[[[plug.handler]]]]]\njunk[12_345] = plug.handler\n",
    )
    r, cmp = _run(scenario, "import app")
    assert cmp["walks"] == 2
    entry = r.one("plug", kind="function", qualname="handler")
    assert entry["paths"][0]["text"] == "app.junk[12345]"


def test_instances_only_inside_a_big_container(scenario):
    scenario.write(
        "app.py",
        BIG + "import plug\n"
        "for i in range(0, 30_000, 1000):\n"
        "    big[f'k{i}'].append(plug.Session(i))\n",
    )
    r, cmp = _run(scenario, "import app")
    assert cmp["walks"] == 2
    entry = r.one("plug", kind="instance")
    assert entry["count"] == 30 and entry["paths"][0]["depth"] == 3


def test_function_only_inside_a_big_container_reuses_the_first_walks_levels(scenario):
    scenario.write(
        "app.py",
        BIG + "import plug\njunk[12_345] = [{'h': plug.handler}]\n",
    )
    r, cmp = _run(scenario, "import app")
    # Nothing was found outside the big containers: the second walk took the first's levels
    # above them over (graph.walk's resume) instead of building them again.
    assert cmp["walks"] == 2
    assert cmp["doubt"] == "an entry has no object outside the deferred containers", cmp
    assert cmp["reused"] >= 2, cmp
    entry = r.one("plug", kind="function", qualname="handler")
    assert entry["paths"][0]["text"] == "app.junk[12345][0]['h']"


def test_fewer_instances_outside_the_big_containers_than_an_entry_shows(scenario):
    # One instance in the module, thirty in a big list: the entry shows three, so the two
    # others are looked for in the big list too (as the full walk finds them).
    scenario.write(
        "app.py",
        BIG + "import plug\n"
        "last = plug.Session(-1)\n"
        "for i in range(0, 30_000, 1000):\n"
        "    junk[i] = plug.Session(i)\n",
    )
    r, cmp = _run(scenario, "import app")
    assert cmp["walks"] == 2
    entry = r.one("plug", kind="instance")
    assert entry["count"] == 31
    texts = [p["text"] for p in entry["paths"]]
    assert texts[0] == "app.last" and len(texts) == 3, texts
    assert all(t.startswith("app.junk[") for t in texts[1:]), texts


def test_a_deferred_container_holding_the_chain_itself(scenario):
    # The object is deep under a small chain and also two steps below a big dict's value.
    scenario.write(
        "app.py",
        BIG + "import plug\n"
        "s = plug.Session(0)\n"
        "chain = [[[[[[s]]]]]]\n"
        "big['k7'].append([s])\n"
        "del s\n",
    )
    r, cmp = _run(scenario, "import app")
    assert cmp["walks"] == 2
    assert r.one("plug", kind="instance")["paths"][0]["text"] == "app.big['k7'][1][0]"


RANDOM = """
import gc, random, sys, types, reloadscope, rs
from reloadscope.agent import graph
import importlib
scan_mod = importlib.import_module("reloadscope.agent.scan")
reloadscope.install()
import plug

def depths(doc):
    out = {}
    for m in doc["modules"]:
        for s in m["stale"]:
            key = repr((m["name"], s["kind"], s["qualname"], s["generation"]))
            out[key] = [p["depth"] for p in s["paths"] if p["root"] == "module"][:1]
    return out

def build(seed, p_big):
    rng = random.Random(seed)
    app = types.ModuleType("app")
    sys.modules["app"] = app
    app.bigs = [[[i] for i in range(12_000)] for _ in range(3)]
    app.smalls = [[] for _ in range(20)]
    for obj in [plug.handler] + [plug.Session(i) for i in range(rng.randint(1, 5))]:
        for _ in range(rng.choice((1, 1, 2, 3))):
            node = obj
            for _ in range(rng.randint(0, 6)):
                node = rng.choice([lambda n: [n], lambda n: {'x': n}, lambda n: (n, 0)])(node)
            if rng.random() < p_big:
                rng.choice(app.bigs)[rng.randrange(12_000)].append(node)
            else:
                rng.choice(app.smalls).append(node)

results = []
for seed in range(SEEDS):
    build(seed, (0.0, 0.05, 0.4)[seed % 3])
    rs.edit(plug, PLUG.replace("@V@", str(seed + 10)))
    rec = reloadscope.agent._recorder
    first = scan_mod.Scan(rec)
    pruned, _ = first.run()
    saved, graph.DEFER_FANOUT = graph.DEFER_FANOUT, None
    full, _ = scan_mod.Scan(rec, collect=False).run()
    graph.DEFER_FANOUT = saved
    results.append({"seed": seed, "walks": first.walks, "doubt": first.doubt,
                    "pruned": depths(pruned), "full": depths(full)})
    del sys.modules["app"]
    gc.collect()
rs.report(pruned, results=results)
"""


def test_random_heaps_agree_with_the_full_walk(scenario):
    # Old functions and instances placed at random depths in small and big containers, with
    # shared holders: whatever the first walk concludes must match the full one.
    scenario.write("plug.py", PLUG_V.replace("@V@", "1"))
    r = scenario.run(RANDOM.replace("SEEDS", "18").replace("PLUG", repr(PLUG_V)), timeout=300)
    results = r.doc["_extra"]["results"]
    for res in results:
        assert res["pruned"] == res["full"], res
        assert res["pruned"] and all(res["pruned"].values()), res
    walks = [res["walks"] for res in results]
    assert 1 in walks and 2 in walks, results  # both outcomes were exercised


def test_a_first_walk_that_sees_most_of_the_heap_gives_up_early(scenario):
    # One big container is deferred, but most of the heap sits in medium ones the first walk
    # does expand: it stops early rather than nearly repeat the full walk afterwards.
    scenario.write(
        "app.py",
        "import plug\n"
        "big = [[i] for i in range(20_000)]\n"
        "medium = [[[i] for i in range(5_000)] for _ in range(40)]\n"
        "deep = [[[[[[[plug.handler]]]]]]]\n"
        "big[5].append(deep)\n",
    )
    _, cmp = _run(scenario, "import app")
    assert cmp["walks"] == 2 and cmp["doubt"] == "the first walk saw most of the heap"


def test_a_method_held_outside_its_stale_class_is_reported_through_that_holder(scenario):
    # The old class is one step from the module (app.Widget), its method two; the bound method
    # that really keeps the method alive sits deeper.  The method's entry must show that
    # holder: a path through the class would only repeat the class's own entry.
    scenario.write(
        "plug.py",
        "class Widget:\n    def render(self):\n        return @V@\n".replace("@V@", "1"),
    )
    scenario.write(
        "app.py",
        "import plug\nfrom plug import Widget\nhooks = {'ui': [[[plug.Widget().render]]]}\n",
    )
    r = scenario.run(
        "import reloadscope, rs\nreloadscope.install()\nimport plug, app\n"
        "rs.edit(plug, 'class Widget:\\n    def render(self):\\n        return 2\\n')\n"
        "rs.report()\n"
    )
    entry = r.one("plug", kind="function", qualname="Widget.render")
    assert entry["paths"][0]["text"] == "app.hooks['ui'][0][0][0].__func__"
    r.assert_paths_evaluate()


def test_many_objects_one_step_past_the_deferred_level_need_one_walk(scenario):
    # 40 instances (more than can be proven one by one), the shallowest three deeper than the
    # exact depth: one look at what the big containers hold directly settles the others.
    scenario.write("app.py", BIG + "import plug\nkeep = [[plug.Session(i)] for i in range(40)]\n")
    _, cmp = _run(scenario, "import app")
    assert cmp["walks"] == 1, cmp["doubt"]
    assert sorted(d[0] for d in cmp["pruned"].values() if d) == [3, 4]  # instance, its class


def test_an_object_not_shown_held_directly_by_a_big_container(scenario):
    # The same, but one more instance sits in the big list itself, one step closer.
    scenario.write(
        "app.py",
        BIG + "import plug\nkeep = [[plug.Session(i)] for i in range(40)]\n"
        "junk[7] = plug.Session(99)\n",
    )
    r, cmp = _run(scenario, "import app")
    assert cmp["walks"] == 2
    assert r.one("plug", kind="instance")["paths"][0]["text"] == "app.junk[7]"


REFERRERS_SPY = """
import importlib
graph_mod = importlib.import_module("reloadscope.agent.graph")
calls = []
real = graph_mod.referrers
graph_mod.referrers = lambda objs, drop: calls.append(len(objs)) or real(objs, drop)
"""


def test_sole_holders_need_no_holder_search(scenario):
    # Deep old functions and instances, each held by one list beside big containers: their
    # reference counts prove nothing else holds them, so no gc.get_referrers pass runs.
    scenario.write(
        "app.py",
        BIG + "import plug\n"
        "keep = [[[[[plug.handler]]]], [[[[plug.Session(1)]]]], [[[[plug.Session(2)]]]]]\n",
    )
    r, cmp = _run(scenario, "import app\n" + REFERRERS_SPY)
    assert cmp["walks"] == 1, cmp["doubt"]
    assert r.doc["_extra"]["calls"] == [], r.doc["_extra"]


def test_a_holder_no_count_explains_falls_back_to_the_holder_search(scenario):
    # The old function is also a local of a running frame (no container of the scan, and
    # invisible to gc on 3.11+): the count cannot prove a sole holder, so its holders are
    # searched, and the result still matches the full walk.
    scenario.write("app.py", BIG + "import plug\nkeep = [[[[[plug.handler]]]]]\n")
    r, _ = _run(
        scenario,
        "import app\n" + REFERRERS_SPY,
        last="def hold(h):\n    both()\nhold(app.keep[0][0][0][0][0])\n",
    )
    assert r.doc["_extra"]["calls"], "the holder search should have run"


def test_a_container_bigger_than_a_slice_is_walked_in_slices(scenario):
    # A list of 150,000 items is expanded in slices (``graph.SLICE``); single and shared
    # items must be told apart just as in one piece.
    scenario.write(
        "app.py",
        "import plug\n"
        "huge = [[i] for i in range(150_000)]\n"
        "huge[100_000] = plug.handler\n"
        "shared = [plug.Session(1)]\n"
        "huge[70_000] = shared\n"
        "huge[140_000] = shared\n"
        "del shared\n",
    )
    r, _ = _run(scenario, "import app")
    assert r.one("plug", kind="function", qualname="handler")["paths"][0]["text"] == (
        "app.huge[100000]"
    )
    assert r.one("plug", kind="instance")["paths"][0]["text"] == "app.huge[70000][0]"


def test_a_scan_pauses_automatic_collection_and_restores_it(scenario):
    scenario.write("plug.py", PLUG_V.replace("@V@", "1"))
    r = scenario.run(
        "import gc, reloadscope, rs\nreloadscope.install()\nimport plug\n"
        "seen = []\n"
        "cb = lambda phase, info: seen.append((info['generation'], gc.isenabled()))\n"
        "gc.callbacks.append(cb)\n"
        "reloadscope.scan()\n"  # its gc.collect() runs with automatic collection off
        "gc.callbacks.remove(cb)\n"
        "after_on = gc.isenabled()\n"
        "gc.disable()\n"
        "reloadscope.scan()\n"
        "after_off = gc.isenabled()\n"
        "gc.enable()\n"
        "rs.report(after_on=after_on, after_off=after_off, during=seen)\n"
    )
    extra = r.doc["_extra"]
    assert extra["after_on"] is True and extra["after_off"] is False
    assert False in [on for gen, on in extra["during"] if gen == 2], extra
