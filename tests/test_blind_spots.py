"""What a scan cannot see is found another way or said (issue 20): objects hidden by
``gc.freeze()``, subinterpreters, an agent that could not start, an install() agent with an
idle client, free-threaded builds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reloadscope.agent import blindspots, graph, safe
from reloadscope.attach import client as client_mod
from reloadscope.attach import elfinfo
from scenario import SRC, Scenario, pythons, version_id

PYTHONS = pythons()
IDS = [version_id(p) for p in PYTHONS]
SUBINTERPRETER_PYTHONS = [p for p in PYTHONS if int(version_id(p).split(".")[1]) >= 12]
needs_gdb = pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed")

# -- 1. gc.freeze() ----------------------------------------------------------------------------

PLUG = """
class K:
    def m(self):
        return 1

def f():
    return 1
"""

FROZEN = """
import gc, reloadscope, rs
reloadscope.install()
import plug
REG = {"f": plug.f, "k": plug.K(), "m": plug.K().m}
keep = [plug.f]
gc.collect()
if FREEZE:
    gc.freeze()  # as a pre-fork server does: everything above is frozen
rs.edit(plug, PLUG_TEXT)
rs.report(frozen=gc.get_freeze_count())
"""


def _entries(r) -> list[tuple]:
    return sorted(
        (s["kind"], s["qualname"], s["count"], tuple(sorted(r.texts(s)))) for s in r.stale("plug")
    )


@pytest.mark.parametrize("python", PYTHONS, ids=IDS)
def test_stale_objects_frozen_by_gc_freeze_are_found_as_without_it(tmp_path, python):
    runs = {}
    for freeze in (False, True):
        (tmp_path / str(freeze)).mkdir()
        sc = Scenario(tmp_path / str(freeze), python)
        sc.write("plug.py", PLUG)
        script = FROZEN.replace("FREEZE", repr(freeze)).replace("PLUG_TEXT", repr(PLUG))
        runs[freeze] = sc.run(script)
    plain, frozen = runs[False], runs[True]
    assert frozen.extra["frozen"] > 1000  # most of the heap was frozen
    assert plain.extra["frozen"] < 1000  # 3.12 puts its immortal objects there (375)
    assert not [b for b in plain.doc["scan"].get("blind_spots", []) if "gc.freeze()" in b]
    assert _entries(plain), plain.doc
    # The same stale objects, with the same paths, frozen or not.
    assert _entries(frozen) == _entries(plain)
    assert ("function", "f", 1) in {e[:3] for e in _entries(frozen)}
    frozen.assert_paths_evaluate()


FROZEN_GARBAGE = """
import gc, reloadscope, rs
reloadscope.install()
import plug
cycle = [plug.f]
cycle.append(cycle)
gc.collect()
gc.freeze()
del cycle  # garbage now, but frozen: never collected, and nothing refers to it
rs.edit(plug, PLUG_TEXT)
rs.report()
"""


@pytest.mark.parametrize("python", PYTHONS, ids=IDS)
def test_frozen_objects_the_scan_cannot_reach_are_said(tmp_path, python):
    sc = Scenario(tmp_path, python)
    sc.write("plug.py", PLUG)
    r = sc.run(FROZEN_GARBAGE.replace("PLUG_TEXT", repr(PLUG)))
    said = [b for b in r.doc["scan"].get("blind_spots", []) if "gc.freeze()" in b]
    # The old f lives on in a frozen garbage cycle: found, or the blind spot is said.
    found = [s for s in r.stale("plug") if s["qualname"] == "f"] if r.doc["modules"] else []
    assert found or said, r.doc["scan"]
    assert said, r.doc["scan"]  # unreachable frozen objects are there: said either way
    assert " objects frozen by gc.freeze() were not scanned" in said[0]


def test_frozen_sentence():
    assert blindspots.frozen(0, 0) is None
    assert blindspots.frozen(10, 10) is None
    assert blindspots.frozen(10, 12) is None  # objects made meanwhile: nothing missed
    assert blindspots.frozen(375, 0) is None  # 3.12's immortal objects, no gc.freeze()
    text = blindspots.frozen(1200, 1000)
    assert text is not None and text.startswith("200 of the 1,200 objects frozen by gc.freeze()")


# -- 2. subinterpreters ------------------------------------------------------------------------

SUBINTERPRETER = """
import sys, reloadscope, rs
reloadscope.install()
import plug
keep = plug.f
rs.edit(plug, PLUG_TEXT)
before = reloadscope.scan().to_json()["scan"].get("blind_spots", [])
if sys.version_info >= (3, 13):
    import _interpreters as interpreters
