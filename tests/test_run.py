"""``reloadscope run`` is a faithful wrapper: the program sees what ``python`` would give it
(arguments, ``sys.argv[0]``, ``sys.path[0]``, its own traceback, its exit status), also when
``--python`` runs it with another interpreter that has no reloadscope."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scenario import RELOADED_PLUG, SRC, python_versions

SHOW = "import sys, json; print(json.dumps([sys.argv, sys.path[0], __name__]))\n"
FAIL = "def inner():\n    return 1 / 0\n\ninner()\n"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "LC_"))}
    return dict(env, PYTHONPATH=SRC)


def _sh(cwd: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env=env or _env(),
        timeout=60,
    )


def _rs(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return _sh(cwd, sys.executable, "-m", "reloadscope", "run", *args)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "show.py").write_text(SHOW)
    (tmp_path / "fail.py").write_text(FAIL)
    (tmp_path / "failmod.py").write_text(FAIL)
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "target.py").write_text(SHOW)
    (tmp_path / "link.py").symlink_to(tmp_path / "real" / "target.py")
    return tmp_path


# With PYTHONPATH set for reloadscope, python's sys.path[0] is still the program's own entry.
@pytest.mark.parametrize(
    "program",
    [
        ["show.py", "a", "--b", "-m", "x"],
        ["link.py", "--help"],  # a symlinked script: python puts the real file's directory first
        ["-c", SHOW, "x", "--", "-c"],
        ["-m", "show", "--flag", "--"],
    ],
    ids=["script", "symlink", "c", "m"],
)
def test_the_program_sees_what_python_gives_it(project, program):
    mine = _rs(project, *program)
    theirs = _sh(project, sys.executable, *program)
    assert mine.returncode == theirs.returncode == 0, mine.stderr
    assert json.loads(mine.stdout) == json.loads(theirs.stdout)


def test_a_double_dash_ends_runs_own_options_and_is_not_passed_on(project):
    p = _rs(project, "--", "show.py", "a")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)[0] == ["show.py", "a"]


@pytest.mark.parametrize(
    "program", [["fail.py", "x"], ["-c", FAIL], ["-m", "failmod"]], ids=["script", "c", "m"]
)
def test_the_programs_traceback_is_its_own(project, program):
    p = _rs(project, *program)
    assert p.returncode == 1
    assert p.stdout == ""
    assert "ZeroDivisionError: division by zero" in p.stderr
    assert "reloadscope" not in p.stderr and "runpy" not in p.stderr, p.stderr
    frames = [ln.strip() for ln in p.stderr.splitlines() if ln.strip().startswith("File ")]
    assert len(frames) == 2 and frames[-1].endswith("in inner"), p.stderr
    if program[0] != "-m":  # python -m's own traceback shows runpy's frames; ours does not
        assert p.stderr == _sh(project, sys.executable, *program).stderr


def test_the_programs_exit_status_passes_through(project):
    p = _rs(project, "-c", "import sys; sys.exit(7)")
    assert p.returncode == 7 and p.stderr == ""


# -- run --python: another interpreter, without reloadscope -------------------------------------

OTHER = [v for v in python_versions() if v != "{}.{}".format(*sys.version_info[:2])]


def _other_python() -> tuple[str, str]:
    if not OTHER:
        pytest.skip("needs a second CPython")
    version = OTHER[-1]
    return version, python_versions()[version]


RELOADING = (
    RELOADED_PLUG
    + """
fds = []
for n in os.listdir("/proc/self/fd"):
    try:
        fds.append(os.readlink(f"/proc/self/fd/{n}"))
    except OSError:
        pass  # the directory listing's own
print(json.dumps({"pid": os.getpid(), "version": list(sys.version_info[:2]),
                  "has_reloadscope": "reloadscope" in sys.modules, "fds": fds,
                  "argv": sys.argv}), flush=True)
sys.stdin.read()
"""
)


def test_run_python_records_in_another_interpreter_with_the_same_pid(project):
    version, exe = _other_python()
    (project / "app.py").write_text("import json\n" + RELOADING)
    env = {k: v for k, v in _env().items() if k != "PYTHONPATH"}  # the target has none of it
    cli = [
        sys.executable,
        "-c",
        f"import sys; sys.path.insert(0, {SRC!r}); "
        "from reloadscope.cli import main; sys.exit(main())",
    ]
    proc = subprocess.Popen(
        [*cli, "run", "--python", exe, "app.py", "--flag"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=project,
        env=env,
    )
    try:
        assert proc.stdout is not None
        facts = json.loads(proc.stdout.readline())
        assert facts["pid"] == proc.pid  # exec: the program is the process that was started
        assert facts["version"] == [int(x) for x in version.split(".")]
        assert facts["has_reloadscope"] is False
        assert facts["argv"] == ["app.py", "--flag"]
        assert not [fd for fd in facts["fds"] if "memfd" in fd], facts["fds"]
        deadline = time.monotonic() + 30
        while True:
            r = _sh(project, sys.executable, "-m", "reloadscope", "report", str(proc.pid), "--json")
            if r.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        (mod,) = [m for m in doc["modules"] if m["name"] == "plug"]
        (entry,) = mod["stale"]
        assert entry["qualname"] == "f" and entry["generation"] == 0
        assert "__main__.keep" in [p["text"] for p in entry["paths"]]
    finally:
        proc.kill()
        proc.communicate()


def test_run_python_shows_the_programs_traceback_and_status(project):
    _, exe = _other_python()
    p = _rs(project, "--python", exe, "fail.py")
    assert p.returncode == 1
    assert p.stderr == _sh(project, exe, "fail.py").stderr
    p = _rs(project, "--python", exe, "-m", "show", "x")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == json.loads(_sh(project, exe, "-m", "show", "x").stdout)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--python", "/nonexistent/python", "show.py"), "no such interpreter"),
        (("--python", "/bin/true", "show.py"), "not a CPython 3.10 or newer"),
        (("--python", sys.executable, "missing.py"), "no such script: missing.py"),
        (("--python", sys.executable, "-m", "no_such_module"), "no module named no_such_module"),
    ],
)
def test_run_python_refuses_in_one_line(project, args, needle):
    p = _rs(project, *args)
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith("reloadscope: error: ") and len(p.stderr.splitlines()) == 1
    assert needle in p.stderr


ANNOTATED = "def f(x: int): pass\nprint(f.__annotations__)\n"


@pytest.mark.parametrize("how", ["script", "c"])
def test_the_program_is_compiled_with_its_own_future_flags_only(project, how):
    # reloadscope's modules use ``from __future__ import annotations``; the program must not.
    (project / "ann.py").write_text(ANNOTATED)
    program = ["ann.py"] if how == "script" else ["-c", ANNOTATED]
    p = _rs(project, *program)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "{'x': <class 'int'>}"


WAITING = """
import json, os, sys
def handler(event):
    return event
