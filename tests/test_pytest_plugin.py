"""The pytest plugin (``pytest --reloadscope``, ``@pytest.mark.no_stale``), run in child pytest
processes on suites that really reload real files: recording is process-global, so it never
starts in this process."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from scenario import SRC, python_versions

pytest_plugins = ["pytester"]

PLUGIN = "reloadscope.integrations.pytest_plugin"
SECTION = "reloadscope: stale objects left by tests"
ROOT = Path(SRC).parent

PLUG = """
class K:
    pass

def greet():
    return "v1"
"""

HELPERS = '''
import importlib, os, time

_bump = [0]

def rewrite(module, version):
    """Rewrite the module's file (a later mtime each time: no stale byte code) and reload it."""
    with open(module.__file__, "w") as fh:
        fh.write(f"class K:\\n    pass\\n\\ndef greet():\\n    return {version!r}\\n")
    _bump[0] += 10
    t = time.time() + _bump[0]
    os.utime(module.__file__, (t, t))
    importlib.invalidate_caches()
    return importlib.reload(module)
'''

SUITE = """
import pytest
import helpers, holder, plug

def test_clean():
    assert plug.greet() == "v1"

def test_leaks():
    holder.KEEP.append(plug.greet)  # gen 0's greet, held across the reload
    helpers.rewrite(plug, "v2")

def test_reload_clean():
    helpers.rewrite(plug, "v3")  # gen 1 left nothing held; gen 0's greet was stale already

def test_no_reload_after_a_leak():
    assert plug.greet() == "v3"

def test_leaks_an_instance():
    holder.KEEP.append(plug.K())
    helpers.rewrite(plug, "v4")

def test_one_more_old_instance():
    holder.KEEP.append(type(holder.KEEP[-1])())  # old code makes one more old instance
    helpers.rewrite(plug, "v5")
"""

MARKED = """
import pytest
import helpers, holder, plug

@pytest.mark.no_stale
def test_marked_leak():
    holder.KEEP.append(plug.greet)
    helpers.rewrite(plug, "v2")

@pytest.mark.no_stale
def test_marked_clean():
    helpers.rewrite(plug, "v3")
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester directory with the module ``plug`` to reload, ``holder`` to keep old objects
    and ``helpers.rewrite``; its pytest loads this plugin by ``-p`` and nothing else."""
    monkeypatch.setenv("PYTHONPATH", SRC)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    pytester.makepyfile(plug=PLUG, holder="KEEP = []\n", helpers=HELPERS)
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", PLUGIN, "-p", "no:cacheprovider", *args)


def section(result: pytest.RunResult) -> list[str]:
    """The lines of the plugin's summary section."""
    return section_of(result.outlines)


def section_of(lines: list[str]) -> list[str]:
    starts = [i for i, line in enumerate(lines) if SECTION in line]
    assert len(starts) == 1, "\n".join(lines)
    rest = lines[starts[0] + 1 :]
    end = next((i for i, line in enumerate(rest) if line.startswith("====")), len(rest))
    return rest[:end]


def listed(lines: list[str]) -> list[str]:
    """The node ids the section lists."""
    return [line.split(": ")[0] for line in lines if "::" in line and not line.startswith(" ")]


LEFT_BEHIND = """
import sys, threading
import pytest

@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):  # after the plugin's own: what of reloadscope is left
    with open("left-behind.txt", "w") as fh:
        fh.write(repr(sorted(
            [type(f).__module__ for f in sys.meta_path if "reloadscope" in type(f).__module__]
            + [t.name for t in threading.enumerate() if t is not threading.main_thread()]
        )))
"""


def test_lists_what_each_test_left_stale_under_its_node_id_with_paths(suite):
    suite.makepyfile(test_suite=SUITE)
    suite.makeconftest(LEFT_BEHIND)
    result = run(suite, "--reloadscope")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=6)
    lines = section(result)
    text = "\n".join(lines)
    # Only tests during which a reload left new stale objects; not the clean reload (gen 0's
    # greet was stale before it), nor tests without a reload.
    assert listed(lines) == [
        "test_suite.py::test_leaks",
        "test_suite.py::test_leaks_an_instance",
        "test_suite.py::test_one_more_old_instance",
    ], text
    leaks = lines.index("test_suite.py::test_leaks: 1 stale object")
    assert lines[leaks + 1].split()[:4] == ["function", "plug.greet", "(gen", "0,"]
    assert lines[leaks + 2].strip() == "held by holder.KEEP[0]"
    assert lines[leaks + 3].strip().startswith("fix: ")
    instance = lines.index("test_suite.py::test_leaks_an_instance: 2 stale objects")
    block = lines[
        instance + 1 : lines.index("test_suite.py::test_one_more_old_instance: 1 stale object")
    ]
    assert any(line.split()[:2] == ["instance", "plug.K"] for line in block), block
    assert any(line.split()[:2] == ["class", "plug.K"] for line in block), block
    assert "held by holder.KEEP[1]" in "\n".join(block)
    # The second old instance, made by old code in a later test: only it is that test's.
    more = lines[lines.index("test_suite.py::test_one_more_old_instance: 1 stale object") + 1]
    assert more.split()[:2] == ["instance", "plug.K"] and "1 more, 2 now stale" in more, more
    # Its sample path may reach the instance that was stale before: it says so.
    held = lines[lines.index(more) + 1].strip()
    assert held == "held by holder.KEEP[2]" or held == (
        "held by holder.KEEP[1]  (one stale before this test)"
    ), held
    assert lines[-1].startswith("3 tests left stale objects (4 scans after tests"), lines[-1]
    assert (suite.path / "left-behind.txt").read_text() == "[]"  # uninstall() ran


def test_no_scan_and_nothing_listed_when_no_module_ran_again(suite):
    suite.makepyfile(test_calm="import plug\n\ndef test_a():\n    assert plug.greet()\n")
    result = run(suite, "--reloadscope")
    assert result.ret == 0
    lines = section(result)
    assert listed(lines) == []
    assert lines[-1].startswith("no test left stale objects (0 scans after tests"), lines


def test_fail_on_stale_fails_the_session_and_names_the_tests(suite):
    suite.makepyfile(test_suite=SUITE)
    result = run(suite, "--reloadscope-fail-on-stale", "-k", "clean or test_leaks and not instance")
    result.assert_outcomes(passed=3, deselected=3)  # every test passed ...
    assert result.ret == 1  # ... and the session failed
    lines = section(result)
    assert listed(lines) == ["test_suite.py::test_leaks"]
    assert "held by holder.KEEP[0]" in "\n".join(lines)
    assert "the session fails (--reloadscope-fail-on-stale)" in lines[-1]
    # Reloads that leave nothing stale do not fail it.
    suite.makepyfile(plug=PLUG)  # as it was before the first run rewrote it
    result = run(suite, "--reloadscope-fail-on-stale", "-k", "clean")
    result.assert_outcomes(passed=2, deselected=4)
    assert result.ret == 0, result.stdout.str()


def test_no_stale_fails_the_test_without_any_option(suite):
    suite.makepyfile(test_marked=MARKED)
    result = run(suite, "-rf")
    result.assert_outcomes(failed=1, passed=1)  # a failure, not an error at teardown
    assert result.ret == 1
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*_ test_marked_leak _*",
            "reloadscope: marked no_stale, this test left 1 stale object (found after its "
            "teardown):",
            "  function   plug.greet  (gen 0, * B)",
            "      held by holder.KEEP[0]",
            "FAILED test_marked.py::test_marked_leak - reloadscope: marked no_stale*",
        ]
    )
    assert "test_marked_clean" not in out.split("short test summary")[-1]
    assert SECTION not in out  # the listing is --reloadscope's


def test_no_stale_with_reloadscope_fails_and_lists(suite):
    suite.makepyfile(test_marked=MARKED)
    result = run(suite, "--reloadscope")
    result.assert_outcomes(failed=1, passed=1)
    assert listed(section(result)) == ["test_marked.py::test_marked_leak"]


@pytest.mark.parametrize("xdist", [[], ["-p", "xdist", "-n", "2"]], ids=["alone", "xdist"])
def test_off_by_default_records_nothing(suite, xdist):
    if xdist:
        pytest.importorskip("xdist")
    suite.makepyfile(
        test_off=f"""
        import sys
        import helpers, holder, plug

        def test_reload():
            holder.KEEP.append(plug.greet)
            helpers.rewrite(plug, "v2")

        def test_nothing_of_reloadscope_runs(request):
            assert request.config.pluginmanager.has_plugin({PLUGIN!r})  # loaded, inactive
            loaded = sorted(m for m in sys.modules if m.startswith("reloadscope"))
            assert loaded == ["reloadscope", "reloadscope.integrations", {PLUGIN!r}], loaded
            assert not [f for f in sys.meta_path if "reloadscope" in type(f).__module__]
        """
    )
    result = run(suite, "-p", "pytester", "--markers")
    assert (
        "@pytest.mark.no_stale: fail this test when it leaves stale objects" in result.stdout.str()
    )
    result = run(suite, *xdist)  # under xdist: in the controller and in each worker
    result.assert_outcomes(passed=2)
    assert "reloadscope" not in result.stdout.str()


def test_help_teaches_the_options(suite):
    out = run(suite, "--help").stdout.str()
    assert "--reloadscope " in out and "--reloadscope-fail-on-stale" in out
    assert "under the test's node id" in " ".join(out.split())
    ini = out.split("[pytest] ini-options")[1]
    assert "reloadscope (bool):" in ini and "reloadscope_fail_on_stale (bool):" in ini


def test_active_plugin_does_not_import_xdist(suite):
    suite.makepyfile(test_x="import sys\n\ndef test_x():\n    assert 'xdist' not in sys.modules\n")
    result = run(suite, "--reloadscope-fail-on-stale")
    result.assert_outcomes(passed=1)
    assert result.ret == 0


# pytest-xdist: two files, each with a test that leaves an old function held (its own module
# and holder, so that what each test leaves is the same whichever worker runs it).
XDIST_FILE = """
import helpers, holder_{x}, plug_{x}

def test_clean_{n}():
    assert plug_{x}.greet()

def test_leaks_{n}():
    holder_{x}.KEEP.append(plug_{x}.greet)
    helpers.rewrite(plug_{x}, "v2")
"""
LEAKS = ["test_one.py::test_leaks_one", "test_two.py::test_leaks_two"]
XDIST = ["-p", "xdist", "-n", "2"]


def two_files(pytester: pytest.Pytester) -> None:
    """The suite (again: a run rewrites the modules it reloads)."""
    pytester.makepyfile(plug_a=PLUG, plug_b=PLUG, holder_a="KEEP = []\n", holder_b="KEEP = []\n")
    pytester.makepyfile(
        test_one=XDIST_FILE.format(x="a", n="one"), test_two=XDIST_FILE.format(x="b", n="two")
    )


def verdict(lines: list[str]) -> tuple[str, str]:
    """The last line of the section: (the verdict, what it says of the scans)."""
    head, _, scans = lines[-1].rpartition(" (")
    return head, scans


@pytest.mark.parametrize("dist", ["load", "loadfile"])
def test_xdist_workers_findings_make_the_controllers_summary_and_exit_status(suite, dist):
    pytest.importorskip("xdist")
    two_files(suite)
    alone = run(suite, "-p", "xdist", "--reloadscope-fail-on-stale")  # xdist loaded, no -n
    assert alone.ret == 1, alone.stdout.str()
    expected = section(alone)
    assert listed(expected) == LEAKS, "\n".join(expected)

    two_files(suite)
    result = run(suite, *XDIST, "--dist", dist, "--reloadscope-fail-on-stale")
    out = result.stdout.str()
    assert "2 workers [4 items]" in out, out
    result.assert_outcomes(passed=4)
    assert result.ret == 1, out  # every test passed; two left stale objects
    lines = section(result)
    assert lines[:-1] == expected[:-1], out  # the same tests, lines and order as without xdist
    text = "\n".join(lines)
    assert "held by holder_a.KEEP[0]" in text and "held by holder_b.KEEP[0]" in text
    assert (
        verdict(lines)[0]
        == verdict(expected)[0]
        == ("2 tests left stale objects; the session fails (--reloadscope-fail-on-stale)")
    )
    # The workers' scans, summed; the controller scanned nothing of its own.
    assert verdict(lines)[1].startswith(
        "2 scans after tests during which a module ran again, and one before the first test "
        "in each of 2 workers; "
    ), lines[-1]

    two_files(suite)
    result = run(suite, *XDIST, "--dist", dist, "--reloadscope")
    result.assert_outcomes(passed=4)
    assert result.ret == 0, result.stdout.str()  # listed, the exit status unchanged
    lines = section(result)
    assert lines[:-1] == expected[:-1], result.stdout.str()
    assert verdict(lines)[0] == "2 tests left stale objects"


def test_xdist_clean_suite_is_clean_after_the_workers_scans(suite):
    pytest.importorskip("xdist")
    suite.makepyfile(
        test_clean="""
        import helpers, plug

        def test_plain():
            assert plug.greet()

        def test_reload_holding_nothing():
            helpers.rewrite(plug, "v2")
        """
    )
    result = run(suite, *XDIST, "--reloadscope-fail-on-stale")
    result.assert_outcomes(passed=2)
    assert result.ret == 0, result.stdout.str()
    lines = section(result)
    assert listed(lines) == []
    assert lines[-1].startswith(
        "no test left stale objects (1 scan after tests during which a module ran again, and "
        "one before the first test in each of 2 workers; "
    ), lines


@pytest.mark.parametrize("xdist", [[], XDIST], ids=["alone", "xdist"])
def test_ini_options_do_what_the_flags_do(suite, xdist):
    if xdist:
        pytest.importorskip("xdist")
    two_files(suite)
    suite.makeini("[pytest]\nreloadscope = true\n")
    result = run(suite, *xdist)
    result.assert_outcomes(passed=4)
    assert result.ret == 0, result.stdout.str()
    lines = section(result)
    assert listed(lines) == LEAKS
    assert verdict(lines)[0] == "2 tests left stale objects"

    two_files(suite)
    (suite.path / "tox.ini").unlink()
    suite.makepyprojecttoml("[tool.pytest.ini_options]\nreloadscope_fail_on_stale = true\n")
    result = run(suite, *xdist)
    result.assert_outcomes(passed=4)
    assert result.ret == 1, result.stdout.str()
    lines = section(result)
    assert listed(lines) == LEAKS
    assert "held by holder_b.KEEP[0]" in "\n".join(lines)
    assert verdict(lines)[0].endswith("; the session fails (--reloadscope-fail-on-stale)")

    two_files(suite)  # false is off: nothing of reloadscope runs
    suite.makepyprojecttoml(
        "[tool.pytest.ini_options]\nreloadscope = false\nreloadscope_fail_on_stale = false\n"
    )
    result = run(suite, *xdist)
    result.assert_outcomes(passed=4)
    assert result.ret == 0 and "reloadscope" not in result.stdout.str()


def _this_checkout_installed() -> bool:
    from importlib import metadata

    try:
        direct = metadata.distribution("reloadscope").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return False
    url = json.loads(direct or "{}").get("url", "")
    return url.startswith("file://") and Path(url[len("file://") :]).resolve() == ROOT.resolve()


@pytest.mark.skipif(
    not _this_checkout_installed(),
    reason="reloadscope is not installed from this checkout (CI installs it: pip install -e .)",
)
def test_entry_point_loads_the_plugin_without_p(suite, monkeypatch):
    from importlib import metadata

    eps = metadata.entry_points(group="pytest11")
    assert [ep.value for ep in eps if ep.name == "reloadscope"] == [PLUGIN]
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    suite.makepyfile(test_suite=SUITE)
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "--reloadscope", "-k", "leaks")
    assert result.ret == 0
    assert "test_suite.py::test_leaks" in listed(section(result))


def test_recorder_counts_reloads_not_first_imports(scenario):
    scenario.write("plug.py", "def f():\n    return 1\n")
    scenario.write("early.py", "X = 1\n")
    scenario.write("fresh.py", "Y = 1\n")
    r = scenario.run("""
        import importlib, importlib.util, sys, rs
        import early  # before recording: its re-import is a re-run too
        import reloadscope
        from reloadscope import agent
        reloadscope.install(listen=False)
        rec = agent.recorder()
        counts = [rec.reloads]
        import plug, fresh, json, email.mime.text  # first imports
        counts.append(rec.reloads)
        importlib.reload(plug)
        counts.append(rec.reloads)
        rs.write("plug.py", "raise ValueError('half')\\n")
        try:
            importlib.reload(plug)
        except ValueError:
            pass
        counts.append(rec.reloads)  # a reload that raises ran the module again too
        del sys.modules["plug"]
        rs.write("plug.py", "def f():\\n    return 2\\n")
        import plug
        counts.append(rec.reloads)
        del sys.modules["early"]
        import early
        counts.append(rec.reloads)
        del sys.modules["fresh"]  # as discord.py reloads an extension
        spec = importlib.util.find_spec("fresh")
        m = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(m)
        counts.append(rec.reloads)
        import plug, early  # already there: nothing runs
        counts.append(rec.reloads)
        rs.report(counts=counts)
    """)
    assert r.extra["counts"] == [0, 0, 1, 2, 3, 4, 5, 5]


def _pytest_pythons() -> dict[str, str]:
    """ "3.X" -> an interpreter of that CPython that has pytest: its venv with the test extras
    (``.ci/run`` makes them), else the interpreter itself."""
    venvs = Path(os.environ.get("RELOADSCOPE_VENVS") or Path.home() / ".cache/reloadscope/venvs")
    found = {}
    for version, exe in python_versions().items():
        venv = venvs / version / "bin" / "python"
        found[version] = str(venv) if venv.exists() else exe
    return found


FAIL_TWO = ["--reloadscope-fail-on-stale", "test_one.py", "test_two.py"]
TESTS = ["test_suite.py::test_clean", "test_suite.py::test_leaks", "test_marked.py"]


@pytest.mark.parametrize("version", list(_pytest_pythons()))
def test_plugin_on_every_cpython(version, tmp_path):
    python = _pytest_pythons()[version]
    if subprocess.run([python, "-c", "import pytest"], capture_output=True).returncode:
        pytest.skip(f"no pytest for CPython {version} ({python})")
    (tmp_path / "plug.py").write_text(textwrap.dedent(PLUG))
    (tmp_path / "holder.py").write_text("KEEP = []\n")
    (tmp_path / "helpers.py").write_text(textwrap.dedent(HELPERS))
    (tmp_path / "test_suite.py").write_text(textwrap.dedent(SUITE))
    (tmp_path / "test_marked.py").write_text(textwrap.dedent(MARKED))
    env = dict(os.environ, PYTHONPATH=SRC, PYTHONDONTWRITEBYTECODE="1")
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env.pop("PYTEST_ADDOPTS", None)
    p = subprocess.run(
        [python, "-m", "pytest", "-p", PLUGIN, "-p", "no:cacheprovider", "--reloadscope", *TESTS],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = p.stdout
    assert p.returncode == 1, out + p.stderr  # the marked leak failed
    assert f"Python {version}" in out
    assert "1 failed, 3 passed" in out, out
    assert "held by holder.KEEP[0]" in out
    listed_ids = listed(section_of(out.splitlines()))
    assert listed_ids == ["test_suite.py::test_leaks", "test_marked.py::test_marked_leak"], out
    if subprocess.run([python, "-c", "import xdist"], capture_output=True).returncode:
        return  # the venvs of .ci/run have it (the test extra)
    for name, text in [("plug_a", PLUG), ("plug_b", PLUG), ("holder_a", ""), ("holder_b", "")]:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(text) or "KEEP = []\n")
    (tmp_path / "test_one.py").write_text(textwrap.dedent(XDIST_FILE.format(x="a", n="one")))
    (tmp_path / "test_two.py").write_text(textwrap.dedent(XDIST_FILE.format(x="b", n="two")))
    p = subprocess.run(
        [python, "-m", "pytest", "-p", PLUGIN, "-p", "no:cacheprovider", *XDIST, *FAIL_TWO],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = p.stdout
    assert p.returncode == 1, out + p.stderr  # all passed; two left stale objects
    assert "4 passed" in out and "2 workers [4 items]" in out, out
    assert listed(section_of(out.splitlines())) == LEAKS, out
