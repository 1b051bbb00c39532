"""Hostile and odd input: decompression bombs, FIFOs and devices, odd strings, bad `run` targets.

Every check runs the real CLI (or ``reloadscope.load``) in a child process with a timeout and,
where memory is the point, an address-space limit: a failure is a clean exit 2, never a hang, a
MemoryError or a traceback.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scenario import SRC

FIXTURE = Path(__file__).parent / "fixtures" / "snapshot-v1.rsnap"
AS_LIMIT = 1 << 30  # the child may map 1 GiB at most
MIB = 1 << 20


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "LC_"))}
    return dict(env, PYTHONPATH=SRC, **extra)


def _cli(*args: str, stdin: int | None = subprocess.DEVNULL, limit: bool = False, **env: str):
    return subprocess.run(
        [sys.executable, "-m", "reloadscope", *args],
        capture_output=True,
        text=True,
        stdin=stdin,
        env=_env(**env),
        timeout=60,
        preexec_fn=_limit_memory if limit else None,
    )


def _one_error(p: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    assert p.stderr.startswith("reloadscope: error: "), p.stderr[-2000:]
    assert len(p.stderr.splitlines()) == 1, p.stderr[-2000:]
    assert "Traceback" not in p.stderr and "MemoryError" not in p.stderr
    for needle in needles:
        assert needle in p.stderr, p.stderr
    return p.stderr


LOAD_IN_CHILD = """
import sys, reloadscope
try:
    reloadscope.load(sys.argv[1])
except reloadscope.SnapshotError as e:
    assert isinstance(e, ValueError)
    print("SnapshotError:", e)
else:
    print("loaded")