else:
    import _xxsubinterpreters as interpreters
sub = interpreters.create()
interpreters.run_string(sub, "import json; kept = [json.dumps]")
doc = reloadscope.scan().to_json()
interpreters.destroy(sub)
rs.report(doc, before=before)
"""


@pytest.mark.parametrize(
    "python", SUBINTERPRETER_PYTHONS, ids=[version_id(p) for p in SUBINTERPRETER_PYTHONS]
)
def test_a_subinterpreter_is_named_as_not_seen(tmp_path, python):
    sc = Scenario(tmp_path, python)
    sc.write("plug.py", PLUG)
    r = sc.run(SUBINTERPRETER.replace("PLUG_TEXT", repr(PLUG)))
    assert not [b for b in r.extra["before"] if "subinterpreter" in b]
    said = [b for b in r.doc["scan"].get("blind_spots", []) if "subinterpreter" in b]
    assert said and said[0].startswith("this process runs a subinterpreter"), r.doc["scan"]
    assert r.one("plug", qualname="f")  # what the main interpreter holds is still found


class _Interpreters:
    def __init__(self, n: int | None) -> None:
        self.n = n

    def list_all(self) -> list[int]:
        if self.n is None:
            raise RuntimeError("gone")
        return list(range(self.n))


def test_subinterpreter_sentence():
    assert blindspots.subinterpreters({}) is None  # none of the modules: nothing asked
    assert blindspots.subinterpreters({"_interpreters": _Interpreters(1)}) is None
    assert blindspots.subinterpreters({"_interpreters": _Interpreters(None)}) is None
    two = blindspots.subinterpreters({"_xxsubinterpreters": _Interpreters(3)})
    assert two is not None and two.startswith("this process runs 2 subinterpreters")
    # Nothing is imported to ask: a plain scan of this process says nothing of them.
    assert "_interpreters" not in sys.modules or blindspots.subinterpreters() is None


# -- 3. an agent that cannot start -------------------------------------------------------------

# The main thread runs Python (no system call for gdb to find it in), so the bootstrap takes
# the pending-call path; "import threading" first, as most programs have it.
LOW_LIMIT_TARGET = r"""
import sys, threading
print("ready", flush=True)
sys.setrecursionlimit(int(sys.argv[1]))
n = 0
while True:
    n += 1
"""


def _env() -> dict[str, str]:
    return dict(
        os.environ, PYTHONPATH=SRC, PYTHONDONTWRITEBYTECODE="1", RELOADSCOPE_AGENT_IDLE_S="5"
    )


def _low_limit_target(tmp_path: Path, python: str, limit: int) -> subprocess.Popen[str]:
    script = tmp_path / "target.py"
    script.write_text(LOW_LIMIT_TARGET)
    p = subprocess.Popen(
        [python, str(script), str(limit)],
        stdout=subprocess.PIPE,
        text=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin")},
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return p


def _report(pid: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reloadscope", "report", str(pid)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=180,
    )


def _stop(p: subprocess.Popen[str]) -> None:
    if p.poll() is None:
        p.kill()
    p.wait()


# The injected bootstrap's own text, run by the target itself under a low recursion limit:
# the agent's half of a start (load, listen, or say why not), without gdb.
SELF_BOOT_TARGET = r"""
import sys, threading, time
boot = open(sys.argv[2]).read()
print("ready", flush=True)
sys.setrecursionlimit(int(sys.argv[1]))
exec(boot, {})
print("booted", flush=True)
while True:
    time.sleep(0.05)
