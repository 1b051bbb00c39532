"""Holders outside module namespaces: signal handlers, and the scan's own budgets."""

from __future__ import annotations


def test_signal_handler_is_named_as_the_holder(scenario):
    scenario.write("plug.py", "def on_usr1(signum, frame): pass\n")
    r = scenario.run("""
        import signal, reloadscope, rs
        reloadscope.install()
        import plug
        signal.signal(signal.SIGUSR1, plug.on_usr1)
        rs.edit(plug, "def on_usr1(signum, frame): return 1\\n")
        rs.report()
    """)
    entry = r.one("plug", kind="function", qualname="on_usr1")
    (path,) = entry["paths"]
    assert path["root"] == "other"
    assert path["text"] == "signal.getsignal(signal.SIGUSR1)"
    assert "signal handler" in path["hint"]


def test_depth_budget_makes_the_scan_incomplete_and_says_so(scenario):
    scenario.write("plug.py", "def f(): pass\n")
    scenario.write("consumer.py", "import plug\nkeep = [[[plug.f]]]\n")
    r = scenario.run("""
        import reloadscope, rs
        reloadscope.install()
        import plug, consumer
        rs.edit(plug, "def f(): return 1\\n")
        rs.report(reloadscope.scan(max_depth=2).to_json())
    """)
    scan = r.doc["scan"]
    assert scan["complete"] is False
    assert "depth 2" in scan["incomplete"]
    entry = r.one("plug", kind="function", qualname="f")
    assert entry["paths"][0]["root"] == "other"  # found, but its holder was not reached
    assert "search stopped" in entry["paths"][0]["text"]  # not "nothing holds it"
    assert "max_depth" in entry["paths"][0]["hint"]


def test_full_budget_finds_the_deep_holder(scenario):
    scenario.write("plug.py", "def f(): pass\n")
    scenario.write("consumer.py", "import plug\nkeep = [[[plug.f]]]\n")
    r = scenario.run("""
        import reloadscope, rs
        reloadscope.install()
        import plug, consumer
        rs.edit(plug, "def f(): return 1\\n")
        rs.report()
    """)
    assert r.doc["scan"]["complete"] is True
    assert r.texts(r.one("plug", kind="function", qualname="f")) == ["consumer.keep[0][0][0]"]
    r.assert_paths_evaluate()
