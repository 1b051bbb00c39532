"""A reloader that pops a module, imports it again and copies the new values into the OLD
module's dict (reimport-style) leaves old closures running in a dict that now holds current
functions, so it passes for a copy made now (attrs makes such copies).  The old closures are
still found late and recording (issue 21, item 3); a copy made by the same execution is not
judged (test_corpus covers attrs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenario import Scenario, pythons, version_id

V1 = "def make_inner():\n    x = 1\n    def inner():\n        return x + 1\n    return inner\n"
V2 = "def make_inner():\n    x = 2\n    def inner():\n        return x + 2\n    return inner\n"


@pytest.fixture(params=pythons(), ids=version_id)
def scenario(request: pytest.FixtureRequest, tmp_path: Path) -> Scenario:
    return Scenario(tmp_path, request.param)


@pytest.mark.parametrize("recording", [False, True], ids=["late", "recording"])
@pytest.mark.parametrize("copied", [True, False], ids=["copied-back", "plain-reimport"])
def test_old_closures_in_an_overwritten_namespace_are_found(scenario, recording, copied):
    scenario.write("m6.py", V1)
    r = scenario.run(f"""
        import sys, reloadscope, rs
        if {recording}:
            reloadscope.install(listen=False)
        import m6
        inner = m6.make_inner()
        old = sys.modules.pop("m6")
        rs.write("m6.py", {V2!r})
        import m6
        if {copied}:
            vars(old).update({{k: v for k, v in vars(m6).items() if not k.startswith("__")}})
        del old
        rs.report()
    """)
    entry = r.one("m6", kind="function", qualname="make_inner.<locals>.inner")
    assert r.texts(entry) == ["__main__.inner"]
    assert entry["evidence"]["kind"] in ("recorded", "source", "replaced-module")
    r.assert_paths_evaluate()
