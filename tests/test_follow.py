"""Live follow: the agent tells generations as they begin and end (its ``wait`` request), and
``report PID --watch`` and the UI rescan after each reload without being asked.

The target is a real process that rewrites and reloads a module on SIGUSR1 (keeping the old
function in a list, so every reload leaves stale objects), reached through the real paths:
injection with gdb, or its own agent (``install()``)."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scenario import SRC, pythons, version_id

# Reloads plug.py on SIGUSR1: generation N defines class HandlerN (the old ones stay as leftover
# names) and handler(), and the old handler is kept in ``kept``.  SIGUSR2 drops the oldest kept
# handler.  With "install" as argv[1], it records and listens from the start (its own agent).
TARGET = r"""
import importlib, os, signal, sys, time
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
if sys.argv[1:] == ["install"]:
    import reloadscope
    reloadscope.install()
path = os.path.join(here, "plug.py")
version = [0]
def source(n):
    return f"class Handler{n}:\n    pass\ndef handler():\n    return {n}\n"
with open(path, "w") as fh:
    fh.write(source(0))
import plug
kept = []
def bump(signum, frame):
    version[0] += 1
    kept.append(plug.handler)
    with open(path, "w") as fh:
        fh.write(source(version[0]))
    t = time.time() + 10 * version[0]
    os.utime(path, (t, t))
    importlib.reload(plug)
    print("reloaded", version[0], flush=True)
def drop(signum, frame):
    kept.pop(0)
    print("dropped", flush=True)
signal.signal(signal.SIGUSR1, bump)
signal.signal(signal.SIGUSR2, drop)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""

needs_gdb = pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed")


class Target:
    """The reloading target process; ``reload()`` signals it and waits until it reloaded."""

    def __init__(self, d: Path, *, python: str = sys.executable, install: bool = False) -> None:
        (d / "target.py").write_text(TARGET)
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        env.pop("PYTHONPATH", None)
        if install:
            env["PYTHONPATH"] = SRC
        self.p = subprocess.Popen(
            [python, str(d / "target.py"), *(["install"] if install else [])],
            cwd=d,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.p.stdout is not None
        assert self.p.stdout.readline().strip() == "ready"
        self.pid = self.p.pid
        self.reloads = 0

    def reload(self) -> None:
        self.reloads += 1
        os.kill(self.pid, signal.SIGUSR1)
        assert self.p.stdout is not None
        assert self.p.stdout.readline().strip() == f"reloaded {self.reloads}"

    def drop(self) -> None:
        os.kill(self.pid, signal.SIGUSR2)
        assert self.p.stdout is not None
        assert self.p.stdout.readline().strip() == "dropped"

    def close(self) -> None:
        self.p.kill()
        self.p.wait()


@pytest.fixture
def target(tmp_path: Path):
    t = Target(tmp_path)
    try:
        yield t
    finally:
        t.close()


def _cli_env(**more: str) -> dict[str, str]:
    # PYTHONFAULTHANDLER: a watch that does not end on Ctrl-C shows its threads (_exits).
    return dict(
        os.environ, PYTHONPATH=SRC, PYTHONDONTWRITEBYTECODE="1", PYTHONFAULTHANDLER="1", **more
    )


def _exits(p: subprocess.Popen, lines: Lines, timeout: float = 60) -> int:
    """The exit status of a watch after Ctrl-C; one that does not end within ``timeout`` is
    made to dump every thread's stack (SIGABRT, with faulthandler on) into the failure."""
    try:
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGABRT)
        time.sleep(2)
        for key, _ in lines.sel.select(1):
            lines.buf[key.data] += key.fileobj.read() or b""  # type: ignore[union-attr]
        raise AssertionError(
            f"the watch did not end within {timeout} s of Ctrl-C; its threads:\n"
            + lines.buf["err"].decode(errors="replace")
        ) from None


