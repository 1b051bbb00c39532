"""Snapshot files: round trip, post-mortem capture in real processes, and bad input."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reloadscope
from reloadscope import SnapshotError
from scenario import SRC

FIXTURE = Path(__file__).parent / "fixtures" / "snapshot-v1.rsnap"

PLUG_V1 = "def greet():\n    return 'hello'\n\nclass Widget:\n    pass\n"
PLUG_V2 = "def greet():\n    return 'hi'\n\nclass Widget:\n    pass\n"
CHILD = """
    import reloadscope, rs
    reloadscope.install()
    import plug, consumer
    rs.edit(plug, {v2!r})
"""


def _files(scenario):
    scenario.write("plug.py", PLUG_V1)
    scenario.write("consumer.py", "from plug import greet, Widget\nw = Widget()\n")


def test_round_trip_gives_the_same_document_and_sources(scenario, tmp_path):
    _files(scenario)
    out = tmp_path / "snap.rsnap"
    r = scenario.run(
        CHILD.format(v2=PLUG_V2)
        + f"""
    from reloadscope.snapshot import write
    report = reloadscope.scan()
    write(report, {str(out)!r})
    rs.report(report.to_json(), sources={{k: dict(v) for k, v in report.sources.items()}})
    """
    )
    loaded = reloadscope.load(out)
    expected = {k: v for k, v in r.doc.items() if not k.startswith("_")}
    assert loaded.to_json() == expected
    assert loaded.sources["plug"] == {0: PLUG_V1, 1: PLUG_V2}
    assert loaded.facts["executable"]
    assert loaded.module("plug").stale_count == 3  # greet, Widget and its instance


def test_snapshot_default_name_and_report_command(scenario):
    _files(scenario)
    r = scenario.run(
        CHILD.format(v2=PLUG_V2)
        + """
    p = reloadscope.snapshot()
    print(p)
    rs.report()
    """
    )
    path = Path(r.stdout.split("@@RS-JSON@@")[0].strip().splitlines()[-1])
    assert path.parent == scenario.root
    assert path.name.startswith("reloadscope-") and path.suffix == ".rsnap"
    text = _cli("report", str(path))
    assert text.returncode == 0
    assert "consumer.greet" in text.stdout and "fix:" in text.stdout
    as_json = _cli("report", str(path), "--json")
    assert json.loads(as_json.stdout)["format"] == "reloadscope-report"
    assert _cli("report", str(path), "--fail-on-stale").returncode == 1


def _postmortem(scenario, tail: str, env: dict[str, str] | None = None, kwarg: str = ""):
    _files(scenario)
    script = (
        "import reloadscope, rs\n"
        f"reloadscope.install({kwarg})\n"
        "import plug, consumer\n"
        f"rs.edit(plug, {PLUG_V2!r})\n" + tail
    )
    e = dict(os.environ, PYTHONPATH=os.pathsep.join([SRC, str(scenario.root)]))
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=scenario.root,
        env=e,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_postmortem_on_normal_exit_via_environment(scenario, tmp_path):
    out = tmp_path / "pm.rsnap"
    p = _postmortem(scenario, "print('done')\n", env={"RELOADSCOPE_SNAPSHOT_ON_EXIT": str(out)})
    assert p.returncode == 0, p.stderr
    assert f"post-mortem snapshot written to {out}" in p.stderr
    report = reloadscope.load(out)
    assert report.exit == {"how": "normal"}
    assert report.module("plug").stale_count == 3


def test_postmortem_on_unhandled_exception_says_how_it_died(scenario, tmp_path):
    out = tmp_path / "crash.rsnap"
    p = _postmortem(
        scenario, "raise RuntimeError('kaboom')\n", kwarg=f"snapshot_on_exit={str(out)!r}"
    )
    assert p.returncode == 1
    assert "RuntimeError: kaboom" in p.stderr  # the normal traceback still printed
    report = reloadscope.load(out)
    assert report.exit["how"] == "exception"
    assert report.exit["exception"] == "RuntimeError: kaboom"
    assert report.exit["traceback"][0].startswith("Traceback (most recent call last)")
    assert report.exit["traceback"][-1] == "RuntimeError: kaboom"
    assert report.module("plug").stale_count == 3


def test_uninstall_disarms_the_postmortem(scenario, tmp_path):
    out = tmp_path / "none.rsnap"
    p = _postmortem(
        scenario,
        "reloadscope.uninstall()\nimport sys; assert sys.excepthook is sys.__excepthook__\n",
        kwarg=f"snapshot_on_exit={str(out)!r}",
    )
    assert p.returncode == 0, p.stderr
    assert not out.exists()


def test_fixture_of_format_version_1_loads():
    report = reloadscope.load(FIXTURE)
    assert report.module("demo_greeter").current_generation == 1
    assert report.sources["demo_greeter"][0].lstrip().startswith('"""A plugin')
    names = {s.qualname for s in report.module("demo_greeter").stale}
    assert {"greet", "Greeter", "shout"} <= names


