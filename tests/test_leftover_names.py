"""A function deleted from the file but still bound under its old name (plain
``importlib.reload`` always leaves it): found late when the module provably ran again, said as
a blind spot when nothing shows it did, never a false positive for a def deleted from a file
that never ran again (issue 21, item 1).  Every CPython, late and recording."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenario import Scenario, pythons, version_id

V1 = 'def func():\n    return "v1"\n\ndef removed():\n    return "v1"\n'
V2 = 'def func():\n    return "v2"\n'


@pytest.fixture(params=pythons(), ids=version_id)
def scenario(request: pytest.FixtureRequest, tmp_path: Path) -> Scenario:
    return Scenario(tmp_path, request.param)


def run(scenario: Scenario, *, recording: bool, keep_func: bool, reload: bool = True):
    scenario.write("m3.py", V1)
    return scenario.run(f"""
        import importlib, reloadscope, rs
        if {recording}:
            reloadscope.install(listen=False)
        import m3
        keep = [m3.removed]
        if {keep_func}:
            keep.append(m3.func)
        if {reload}:
            rs.edit(m3, {V2!r})
        else:
            rs.write("m3.py", {V2.replace("v2", "v1")!r})
        rs.report()
    """)


def stale_in(r, module: str) -> list[dict]:
    """The module's stale entries; none when the report does not list the module at all."""
    return r.stale(module) if module in [m["name"] for m in r.doc["modules"]] else []


@pytest.mark.parametrize("recording", [False, True], ids=["late", "recording"])
def test_a_deleted_function_is_found_when_the_module_provably_ran_again(scenario, recording):
    r = run(scenario, recording=recording, keep_func=True)
    entry = r.one("m3", kind="function", qualname="removed")
    assert sorted(r.texts(entry)) == ["__main__.keep[0]", "m3.removed"]
    assert entry["evidence"]["kind"] == ("recorded" if recording else "leftover-name")
    assert r.module("m3")["leftover_names"] == ["removed"]
    r.one("m3", kind="function", qualname="func")  # the old one, kept in keep[1]
    r.assert_paths_evaluate()


def test_a_deleted_function_with_nothing_else_old_is_a_blind_spot_late(scenario):
    # The same namespace and file result from deleting a def that never ran again: without
    # another old object of the module, a late scan cannot tell which, and says so.
    r = run(scenario, recording=False, keep_func=False)
    assert stale_in(r, "m3") == []
    spots = [s for s in r.doc["scan"].get("blind_spots", []) if s.startswith("m3:")]
    assert len(spots) == 1 and "(removed)" in spots[0], r.doc["scan"].get("blind_spots")


def test_recording_finds_it_alone(scenario):
    r = run(scenario, recording=True, keep_func=False)
    entry = r.one("m3", kind="function", qualname="removed")
    assert entry["generation"] == 0
    r.assert_paths_evaluate()


def test_a_def_deleted_from_a_file_that_never_ran_again_is_not_stale(scenario):
    # The file lost 'removed' (and nothing else changed) but was never reloaded: 'removed' is
    # the current execution's function.
    r = run(scenario, recording=False, keep_func=True, reload=False)
    assert stale_in(r, "m3") == []
