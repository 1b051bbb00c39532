"""A function that a running threading.Thread got as its target: assigning the new function
to the thread's ``_target`` changes nothing for it, so the hint says to restart the thread
(issue 22, item 4), for a plain function and for a bound method, on every CPython."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenario import Scenario, pythons, version_id

V1 = (
    "import time\n"
    "def work(stop):\n    while not stop.is_set():\n        time.sleep(0.01)\n"
    "class W:\n    def run(self, stop):\n        while not stop.is_set():\n"
    "            time.sleep(0.01)\n"
)


@pytest.fixture(params=pythons(), ids=version_id)
def scenario(request: pytest.FixtureRequest, tmp_path: Path) -> Scenario:
    return Scenario(tmp_path, request.param)


def test_a_running_threads_target_says_restart(scenario):
    scenario.write("wk.py", V1)
    r = scenario.run(f"""
        import threading, reloadscope, rs
        reloadscope.install(listen=False)
        import wk
        stop = threading.Event()
        t = threading.Thread(target=wk.work, args=(stop,))
        t.start()
        t2 = threading.Thread(target=wk.W().run, args=(stop,))
        t2.start()
        rs.edit(wk, {V1.replace("0.01", "0.02")!r})
        try:
            rs.report()
        finally:
            stop.set()
    """)
    work = r.one("wk", kind="function", qualname="work")
    run = r.one("wk", kind="function", qualname="W.run")
    for entry, text in ((work, "__main__.t._target"), (run, "__main__.t2._target.__func__")):
        (path,) = [p for p in entry["paths"] if p["text"] == text]
        assert "restart the thread" in path["hint"], path["hint"]
        assert "assign the new one" not in path["hint"] and "bind it again" not in path["hint"]