"""


def _self_booted(tmp_path: Path, python: str, limit: int) -> subprocess.Popen[str]:
    from reloadscope.attach import inject

    (tmp_path / "boot.py").write_text(inject.bootstrap())
    script = tmp_path / "target.py"
    script.write_text(SELF_BOOT_TARGET)
    p = subprocess.Popen(
        [python, str(script), str(limit), str(tmp_path / "boot.py")],
        stdout=subprocess.PIPE,
        text=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin")},
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    assert p.stdout.readline().strip() == "booted"
    return p


def _wait_for(cond, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("python", PYTHONS, ids=IDS)
def test_the_agent_loads_and_answers_under_a_recursion_limit_of_50(tmp_path, python):
    p = _self_booted(tmp_path, python, 50)
    try:
        sock = os.path.join(*client_mod.agent_place(p.pid, os.getuid()))
        failed = os.path.join(os.path.dirname(sock), client_mod.failure_name(sock))
        assert _wait_for(lambda: os.path.exists(sock) or os.path.exists(failed))
        why = client_mod.start_failure(p.pid)
        assert why is None, why
        out = _report(p.pid)
        assert out.returncode == 0, out.stderr
        assert f"pid {p.pid}" in out.stdout
    finally:
        _stop(p)


@pytest.mark.parametrize("python", PYTHONS, ids=IDS)
def test_an_agent_that_cannot_load_leaves_its_real_error_for_the_client(tmp_path, python):
    # 30: enough for the bootstrap and the agent's first lines, not for its imports.
    p = _self_booted(tmp_path, python, 30)
    try:
        place = client_mod.agent_place(p.pid, os.getuid())
        failed = os.path.join(place[0], client_mod.failure_name(place[1]))
        assert _wait_for(lambda: os.path.exists(failed)), "no error left for the client"
        why = client_mod.start_failure(p.pid)
        assert p.poll() is None  # the target runs on
    finally:
        _stop(p)
    assert why is not None and why.startswith("RecursionError: "), why
    assert "recursion limit is 30" in why
    assert not os.path.exists(failed)  # picked up, removed


# A failure file left by an earlier process of the same PID (PIDs are reused): the bootstrap's
# fallback replaced none, and the client, which removes one older than its injection, then
# waited for nothing (the limit-12 test now and then, when the bootstrap failed before the
# client first looked).
STALE_FAILURE_TARGET = r"""
import os, sys, time
boot = open(sys.argv[2]).read()
path = "/tmp/reloadscope-%d/%d.failed" % (os.getuid(), os.getpid())
os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
with open(path, "w") as fh:
    fh.write("RuntimeError: an earlier process of this PID\\n")
os.utime(path, (time.time() - 3600, time.time() - 3600))
began = time.time()
sys.setrecursionlimit(int(sys.argv[1]))
exec(boot, {})
while len(os.listdir("/proc/self/task")) > 1:  # the bootstrap's thread has failed, and ended
    time.sleep(0.01)
print(began, flush=True)  # the client looks only now
while True:
    time.sleep(0.05)