def _valid_bytes() -> bytes:
    return FIXTURE.read_bytes()


def _valid_doc() -> dict:
    return json.loads(gzip.decompress(_valid_bytes()))


def _gz(doc: object) -> bytes:
    return gzip.compress(json.dumps(doc).encode())


BAD = {
    "empty": (b"", "is empty"),
    "random": (bytes(range(256)) * 4, "binary data"),
    "text": (b"hello world\n", "plain text"),
    "json-wrong-shape": (b'{"format": "something-else"}', "format is 'something-else'"),
    "json-list": (b"[1, 2, 3]", "not a reloadscope snapshot"),
    "pickle": (pickle.dumps({"report": 1}), "pickle"),
    "truncated": (None, "truncated"),
    "newer": (None, "version 99 is newer than this reloadscope reads (version 1)"),
    "bad-field": (None, "report.modules[0].stale[0].count: expected int"),
    "not-json-in-gzip": (gzip.compress(b"\x00\x01 nope"), "not UTF-8 JSON"),
    "bad-json-in-gzip": (gzip.compress(b"{nope"), "invalid JSON"),
}


def _bad_bytes(name: str) -> bytes:
    data, _ = BAD[name]
    if data is not None:
        return data
    if name == "truncated":
        return _valid_bytes()[:200]
    doc = _valid_doc()
    if name == "newer":
        doc["version"] = 99
    else:
        doc["report"]["modules"][0]["stale"][0]["count"] = "many"
    return _gz(doc)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reloadscope", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=SRC),
        timeout=60,
    )


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_file_is_a_clear_error(tmp_path, name):
    path = tmp_path / f"{name}.rsnap"
    path.write_bytes(_bad_bytes(name))
    with pytest.raises(SnapshotError, match=re.escape(BAD[name][1])):
        reloadscope.load(path)
    p = _cli("report", str(path))
    assert p.returncode == 2
    assert p.stderr.startswith("reloadscope: error: ") and len(p.stderr.splitlines()) == 1
    assert "Traceback" not in p.stderr
    assert p.stdout == ""


@pytest.mark.parametrize("kind", ["missing", "directory", "unreadable"])
def test_unusable_paths_are_clear_errors(tmp_path, kind):
    path = tmp_path / "x.rsnap"
    if kind == "directory":
        path.mkdir()
    elif kind == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads any file")
        path.write_bytes(_valid_bytes())
        path.chmod(0)
    with pytest.raises(SnapshotError):
        reloadscope.load(path)
    p = _cli("report", str(path))
    assert p.returncode == 2 and p.stderr.startswith("reloadscope: error: ")


def test_snapshot_error_is_a_value_error():
    assert issubclass(SnapshotError, ValueError)


def _load_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.rsnap"
    path.write_bytes(data)
    try:
        result = reloadscope.load(path)
    except SnapshotError:
        return
    assert isinstance(result, reloadscope.Report)


FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes(tmp_path, data):
    _load_bytes(tmp_path, data)


@FUZZ
@given(st.data())
def test_fuzz_mutated_valid_files(tmp_path, data):
    raw = json.dumps(_valid_doc()).encode()
    n = data.draw(st.integers(1, 8))
    buf = bytearray(raw)
    for _ in range(n):
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] = data.draw(st.integers(0, 255))
    compressed = data.draw(st.booleans())
    _load_bytes(tmp_path, gzip.compress(bytes(buf)) if compressed else bytes(buf))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@FUZZ
@given(st.data())
def test_fuzz_fields_replaced_with_random_json(tmp_path, data):
    doc = _valid_doc()
    node = doc
    # Walk down a random branch and replace one value with random JSON.
    for _ in range(data.draw(st.integers(1, 6))):
        if isinstance(node, dict) and node:
            key = data.draw(st.sampled_from(sorted(node)))
            if not isinstance(node[key], (dict, list)) or data.draw(st.booleans()):
                node[key] = data.draw(json_values)
                break
            node = node[key]
        elif isinstance(node, list) and node:
            i = data.draw(st.integers(0, len(node) - 1))
            if not isinstance(node[i], (dict, list)) or data.draw(st.booleans()):
                node[i] = data.draw(json_values)
                break
            node = node[i]
        else:
            break
    _load_bytes(tmp_path, _gz(doc))