class Lines:
    """A child's stdout and stderr, read line by line with a deadline."""

    def __init__(self, p: subprocess.Popen) -> None:
        self.p = p
        self.sel = selectors.DefaultSelector()
        self.buf = {"out": b"", "err": b""}
        for name, stream in (("out", p.stdout), ("err", p.stderr)):
            os.set_blocking(stream.fileno(), False)
            self.sel.register(stream, selectors.EVENT_READ, name)
        self.err_text = ""

    def line(self, which: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf[which]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no line on std{which} within {timeout} s; stderr so far: "
                    f"{self.buf['err'].decode()!r}"
                )
            for key, _ in self.sel.select(left):
                chunk = key.fileobj.read()  # type: ignore[union-attr]
                if chunk:
                    self.buf[key.data] += chunk
                elif self.p.poll() is not None and b"\n" not in self.buf[which]:
                    raise AssertionError(
                        f"the command exited ({self.p.returncode}) before a line on "
                        f"std{which}; stderr: {self.buf['err'].decode()!r}"
                    )
        line, _, rest = self.buf[which].partition(b"\n")
        self.buf[which] = rest
        return line.decode()

    def quiet_for(self, which: str, seconds: float) -> bool:
        try:
            self.line(which, seconds)
        except AssertionError:
            return True
        return False