"""


@pytest.mark.parametrize("limit", [12, 30])
def test_a_failure_file_of_an_earlier_process_of_the_pid_does_not_hide_this_one(tmp_path, limit):
    from reloadscope.attach import inject

    (tmp_path / "boot.py").write_text(inject.bootstrap())
    script = tmp_path / "target.py"
    script.write_text(STALE_FAILURE_TARGET)
    p = subprocess.Popen(
        [sys.executable, str(script), str(limit), str(tmp_path / "boot.py")],
        stdout=subprocess.PIPE,
        text=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin")},
    )
    try:
        assert p.stdout is not None
        began = float(p.stdout.readline())
        found: list[str | None] = []

        def taken() -> bool:
            found.append(client_mod.start_failure(p.pid, since=began))
            return found[-1] is not None

        assert _wait_for(taken, 20), "no error left for the client: it waits in vain"
        assert p.poll() is None
    finally:
        _stop(p)
    why = found[-1]
    assert why is not None and why.startswith("RecursionError: "), why
    assert f"recursion limit is {limit}" in why
    directory = Path(client_mod.runtime_dir())
    assert not list(directory.glob(f"{p.pid}.failed*"))  # taken, and no temporary file left


@needs_gdb
@pytest.mark.parametrize("python", PYTHONS, ids=IDS)
def test_the_agent_starts_under_a_recursion_limit_of_50(tmp_path, python):
    p = _low_limit_target(tmp_path, python, 50)
    try:
        out = _report(p.pid)
        assert out.returncode == 0, out.stderr
        assert f"pid {p.pid}" in out.stdout
        assert p.poll() is None  # and the target runs on
    finally:
        _stop(p)


def _failed_start(tmp_path: Path, python: str, limit: int) -> str:
    p = _low_limit_target(tmp_path, python, limit)
    try:
        out = _report(p.pid)
        assert p.poll() is None
        # Its failure file was picked up and removed (other processes' may be there).
        failed = client_mod.failure_name(client_mod.agent_place(p.pid, os.getuid())[1])
        assert not (Path(client_mod.runtime_dir()) / failed).exists()
    finally:
        _stop(p)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("reloadscope: error: "), out.stderr
    return lines[0]


@needs_gdb
@pytest.mark.parametrize("python", PYTHONS, ids=IDS)
def test_an_agent_that_fails_to_load_names_its_real_error(tmp_path, python):
    # 30: enough for the bootstrap and the agent's first lines, not for its imports.
    error = _failed_start(tmp_path, python, 30)
    assert "RecursionError" in error and "recursion limit is 30" in error, error
    assert "main thread" not in error  # not blamed on the main thread any more


@needs_gdb
@pytest.mark.parametrize("python", PYTHONS, ids=IDS)
def test_a_bootstrap_that_fails_before_the_agent_loads_names_its_real_error(tmp_path, python):
    error = _failed_start(tmp_path, python, 12)
    assert "RecursionError" in error, error


def test_start_failure_is_read_from_the_private_dir_escaped_and_removed():
    directory = Path(client_mod.runtime_dir())
    directory.mkdir(mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)
    name = client_mod.failure_name(client_mod.agent_place(os.getpid(), os.getuid())[1])
    path = directory / name
    path.write_text("RecursionError: deep \x1b]52;c;AAAA\x07 here\n")
    try:
        text = client_mod.start_failure(os.getpid())
        assert text is not None and text.startswith("RecursionError: deep ")
        assert "\x1b" not in text and "\\x1b" in text
        assert not path.exists()
        assert client_mod.start_failure(os.getpid()) is None
        # One older than the injection is removed, not believed.
        path.write_text("old news\n")
        assert client_mod.start_failure(os.getpid(), since=time.time() + 60) is None
        assert not path.exists()
    finally:
        path.unlink(missing_ok=True)


def test_report_start_failure_writes_one_private_line(monkeypatch):
    import reloadscope.agent as agent

    try:
        raise RecursionError("maximum recursion depth exceeded")
    except RecursionError as e:
        exc = e
    directory = Path(client_mod.runtime_dir())
    path = directory / client_mod.failure_name(client_mod.agent_place(os.getpid(), os.getuid())[1])
    try:
        assert agent.report_start_failure(exc) is True
        st = path.stat()
        assert st.st_mode & 0o777 == 0o600 and st.st_uid == os.getuid()
        text = path.read_text()
        assert text.count("\n") == 1
        assert text.startswith("RecursionError: maximum recursion depth exceeded (in ")
        assert f"recursion limit is {sys.getrecursionlimit()}" in text
    finally:
        path.unlink(missing_ok=True)


# -- 4. an idle client of an install() agent -----------------------------------------------------

IDLE_CLIENT = r"""
import json, os, socket, subprocess, sys, threading, reloadscope, rs
reloadscope.install()
from reloadscope.agent import server
idle = socket.socket(socket.AF_UNIX)
idle.connect(server.own_socket_path())
greeting = idle.makefile("rb").readline()  # connected and greeted, then silent
cli = subprocess.run(
    [sys.executable, "-m", "reloadscope", "report", "--json", str(os.getpid())],
    capture_output=True, text=True, timeout=100,
)
during = sorted(t.name for t in threading.enumerate() if t.name.startswith("reloadscope"))
reloadscope.uninstall()
after = sorted(t.name for t in threading.enumerate() if t.name.startswith("reloadscope"))
idle_closed = idle.recv(10) == b""
rs.report(
    greeting=json.loads(greeting), rc=cli.returncode, err=cli.stderr,
    answered=json.loads(cli.stdout)["process"]["pid"] if cli.returncode == 0 else None,
    during=during, after=after, idle_closed=idle_closed,
)
"""


@pytest.mark.parametrize("python", PYTHONS, ids=IDS)
def test_an_install_agent_answers_a_second_client_while_one_idles(tmp_path, python):
    sc = Scenario(tmp_path, python)
    r = sc.run(IDLE_CLIENT, timeout=150)
    x = r.extra
    assert x["greeting"]["reloadscope"] == 1
    assert x["rc"] == 0 and x["answered"] > 0, x["err"]
    assert "reloadscope-agent-client" in x["during"]  # the idle one still has its thread
    assert x["after"] == [] and x["idle_closed"], x


# -- 5. free-threaded builds ---------------------------------------------------------------------


def test_free_threaded_is_decided_by_the_build():
    assert safe.free_threaded_build("t") and safe.free_threaded_build("td")
    assert not safe.free_threaded_build("") and not safe.free_threaded_build("d")
    assert not safe.free_threaded_build(None)  # type: ignore[arg-type]
    assert safe.version_text((3, 13, 1), True) == "3.13.1t"
    assert safe.version_text((3, 13, 1), False) == "3.13.1"
    assert ("t" in sys.abiflags) == safe.FREE_THREADED
    assert elfinfo.version_label("3.13", True) == "3.13t"
    assert elfinfo.version_label("3.13", False) == "3.13"


def test_the_walk_trusts_no_reference_count_on_a_free_threaded_build(monkeypatch):
    if not safe.FREE_THREADED:
        assert graph._probe_single_holder() > 0  # a GIL build: counts are probed and trusted
    # Whatever sys._is_gil_enabled() says (true under PYTHON_GIL=1): the build decides.
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: True, raising=False)
    monkeypatch.setattr(safe, "FREE_THREADED", True)
    assert graph._probe_single_holder() == 0


def _elf_with_free_threaded_symbol(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of this interpreter's ELF file, and one whose symbol table has a symbol of the
    same length renamed to the one free-threaded builds export."""
    found = elfinfo.interpreter(os.getpid())
    assert found is not None
    data = Path(f"/proc/{os.getpid()}/exe" if "libpython" not in found.path else found.path)
    raw = data.read_bytes()
    import re

    target = elfinfo._FREE_THREADED
    for m in re.finditer(rb"\x00(Py[A-Za-z_]{%d})\x00" % (len(target) - 2), raw):
        name = m.group(1)
        if name not in elfinfo._MARKERS and name != b"Py_Version":
            break
    else:
        pytest.skip("no symbol of that length to rename")
    plain, patched = tmp_path / "plain.so", tmp_path / "patched.so"
    plain.write_bytes(raw)
    patched.write_bytes(raw.replace(b"\x00" + name + b"\x00", b"\x00" + target + b"\x00"))
    return plain, patched