print(json.dumps(os.getpid()), flush=True)
sys.stdin.read()
"""


def _report_of_running(project: Path, argv: list[str]) -> dict:
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=project,
        env=_env(),
    )
    try:
        assert proc.stdout is not None
        pid = json.loads(proc.stdout.readline())
        r = _sh(project, sys.executable, "-m", "reloadscope", "report", str(pid), "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)
    finally:
        proc.kill()
        proc.communicate()


def test_an_unchanged_program_under_run_has_nothing_stale(project):
    # The program's __main__ replaces the launcher's: neither may look like an earlier execution.
    (project / "wait.py").write_text(WAITING)
    doc = _report_of_running(project, [sys.executable, "-m", "reloadscope", "run", "wait.py"])
    assert doc["modules"] == [], doc["modules"]
    _, exe = _other_python()
    doc = _report_of_running(
        project, [sys.executable, "-m", "reloadscope", "run", "--python", exe, "wait.py"]
    )
    assert doc["modules"] == [], doc["modules"]


@pytest.mark.parametrize("version", list(python_versions()))
def test_the_traceback_is_what_each_cpython_prints(project, version):
    # Each CPython prints its own way (3.13+ shows the lines of a -c string, 3.11+ carets).
    exe = python_versions()[version]
    for program in (["fail.py"], ["-c", FAIL]):
        mine = _sh(project, exe, "-m", "reloadscope", "run", *program)
        theirs = _sh(project, exe, *program)
        assert (mine.returncode, mine.stderr) == (theirs.returncode, theirs.stderr), program


@pytest.mark.parametrize("version", list(python_versions()))
def test_a_failed_import_shows_no_reloadscope_frame(project, version):
    # The most common exception of a reload workflow: a SyntaxError in the edited file, and
    # an exception at import time.  Under recording the traceback is python's own, byte for
    # byte (the recorder's frames showed, with importlib's, 13 lines against 6).
    exe = python_versions()[version]
    (project / "broken.py").write_text("def f(:\n    pass\n")
    (project / "raising.py").write_text("x = 1\nraise RuntimeError('at import')\n")
    for module in ("broken", "raising"):
        (project / "imp.py").write_text(f"import {module}\n")
        mine = _sh(project, exe, "-m", "reloadscope", "run", "imp.py")
        theirs = _sh(project, exe, "imp.py")
        assert theirs.returncode == 1 and "Traceback" in theirs.stderr
        assert (mine.returncode, mine.stderr) == (theirs.returncode, theirs.stderr), module
        assert "reloadscope/agent" not in mine.stderr


@pytest.mark.parametrize("version", list(python_versions()))
def test_a_failed_reload_is_a_failed_generation_and_names_no_recorder_frame(project, version):
    exe = python_versions()[version]
    script = (
        "import importlib, json, os, sys, traceback\n"
        "import reloadscope\n"
        "reloadscope.install(listen=False)\n"
        "open('rmod.py', 'w').write('def f():\\n    return 1\\n')\n"
        "import rmod\n"
        "open('rmod.py', 'w').write('def f(:\\n    return 2\\n')\n"
        "t = os.path.getmtime('rmod.py') + 5\n"
        "os.utime('rmod.py', (t, t))\n"
        "try:\n"
        "    importlib.reload(rmod)\n"
        "except SyntaxError:\n"
        "    tb = traceback.format_exc()\n"
        "doc = reloadscope.scan().to_json()\n"
        "(m,) = [m for m in doc['modules'] if m['name'] == 'rmod']\n"
        "print(json.dumps({'tb': tb, 'gens': m['generations']}))\n"
    )
    out = _sh(project, exe, "-c", script)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert "reloadscope/agent" not in got["tb"] and "recorder.py" not in got["tb"]
    assert [(g["number"], g["status"]) for g in got["gens"]] == [(0, "finished"), (1, "failed")]
    assert got["gens"][1]["error"].startswith("SyntaxError: ")