def _watch(pid: int, *args: str, **env: str) -> tuple[subprocess.Popen, Lines]:
    p = subprocess.Popen(
        [sys.executable, "-m", "reloadscope", "report", str(pid), "--watch", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_cli_env(**env),
    )
    lines = Lines(p)
    first = lines.line("err", 60)
    assert first.startswith(f"reloadscope: watching process {pid}"), first
    return p, lines


def _handlers(doc: dict) -> list[int]:
    (plug,) = [m for m in doc["modules"] if m["name"] == "plug"]
    return sorted(s["generation"] for s in plug["stale"] if s["qualname"] == "handler")


def _agent_gone(pid: int, timeout: float = 10) -> None:
    sock = Path(f"/tmp/reloadscope-{os.getuid()}/{pid}.sock")
    deadline = time.time() + timeout
    while sock.exists():
        assert time.time() < deadline, "the injected agent stayed after the watch ended"
        time.sleep(0.1)


@needs_gdb
def test_watch_json_prints_one_document_per_reload(target):
    p, lines = _watch(target.pid, "--json")
    try:
        docs = []
        for _ in (1, 2, 3):
            target.reload()
            docs.append(json.loads(lines.line("out", 15)))
        assert [d["format"] for d in docs] == ["reloadscope-report"] * 3
        plug = [next(m for m in d["modules"] if m["name"] == "plug") for d in docs]
        assert [m["current_generation"] for m in plug] == [1, 2, 3]
        # What each reload left: the old handler() of every earlier generation, kept alive.
        assert [_handlers(d) for d in docs] == [[0], [0, 1], [0, 1, 2]]
        assert [d["changes"] for d in docs] == [
            [{"module": "plug", "generations": [n], "status": "finished", "stale": 2 * n,
              "new": 2, "gone": 0, "new_names": [f"class Handler{n - 1}", "function handler"],
              "gone_names": []}]
            for n in (1, 2, 3)
        ]  # fmt: skip
        assert lines.quiet_for("out", 2)  # nothing more without a reload
        p.send_signal(signal.SIGINT)
        assert _exits(p, lines) == 0
        assert p.stderr.read() in (b"", None)  # Ctrl-C ends it quietly
    finally:
        p.kill()
        p.wait()
    _agent_gone(target.pid)  # the injected agent left with the watch
    target.reload()  # and the target runs on
    assert target.p.poll() is None


@needs_gdb
def test_watch_text_says_each_reload_and_when_the_process_ends(target):
    p, lines = _watch(target.pid)
    try:
        target.reload()
        first = lines.line("out", 15)
        assert first.endswith(
            "gen 1 of plug: +2 stale [class Handler0, function handler], -0 gone (2 now)"
        ), first
        target.drop()  # handler of generation 0 is no longer held
        target.reload()
        second = lines.line("out", 15)
        assert second.endswith(
            "gen 2 of plug: +2 stale [class Handler1, function handler], -1 gone "
            "[function handler] (3 now)"
        ), second
        target.close()
        assert lines.line("err", 15) == f"reloadscope: process {target.pid} ended; stopped watching"
        assert p.wait(15) == 0
    finally:
        p.kill()
        p.wait()


@needs_gdb
def test_watch_names_the_holder_that_grows_on_every_reload(target):
    p, lines = _watch(target.pid)
    try:
        target.reload()
        assert " gen 1 of plug: +2 stale" in lines.line("out", 15)
        target.reload()  # ``kept`` now holds the handlers of generations 0 and 1: growing
        assert " gen 2 of plug: +2 stale" in lines.line("out", 15)
        # Also growing: plug itself, by one leftover name (class HandlerN) per reload.
        grew = lines.line("out", 15)
        assert " holder plug grew: +1 stale (2 now, gens 0, 1): leftover name" in grew, grew
        grew = lines.line("out", 15)
        assert grew.endswith(
            "holder __main__.kept grew: +1 stale (2 now, gens 0, 1): grows by one per reload; "
            "registration is not idempotent: key it by name or clear it when the module reloads"
        ), grew
        p.send_signal(signal.SIGINT)
        assert _exits(p, lines) == 0
    finally:
        p.kill()
        p.wait()
    _agent_gone(target.pid)


@needs_gdb
def test_watch_json_has_a_record_for_each_holder_that_grew(target):
    p, lines = _watch(target.pid, "--json")
    try:
        target.reload()
        assert json.loads(lines.line("out", 15))["holder_changes"] == []  # one generation
        target.reload()
        doc = json.loads(lines.line("out", 15))
        grown = {c["holder"]: c for c in doc["holder_changes"]}
        assert sorted(grown) == ["__main__.kept", "plug"]
        change = grown["__main__.kept"]
        assert (change["count"], change["new"], change["generations"]) == (2, 1, [0, 1])
        kept = next(h for h in doc["holders"] if h["path"] == "__main__.kept")
        assert kept["growing"] and kept["hint"].startswith("grows by one per reload")
    finally:
        p.kill()
        p.wait()


def test_watch_refuses_a_file_and_fail_on_stale(tmp_path):
    snap = Path(__file__).parent / "fixtures" / "snapshot-v1.rsnap"
    for args in ([str(snap), "--watch"], ["123", "--watch", "--fail-on-stale"]):
        r = subprocess.run(
            [sys.executable, "-m", "reloadscope", "report", *args],
            capture_output=True, text=True, env=_cli_env(), timeout=60,
        )  # fmt: skip
        assert r.returncode == 2 and r.stderr.startswith("reloadscope: error: "), r.stderr
        assert "--watch" in r.stderr and r.stdout == ""


def test_report_help_shows_watch_with_an_example():
    r = subprocess.run(
        [sys.executable, "-m", "reloadscope", "report", "--help"],
        capture_output=True, text=True, env=_cli_env(COLUMNS="200"), timeout=60,
    )  # fmt: skip
    assert r.returncode == 0
    assert "--watch" in r.stdout and "reloadscope report 4242 --watch" in r.stdout


# -- the agent's wait request ---------------------------------------------------------------


def _connect(pid: int) -> tuple[socket.socket, object]:
    """A raw connection to the agent of ``pid`` and a reader of its lines (greeting read)."""
    path = f"/tmp/reloadscope-{os.getuid()}/{pid}.sock"
    deadline = time.time() + 20
    while not os.path.exists(path):
        assert time.time() < deadline, "the agent never listened"
        time.sleep(0.05)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(60)
    reader = s.makefile("rb")
    return s, reader


def _ask(s: socket.socket, reader, msg: dict) -> tuple[dict, float]:
    t = time.monotonic()
    s.sendall(json.dumps(msg).encode() + b"\n")
    reply = json.loads(reader.readline())
    return reply, time.monotonic() - t


@pytest.mark.parametrize("python", pythons(), ids=version_id)
def test_wait_answers_when_a_generation_ends_and_times_out_otherwise(tmp_path, python):
    t = Target(tmp_path, python=python, install=True)
    try:
        s, reader = _connect(t.pid)
        hello = json.loads(reader.readline())
        assert hello["follow"] == 1 and hello["reloadscope"] == 1
        now, _ = _ask(s, reader, {"id": 1, "op": "wait", "after": None})
        seq = now["result"]["sequence"]
        assert now["ok"] and now["result"]["recording"] is True

        # Nothing happens: the wait lasts its timeout, no longer and not much less.
        quiet, took = _ask(s, reader, {"id": 2, "op": "wait", "after": seq, "timeout": 1.0})
        assert quiet["id"] == 2 and quiet["result"]["events"] == [] and 0.9 <= took < 2.5

        # A reload while it waits: answered at once, with the generation and its status.
        s.sendall(json.dumps({"id": 3, "op": "wait", "after": seq, "timeout": 20}).encode())
        s.sendall(b"\n")
        time.sleep(0.5)
        began = time.monotonic()
        os.kill(t.pid, signal.SIGUSR1)
        reply = json.loads(reader.readline())
        took = time.monotonic() - began
        assert reply["id"] == 3 and took < 1.5, (reply, took)
        events = reply["result"]["events"]
        assert events[0]["module"] == "plug" and events[0]["generation"] == 1
        assert events[0]["reload"] is True and events[0]["kind"] == "reload"
        if len(events) == 1:  # the answer may come between the start and the end
            more, _ = _ask(
                s, reader, {"id": 4, "op": "wait", "after": events[0]["sequence"], "timeout": 10}
            )
            events += more["result"]["events"]
        assert [e["status"] for e in events] == ["running", "finished"]

        # A blank line ends a pending wait early (a client hurrying it to ask for a scan).
        after = events[-1]["sequence"]
        s.sendall(json.dumps({"id": 5, "op": "wait", "after": after, "timeout": 20}).encode())
        s.sendall(b"\n")
        time.sleep(0.3)
        began = time.monotonic()
        s.sendall(b"\n")
        hurried = json.loads(reader.readline())
        assert hurried["id"] == 5 and time.monotonic() - began < 1.5
        assert hurried["result"]["events"] == []  # hurried, not woken by an event
        # The blank line got no answer of its own: the next answer is the next request's.
        pong, _ = _ask(s, reader, {"id": 6, "op": "ping"})
        assert pong == {"id": 6, "ok": True, "result": "pong"}
        # A request the old way (no wait, no progress) is answered as before.
        scan, _ = _ask(s, reader, {"id": 7, "op": "scan", "collect": False})
        assert scan["ok"] and _handlers(scan["result"]["report"]) == [0]
        s.close()
    finally:
        t.close()


def test_a_client_killed_while_waiting_frees_the_agent_for_the_next(tmp_path):
    # install()'s agent stays when its client goes; it must not stay stuck in the dead
    # client's wait (30 s): the next client is answered within a second or so.
    t = Target(tmp_path, install=True)
    client = None
    try:
        _connect(t.pid)[0].close()  # listening
        code = (
            "import sys, json, socket, time\n"
            "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile('rb')\n"
            "f.readline()\n"
            's.sendall(b\'{"id": 1, "op": "wait", "after": null}\\n\')\n'
            "seq = json.loads(f.readline())['result']['sequence']\n"
            "s.sendall(json.dumps({'id': 2, 'op': 'wait', 'after': seq, 'timeout': 30})"
            ".encode() + b'\\n')\n"
            "print('waiting', flush=True); time.sleep(600)\n"
        )
        sock = f"/tmp/reloadscope-{os.getuid()}/{t.pid}.sock"
        client = subprocess.Popen([sys.executable, "-c", code, sock], stdout=subprocess.PIPE)
        assert client.stdout.readline().strip() == b"waiting"
        time.sleep(0.5)
        client.kill()
        client.wait()
        began = time.monotonic()
        s, reader = _connect(t.pid)
        json.loads(reader.readline())  # the greeting comes once the agent serves us
        pong, _ = _ask(s, reader, {"id": 1, "op": "ping"})
        assert pong["result"] == "pong" and time.monotonic() - began < 3
        s.close()
    finally:
        if client is not None:
            client.kill()
            client.wait()
        t.close()


# -- old agents and old clients --------------------------------------------------------------

OLD = "0381145"  # the last commit before follow: its agent has no 'wait', its client never asks


@pytest.fixture(scope="module")
def old_src(tmp_path_factory) -> str:
    root = Path(__file__).resolve().parent.parent
    have = subprocess.run(["git", "-C", str(root), "cat-file", "-e", OLD], capture_output=True)
    if have.returncode != 0:
        pytest.skip(f"commit {OLD} (reloadscope before follow) is not in this checkout")
    d = tmp_path_factory.mktemp("old")
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", OLD, "src"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(d)], input=archive.stdout, check=True)
    return str(d / "src")


def test_watch_polls_an_agent_that_cannot_tell_and_says_so(tmp_path, old_src):
    (tmp_path / "target.py").write_text(TARGET)
    env = dict(os.environ, PYTHONPATH=old_src, PYTHONDONTWRITEBYTECODE="1")
    old = subprocess.Popen(
        [sys.executable, str(tmp_path / "target.py"), "install"],
        cwd=tmp_path, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert old.stdout.readline().strip() == "ready"
        p, lines = _watch(old.pid, "--json", RELOADSCOPE_POLL_S="1")
        try:
            assert "cannot tell when it reloads" in lines.line("err", 10)
            os.kill(old.pid, signal.SIGUSR1)
            assert old.stdout.readline().strip() == "reloaded 1"
            doc = json.loads(lines.line("out", 15))
            assert _handlers(doc) == [0]
            assert lines.quiet_for("out", 2.5)  # polled, but nothing changed: nothing printed
            p.send_signal(signal.SIGINT)
            assert _exits(p, lines) == 0
        finally:
            p.kill()
            p.wait()
    finally:
        old.kill()
        old.wait()


def test_an_old_client_still_works_with_a_following_agent(tmp_path, old_src):
    t = Target(tmp_path, install=True)
    try:
        t.reload()
        r = subprocess.run(
            [sys.executable, "-m", "reloadscope", "report", str(t.pid), "--json"],
            capture_output=True, text=True, timeout=60,
            env=dict(os.environ, PYTHONPATH=old_src, PYTHONDONTWRITEBYTECODE="1"),
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert _handlers(json.loads(r.stdout)) == [0]
    finally:
        t.close()


# -- the rules of settling ---------------------------------------------------------------------


def test_settle_waits_for_quiet_and_spaces_scans_by_their_cost():
    from reloadscope.follow import Settle

    s = Settle(debounce=0.5, min_interval=1.0, scale=4.0)
    assert not s.due(0.0)
    s.hear([{"module": "m", "generation": 1, "status": "running", "reload": True}], 10.0)
    assert not s.due(20.0)  # still running: never scanned midway
    s.hear([{"module": "m", "generation": 1, "status": "finished", "reload": True}], 20.0)
    assert not s.due(20.4) and s.due(20.5)  # half a second after the last one ended
    s.hear([{"module": "x", "generation": 0, "status": "finished", "reload": False}], 20.6)
    assert s.due(20.6)  # a first import is no reload: it does not push the scan back
    s.scanned(20.5, 22.5)  # a 2 s scan: the next automatic one not before 8 s later
    assert not s.pending
    s.hear([{"module": "m", "generation": 2, "status": "finished", "reload": True}], 23.0)
    assert not s.due(30.0) and s.due(30.5)
    assert s.until_due(23.0, 2.0) == 2.0 and s.until_due(30.0, 2.0) == 0.5


# -- the UI in a real terminal -----------------------------------------------------------------


def _rows(screen: str) -> dict[str, set[str]]:
    """The generations of the stale rows on screen that a reload left: the classes
    ``HandlerN`` (leftover names) and the kept ``handler()`` functions, a new one marked ``+``.
    (Classes sort first: in a small terminal the last function rows may be scrolled off.)"""
    import re

    return {
        "class": set(re.findall(r"class\s+(?:\+ )?Handler\d+\s+(\d+)\s", screen)),
        "function": set(re.findall(r"function\s+(?:\+ )?handler\s+(\d+)\s", screen)),
    }


def _gens(screen: str) -> str | None:
    """The modules table's generation count for plug."""
    import re

    found = re.search(r"│ plug\s+(\d+)\s", screen)
    return found.group(1) if found else None


@needs_gdb
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_ui_follows_reloads_without_a_key_press_and_f_pauses(target, tmp_path):
    from test_terminal import Tmux

    # The pane's own size, not COLUMNS/LINES that a shared tmux server may have in its global
    # environment from whoever started it (Textual would believe them).  One shell, so that
    # the environment Tmux sets reaches the UI.
    command = (
        f"sh -c 'unset COLUMNS LINES; exec {sys.executable} -m reloadscope attach {target.pid}'"
    )
    t = Tmux(f"rs-follow-{os.getpid()}", command, tmp_path)
    try:
        t.wait_for("following: rescans after each reload")
        for _ in (1, 2, 3):
            target.reload()
            time.sleep(0.3)
        deadline = time.monotonic() + 8  # no key pressed from here
        while True:
            screen = t.screen()
            rows = _rows(screen)
            if rows["class"] == {"0", "1", "2"} and _gens(screen) == "4" and "of plug:" in screen:
                break
            assert time.monotonic() < deadline, f"the reloads never showed:\n{screen}"
            time.sleep(0.2)
        assert "0" in rows["function"]  # the kept handler of generation 0
        assert "(+" in screen  # the changed module stands out with its change
        assert "f pause" in screen

        t.keys("f")
        t.wait_for("follow paused (f resumes)")
        t.wait_for("f resume")  # the footer follows a moment later
        target.reload()  # a fourth: heard, but not shown while paused
        t.wait_for("not shown yet: gen 4 of plug")
        time.sleep(2.5)
        screen = t.screen()
        assert "3" not in _rows(screen)["class"] and _gens(screen) == "4", screen
        t.keys("f")
        screen = t.wait_for("gen 4 of plug: +2 stale", timeout=8)
        assert _rows(screen)["class"] == {"0", "1", "2", "3"} and _gens(screen) == "5", screen
        t.keys("q")  # the agent was injected and recorded reloads: the UI says what goes
        t.wait_for("was injected by this attach")
        t.keys("q")
    finally:
        t.close()
    _agent_gone(target.pid)
    assert target.p.poll() is None


def test_a_reload_between_the_first_scan_and_following_is_not_missed(tmp_path):
    """The agent's event number is taken when a scan begins: a follower that starts late
    (after the UI showed its first report, or ``--watch`` printed its first line) still hears
    the reload that came in between."""
    import importlib
    import threading

    import reloadscope
    from reloadscope.follow import follow
    from reloadscope.ui.source import ProcessSource

    (tmp_path / "lateplug.py").write_text("def handler():\n    return 0\n")
    sys.path.insert(0, str(tmp_path))
    reloadscope.install(listen=False)
    try:
        import lateplug

        held = [lateplug.handler]
        source = ProcessSource()
        source.load(collect=False)  # the first report
        (tmp_path / "lateplug.py").write_text("def handler():\n    return 1\n")
        t = time.time() + 10
        os.utime(tmp_path / "lateplug.py", (t, t))
        importlib.invalidate_caches()
        importlib.reload(lateplug)  # before anyone follows
        stop = threading.Event()
        shown = []

        def on_report(report):
            shown.append(report)
            stop.set()

        runner = threading.Thread(
            target=follow,
            args=(lambda: source.load(collect=False), on_report),
            kwargs={"wait": source.wait, "stop": stop, "after": source.last_sequence},
        )
        runner.start()
        runner.join(10)
        stop.set()
        source.hurry()
        runner.join(5)
        assert shown, "the reload before following began was never rescanned"
        assert shown[0].module("lateplug").current_generation == 1
        assert held
    finally:
        reloadscope.uninstall()
        sys.path.remove(str(tmp_path))
        sys.modules.pop("lateplug", None)