def test_elfinfo_tells_a_free_threaded_build_by_its_exported_symbol(tmp_path):
    plain, patched = _elf_with_free_threaded_symbol(tmp_path)
    version = "{}.{}".format(*sys.version_info[:2])
    with open(plain, "rb") as fh:
        assert elfinfo._read(fh) == (version, False)
    with open(patched, "rb") as fh:
        assert elfinfo._read(fh) == (version, True)
    shown = elfinfo.Interpreter(version, str(patched), True)
    assert shown.label == version + "t" and shown.version == version


def test_ps_shows_a_gil_build_without_t():
    from reloadscope.attach.discovery import python_processes

    child = subprocess.Popen(
        [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        shown = [p.python for p in python_processes(under=child.pid) if p.pid == child.pid]
    finally:
        _stop(child)
    assert shown == ["{}.{}".format(*sys.version_info[:2])]


def test_mp_main_is_not_named_among_the_modules_imported_before_recording(tmp_path):
    # multiprocessing files __main__ again as __mp_main__: it is the program, not a module
    # imported before recording began.
    (tmp_path / "helper_mod.py").write_text("X = 1\n")
    script = (
        "import sys\n"
        "import helper_mod\n"
        "sys.modules['__mp_main__'] = sys.modules['__main__']\n"
        "import reloadscope\n"
        "reloadscope.install(listen=False)\n"
        "spots = reloadscope.scan().to_json()['scan'].get('blind_spots', [])\n"
        'print([s for s in spots if "program\'s modules" in s])\n'
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([SRC, str(tmp_path)])),
    )
    assert out.returncode == 0, out.stderr
    (line,) = out.stdout.splitlines()
    assert "(helper_mod)" in line and "__mp_main__" not in line, line