"""


def _load_in_child(path: str) -> str:
    """``reloadscope.load(path)`` in a child under the memory limit; what it printed."""
    p = subprocess.run(
        [sys.executable, "-c", LOAD_IN_CHILD, path],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=_env(),
        timeout=60,
        preexec_fn=_limit_memory,
    )
    assert p.returncode == 0 and not p.stderr, p.stderr[-2000:]
    return p.stdout.strip()


def _members(path: Path, head: bytes, unit: bytes, total: int, tail: bytes) -> None:
    """A gzip file of several members whose data is ``head``, ``unit`` repeated to ``total``
    bytes, then ``tail``: small on disk, built in milliseconds."""
    block = unit * (MIB // len(unit))
    member = gzip.compress(block, 9, mtime=0)
    with open(path, "wb") as fh:
        fh.write(gzip.compress(head, mtime=0))
        for _ in range(total // len(block)):
            fh.write(member)
        fh.write(gzip.compress(tail, mtime=0))


# -- 1. bounded cost --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bombs")
    out = {"lists": d / "lists.rsnap", "string": d / "string.rsnap", "few-mb": d / "few.rsnap"}
    # FIELD-NOTES: 1 MB of gzip that expands to 1 GiB of '[],' (~27 GB as Python objects).
    _members(out["lists"], b"[", b"[],", 1 << 30, b"[]]")
    # 1 GiB inside one string: no ',' '[' '{' to count, only the size bound stops it.
    head = b'{"format": "reloadscope-snapshot", "version": 1, "junk": "'
    _members(out["string"], head, b"a", 1 << 30, b'"}')
    # Under the size bound (30 MB) but 20 million values: the count stops it.
    _members(out["few-mb"], b"[", b"[],", 30 * MIB, b"[]]")
    return out


def test_bomb_files_are_small_on_disk_and_a_real_file_loads_under_the_same_limit(bombs):
    assert os.path.getsize(bombs["lists"]) < 2 * MIB
    assert os.path.getsize(bombs["string"]) < 2 * MIB
    p = _cli("report", str(FIXTURE), limit=True)
    assert p.returncode == 0 and "demo_greeter" in p.stdout, p.stderr[-2000:]


@pytest.mark.parametrize(
    ("shape", "needle"),
    [("lists", "JSON values"), ("string", "expands beyond 128 MiB"), ("few-mb", "JSON values")],
)
def test_bomb_is_refused_by_report_with_one_line_in_bounded_memory(bombs, shape, needle):
    t0 = time.monotonic()
    p = _cli("report", str(bombs[shape]), limit=True)
    elapsed = time.monotonic() - t0
    err = _one_error(p, str(bombs[shape]) + ": ", needle, "refusing to load it")
    assert p.stdout == ""
    assert elapsed < 20, (elapsed, err)


@pytest.mark.parametrize("shape", ["lists", "string"])
def test_bomb_is_refused_by_open_before_any_ui(bombs, shape):
    _one_error(_cli("open", str(bombs[shape]), limit=True), str(bombs[shape]) + ": ", "refusing")


@pytest.mark.parametrize("shape", ["lists", "string"])
def test_bomb_load_raises_snapshot_error(bombs, shape):
    out = _load_in_child(str(bombs[shape]))
    assert out.startswith(f"SnapshotError: {bombs[shape]}: ") and "refusing" in out


def test_a_bare_json_file_of_too_many_values_is_refused(tmp_path):
    path = tmp_path / "bare.json"
    path.write_bytes(b'{"format": "reloadscope-report", "x": [' + b"[]," * (3 * MIB) + b"[]]}")
    _one_error(_cli("report", str(path), limit=True), "JSON values")


def _doc_with(junk: object) -> bytes:
    doc = json.loads(gzip.decompress(FIXTURE.read_bytes()))
    doc["junk"] = junk
    return gzip.compress(json.dumps(doc).encode())


def _nested(levels: int) -> object:
    node: list = []
    for _ in range(levels - 1):
        node = [node]
    return node


def test_nesting_is_bounded_and_json_output_never_recurses_too_deep(tmp_path):
    # The document is level 1, so 63 levels below it is the most allowed.
    ok, deep, deeper = tmp_path / "ok.rsnap", tmp_path / "65.rsnap", tmp_path / "500.rsnap"
    ok.write_bytes(_doc_with(_nested(63)))
    deep.write_bytes(_doc_with(_nested(64)))
    deeper.write_bytes(_doc_with(_nested(499)))
    p = _cli("report", str(ok), "--json")
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.loads(p.stdout)["format"] == "reloadscope-report"
    for path in (deep, deeper):
        _one_error(_cli("report", str(path), "--json"), "nest more than 64 deep")


def test_a_real_large_snapshot_is_far_below_the_bounds(tmp_path):
    import importlib

    from reloadscope.model import Report

    snapshot = importlib.import_module("reloadscope.snapshot")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from bench_snapshot import make_document

    doc, sources = make_document(10_000)
    path = snapshot.write(Report.from_json(doc, sources), tmp_path / "big.rsnap")
    data = gzip.decompress(path.read_bytes())
    values = data.count(b",") + data.count(b"[") + data.count(b"{")
    assert len(data) * 10 < snapshot.MAX_BYTES and values * 10 < snapshot.MAX_VALUES
    holders = Report.from_json(doc).to_json()["holders"]  # computed on reading (SPEC)
    assert snapshot.load(path).to_json() == {**doc, "holders": holders}
    assert _load_in_child(str(path)) == "loaded"


# -- 2. FIFOs, devices, directories -----------------------------------------------------------


def _unusable(tmp_path: Path, kind: str) -> tuple[str, str]:
    """A path of ``kind`` and the words the error names it with."""
    if kind == "fifo":
        path = tmp_path / "pipe.rsnap"
        os.mkfifo(path)
        return str(path), "named pipe"
    if kind == "directory":
        path = tmp_path / "dir.rsnap"
        path.mkdir()
        return str(path), "is a directory"
    if kind == "socket":
        path = tmp_path / "sock.rsnap"
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))
        s.close()
        return str(path), "a socket"
    return f"/dev/{kind}", "character device"


UNUSABLE = ["fifo", "zero", "urandom", "null", "directory", "socket"]


@pytest.mark.parametrize("kind", UNUSABLE)
def test_non_regular_files_are_refused_at_once(tmp_path, kind):
    path, words = _unusable(tmp_path, kind)
    t0 = time.monotonic()
    p = _cli("report", path, limit=True)
    _one_error(p, path, words)
    assert time.monotonic() - t0 < 20
    assert _cli("open", path, limit=True).returncode == 2
    out = _load_in_child(path)
    assert out.startswith("SnapshotError: ") and words in out


def test_dev_stdin_that_is_a_pipe_nobody_writes_is_refused(tmp_path):
    # stdin is a pipe held open and never written: reading it would wait for ever.
    proc = subprocess.Popen(
        [sys.executable, "-m", "reloadscope", "report", "/dev/stdin"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        preexec_fn=_limit_memory,
    )
    try:
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
        proc.wait()
    _one_error(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), "named pipe")


# -- 3. run: a MODULE or SCRIPT that cannot run -----------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "nomain").mkdir()
    (tmp_path / "nomain" / "__init__.py").write_text("")
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "hello.py").write_text("import sys\nprint('hello', sys.argv[1:])\n")
    return tmp_path


def _run(project: Path, *args: str, python_args: tuple[str, ...] = ("-m", "reloadscope")):
    return subprocess.run(
        [sys.executable, *python_args, "run", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=project,
        env=_env(),
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("-m", "missing_module"), "no module named missing_module"),
        (("-m", "missing_pkg.sub"), "no module named missing_pkg.sub"),
        (("-m", "json.no_such_part"), "no module named json.no_such_part"),
        (("-m", "nomain"), "nomain is a package without a __main__ module"),
        (("-m", ".relative"), "give a module's full, absolute name"),
        (("-m", "sys"), "built into the interpreter"),
        (("missing_script.py",), "no such script: missing_script.py"),
        (("emptydir",), "directory without a __main__.py"),
        ((), "give a SCRIPT, -m MODULE or -c CODE"),
    ],
)
def test_run_of_what_cannot_run_is_one_error_line(project, args, needle):
    _one_error(_run(project, *args), needle)


def test_run_passes_everything_after_the_module_to_it(project):
    (project / "a.json").write_text('{"b": 1, "a": 2}')
    p = _run(project, "-m", "json.tool", "--sort-keys", "a.json")
    assert p.returncode == 0, p.stderr
    assert p.stdout.index('"a"') < p.stdout.index('"b"')
    helped = _run(project, "-m", "json.tool", "--help")
    assert (
        helped.returncode == 0 and "json.tool" in helped.stdout and "--sort-keys" in helped.stdout
    )
    script = _run(project, "hello.py", "-m", "x", "--help")
    assert script.returncode == 0 and "hello ['-m', 'x', '--help']" in script.stdout


def test_run_c_runs_a_string_with_its_arguments(project):
    p = _run(project, "-c", "import sys; print(__name__, sys.argv); sys.exit(3)", "a", "--b")
    assert p.returncode == 3, p.stderr
    assert p.stdout.strip() == "__main__ ['-c', 'a', '--b']"


def test_run_m_finds_modules_in_the_current_directory_from_a_console_script(project):
    # A console script's sys.path[0] is its own directory; python -m puts the cwd first.
    bin_dir = project / "bin"
    bin_dir.mkdir()
    (bin_dir / "reloadscope").write_text(
        "import sys\nfrom reloadscope.cli import main\n" + "sys.exit(main())\n"
    )
    p = _run(project, "-m", "hello", "x", python_args=(str(bin_dir / "reloadscope"),))
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip() == "hello ['x']"


# -- 4. odd strings ---------------------------------------------------------------------------

ODD = "\ud800x\udfff\x00\x1b]52;c;aGk=\x07\u202e[/]b\udcff\x85"


def _odd_doc() -> dict:
    doc = json.loads(gzip.decompress(FIXTURE.read_bytes()))
    report = doc["report"]
    report["process"]["argv"] = [ODD, "--flag"]
    module = report["modules"][0]
    module["name"] = "demo_" + ODD
    module["leftover_names"] = [ODD]
    for s in module["stale"]:
        s["qualname"] += ODD
        for path in s["paths"]:
            path["text"] += ODD
            path["hint"] = path.get("hint", "") + ODD
    doc["sources"] = {module["name"]: {"0": ODD, "1": ODD + "!"}}
    return doc


def _odd_files(tmp_path: Path) -> dict[str, Path]:
    doc = _odd_doc()
    files = {
        "escaped": tmp_path / "escaped.rsnap",  # JSON escapes: "\\ud800"
        "raw": tmp_path / "raw.rsnap",  # the surrogates' UTF-8-style bytes in the JSON text
        "bare": tmp_path / "bare.json",  # a bare report document
    }
    files["escaped"].write_bytes(gzip.compress(json.dumps(doc).encode()))
    raw = json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")
    assert b"\xed\xa0\x80" in raw
    files["raw"].write_bytes(gzip.compress(raw))
    files["bare"].write_text(json.dumps(doc["report"]))
    return files


@pytest.mark.parametrize("encoding", ["utf-8", "ascii", "latin-1", "C-locale"])
def test_odd_strings_load_and_report_in_any_output_encoding(tmp_path, encoding):
    env = {"LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}
    if encoding != "C-locale":
        env = {"PYTHONIOENCODING": encoding}
    for name, path in _odd_files(tmp_path).items():
        import reloadscope

        loaded = reloadscope.load(path)
        assert loaded.modules[0].name == "demo_" + ODD, name
        p = _cli("report", str(path), **env)
        assert p.returncode == 0, (name, p.stderr[-2000:])
        assert "Traceback" not in p.stderr and p.stderr == ""
        assert "\\ud800" in p.stdout and "stale" in p.stdout
        assert "\x1b]52" not in p.stdout  # no terminal control reaches stdout
        assert _cli("report", str(path), "--fail-on-stale", **env).returncode == 1
        as_json = _cli("report", str(path), "--json", **env)
        assert as_json.returncode == 0, as_json.stderr[-2000:]
        assert json.loads(as_json.stdout)["modules"][0]["name"] == "demo_" + ODD


def test_report_dash_reads_a_snapshot_from_stdin(tmp_path):
    # SPEC: `report -` reads a snapshot from stdin (gzip or a bare report document), with the
    # same bounds and the same one-line errors as a file.
    fixture = Path(__file__).parent / "fixtures" / "snapshot-v1.rsnap"
    env = dict(os.environ, PYTHONPATH=SRC)
    cmd = [sys.executable, "-m", "reloadscope", "report", "-"]
    by_file = subprocess.run(
        [*cmd[:-1], str(fixture), "--json"], capture_output=True, env=env, timeout=60
    )
    assert by_file.returncode == 0, by_file.stderr
    for data in (fixture.read_bytes(), by_file.stdout):
        out = subprocess.run([*cmd, "--json"], input=data, capture_output=True, env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == json.loads(by_file.stdout)
    bad = subprocess.run(cmd, input=b"\x80\x04pickle", capture_output=True, env=env, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr.decode().startswith("reloadscope: error: <stdin> is not a reloadscope")
    assert len(bad.stderr.splitlines()) == 1
