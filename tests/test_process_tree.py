"""Process trees for real: a multiprocessing parent (fork) with three workers, each of which
reloaded a module of its own and keeps the old function, so each process has its own stale
object.  ``ps --tree``, ``report PID --children`` and the UI's picker (in tmux) against it; after
each, no agent is left in any of the four (socket, threads)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from procinfo import tasks
from reloadscope.agent.server import socket_path
from scenario import SRC
from test_terminal import tmux  # noqa: F401  (the fixture: the UI in a real terminal)

pytestmark = pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed")

PARENT = r"""
import importlib, multiprocessing as mp, os, sys, time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)


def write(name, text, bump):
    path = os.path.join(here, f"{name}.py")
    with open(path, "w") as fh:
        fh.write(text)
    os.utime(path, (time.time() + bump, time.time() + bump))
    importlib.invalidate_caches()


def reload_into(name, tag):
    write(name, f"def {tag}():\n    return 1\n", 0)
    mod = importlib.import_module(name)
    old = getattr(mod, tag)
    write(name, f"def {tag}():\n    return 2\n", 10)
    importlib.reload(mod)
    return old


def worker(i, ready):
    global kept
    kept = reload_into(f"wmod{i}", f"work{i}")  # this worker's own stale function
    ready.put(os.getpid())
    while True:
        time.sleep(0.05)


if __name__ == "__main__":
    mp.set_start_method("fork")
    kept = reload_into("pmod", "main_f")
    q = mp.Queue()
    procs = [mp.Process(target=worker, args=(i, q), daemon=True) for i in range(3)]
    for p in procs:
        p.start()
    for _ in procs:
        q.get(timeout=60)
    print("ready", os.getpid(), *[p.pid for p in procs], flush=True)
    while True:
        time.sleep(0.05)
"""


def _env() -> dict[str, str]:
    """The CLI's environment: this checkout's reloadscope; no COLUMNS (a pipe gets whole
    lines, the width is given only where a test asks for it)."""
    e = dict(os.environ, PYTHONPATH=SRC, PYTHONDONTWRITEBYTECODE="1")
    e.pop("COLUMNS", None)
    return e


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reloadscope", *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=timeout,
    )


class Tree:
    def __init__(self, proc: subprocess.Popen[str], workers: list[int], d: Path) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.workers = workers
        self.all = [proc.pid, *workers]
        self.dir = d
        for p in self.all:
            # A socket named for one of these new processes was left by an earlier process
            # with that PID (nobody listens on it): not ours to count.
            Path(socket_path(p)).unlink(missing_ok=True)
        self.threads = {p: tasks(p) for p in self.all}

    def own(self, pid: int) -> str:
        """The qualname of the stale function ``pid`` keeps."""
        return "main_f" if pid == self.pid else f"work{self.workers.index(pid)}"

    def wait_clean(self, timeout: float = 15) -> None:
        """No agent left in any of the four: no socket, the same threads as before."""
        deadline = time.time() + timeout
        while True:
            left = [
                p for p in self.all if os.path.exists(socket_path(p)) or tasks(p) != self.threads[p]
            ]
            if not left:
                return
            assert time.time() < deadline, "agents stayed: " + "; ".join(
                f"{p} ({'parent' if p == self.pid else 'worker'}): socket "
                f"{os.path.exists(socket_path(p))}, threads {sorted(tasks(p))} (before "
                f"{sorted(self.threads[p])})"
                for p in left
            )
            time.sleep(0.1)


@pytest.fixture
def tree(tmp_path: Path):
    (tmp_path / "parent.py").write_text(PARENT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    p = subprocess.Popen(
        [sys.executable, "parent.py"], cwd=tmp_path, stdout=subprocess.PIPE, text=True, env=env
    )
    assert p.stdout is not None
    try:
        word, parent, *workers = p.stdout.readline().split()
        assert word == "ready" and int(parent) == p.pid and len(workers) == 3
        yield Tree(p, sorted(map(int, workers)), tmp_path)
    finally:
        for w in workers if "workers" in locals() else []:
            try:
                os.kill(int(w), signal.SIGCONT)
                os.kill(int(w), signal.SIGKILL)
            except ProcessLookupError:
                pass
        os.kill(p.pid, signal.SIGCONT)
        p.kill()
        p.wait()


def _stale_names(doc: dict) -> set[str]:
    return {s["qualname"] for m in doc["modules"] for s in m["stale"]}


def test_report_children_json_gives_each_process_its_own_document(tree):
    out = cli("report", str(tree.pid), "--children", "--json")
    assert out.returncode == 0, out.stderr
    docs = [json.loads(line) for line in out.stdout.splitlines()]
    assert [d["format"] for d in docs] == ["reloadscope-report"] * 4
    assert [d["process"]["pid"] for d in docs] == tree.all  # the parent first, then by PID
    for d in docs:
        assert _stale_names(d) == {tree.own(d["process"]["pid"])}
    tree.wait_clean()
    again = cli("report", str(tree.pid), "--children", "--json", "--fail-on-stale")
    assert again.returncode == 1, again.stderr
    tree.wait_clean()


def test_a_stopped_worker_is_listed_with_its_reason_and_the_others_reported(tree):
    stopped = tree.workers[1]
    os.kill(stopped, signal.SIGSTOP)
    try:
        out = cli("report", str(tree.pid), "--children", "--json")
        text = cli("report", str(tree.pid), "--children")
    finally:
        os.kill(stopped, signal.SIGCONT)
    assert out.returncode == 0, out.stderr
    docs = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(docs) == 4
    error = docs[2]
    assert error["format"] == "reloadscope-error"
    assert error["pid"] == stopped and error["parent"] == tree.pid
    assert "stopped" in error["error"] and f"kill -CONT {stopped}" in error["error"]
    reported = [d for d in docs if d["format"] == "reloadscope-report"]
    assert [d["process"]["pid"] for d in reported] == [p for p in tree.all if p != stopped]
    for d in reported:
        assert _stale_names(d) == {tree.own(d["process"]["pid"])}

    assert text.returncode == 0, text.stderr
    headers = [line for line in text.stdout.splitlines() if line.startswith("### process")]
    assert headers[0] == f"### process {tree.pid} (the parent)"
    assert headers[1] == f"### process {tree.workers[0]} (child of {tree.pid})"
    assert headers[2].startswith(f"### process {stopped} (child of {tree.pid}): not reported:")
    assert "is stopped" in headers[2]
    assert headers[3] == f"### process {tree.workers[2]} (child of {tree.pid})"
    assert "work2" in text.stdout.split(headers[3])[1]
    tree.wait_clean()


def test_a_parent_that_cannot_be_reached_is_one_error_line(tree):
    os.kill(tree.pid, signal.SIGSTOP)
    try:
        out = cli("report", str(tree.pid), "--children", "--json")
    finally:
        os.kill(tree.pid, signal.SIGCONT)
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.startswith("reloadscope: error: ") and out.stderr.count("\n") == 1
    assert "stopped" in out.stderr
    tree.wait_clean()


def test_ps_tree_shows_the_workers_under_the_parent(tree):
    out = cli("ps", "--tree")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    (top,) = [i for i, line in enumerate(lines) if line.split()[0] == str(tree.pid)]
    below = lines[top + 1 : top + 4]
    assert [line.split()[0] for line in below] == [str(w) for w in tree.workers]
    column = lines[0].index("COMMAND")

    def drawing(line: str) -> str:  # what stands before the command line
        return line[column:].split(sys.executable)[0]

    # pytest is the parent's own Python parent: the parent may be drawn under it already.
    for line in below:
        assert drawing(line).endswith(" \\_ "), line
        assert len(drawing(line)) == len(drawing(lines[top])) + 4, lines[top : top + 4]

    doc = json.loads(cli("ps", "--tree", "--json").stdout)

    def find(nodes: list[dict]) -> dict | None:
        for n in nodes:
            if n["pid"] == tree.pid:
                return n
            hit = find(n["children"])
            if hit is not None:
                return hit
        return None

    node = find(doc)
    assert node is not None
    assert [c["pid"] for c in node["children"]] == tree.workers
    assert all(c["ppid"] == tree.pid and c["children"] == [] for c in node["children"])


def test_a_killed_report_children_leaves_no_agent(tree):
    env = dict(_env(), RELOADSCOPE_AGENT_IDLE_S="2")
    client = subprocess.Popen(
        [sys.executable, "-m", "reloadscope", "report", str(tree.pid), "--children", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert client.stdout is not None
        first = json.loads(client.stdout.readline())
        assert first["process"]["pid"] == tree.pid
        client.send_signal(signal.SIGKILL)  # while on the first worker
        client.wait()
    finally:
        client.kill()
        client.wait()
    tree.wait_clean()


def _agents(tree) -> dict[int, bool]:
    """The AGENT column of 'reloadscope ps' for the four."""
    doc = json.loads(cli("ps", "--json").stdout)
    return {p["pid"]: p["agent"] for p in doc if p["pid"] in tree.all}


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_ui_picker_switches_to_a_worker_and_back_then_detaches_from_all(tree, tmux):  # noqa: F811
    t = tmux(f"{sys.executable} -m reloadscope attach {tree.pid}; echo EXITED $?", tree.dir)
    t.wait_for("main_f")
    t.wait_for("3 Python processes below: press p")
    t.keys("p")
    t.wait_for(f"processes under PID {tree.pid}")
    t.keys("Down", "Enter")  # the first worker
    # The header: while the worker's report loads it shows the description, then the title.
    header = f"live process | pid {tree.workers[0]} | child of {tree.pid}"
    t.wait_for(header)
    t.wait_for("work0")
    assert header in t.screen().splitlines()[0]
    assert _agents(tree) == {p: p in (tree.pid, tree.workers[0]) for p in tree.all}
    t.keys("p")
    screen = t.wait_for(f"processes under PID {tree.pid}")
    assert screen.count("attached") == 2  # both kept
    t.keys("Up", "Enter")  # back to the parent, on its first agent
    deadline = time.time() + 20
    while f"child of {tree.pid}" in t.screen() or "main_f" not in t.screen():
        assert time.time() < deadline, t.screen()
        time.sleep(0.2)
    assert f"live process | pid {tree.pid} |" in t.screen().splitlines()[0]
    assert _agents(tree) == {p: p in (tree.pid, tree.workers[0]) for p in tree.all}
    t.keys("q")
    t.wait_for("EXITED 0")
    tree.wait_clean()
    assert _agents(tree) == {p: False for p in tree.all}


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_a_killed_ui_leaves_no_agent_in_any_process(tree, tmux):  # noqa: F811
    t = tmux(f"{sys.executable} -m reloadscope attach {tree.pid}", tree.dir)
    t.wait_for("main_f")
    t.keys("p")
    t.wait_for(f"processes under PID {tree.pid}")
    t.keys("Down", "Down", "Enter")
    t.wait_for("work1")
    assert os.path.exists(socket_path(tree.pid)) and os.path.exists(socket_path(tree.workers[1]))
    ui = subprocess.run(
        ["pgrep", "-f", f"reloadscope attach {tree.pid}"], capture_output=True, text=True
    ).stdout.split()
    assert ui, "the UI process was not found"
    for pid in ui:
        os.kill(int(pid), signal.SIGKILL)
    tree.wait_clean()


def test_children_needs_a_pid(tmp_path):
    out = cli("report", str(tmp_path / "x.rsnap"), "--children")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == "reloadscope: error: --children needs a process ID, not a snapshot file\n"


@pytest.mark.parametrize(
    ("cmdline", "own"),
    [
        (["python3", "-m", "reloadscope", "report", "42"], True),
        (["/usr/bin/python3.11", "/home/u/.local/bin/reloadscope", "attach", "42"], True),
        (["/home/u/.local/bin/reloadscope", "ps"], True),
        (["python", "-m", "reloadscope", "fix", "42", "--apply"], True),
        (["python", "-m", "reloadscope", "run", "server.py"], False),
        (["reloadscope", "run", "-m", "app"], False),
        (["python", "serve.py", "reloadscope", "report"], False),
        (["python", "-m", "reloadscope"], False),
        ([], False),
    ],
)
def test_own_commands_are_not_targets(cmdline, own):
    from reloadscope.attach.discovery import own_command

    assert own_command(cmdline) is own


def test_ps_cuts_command_lines_to_the_width(tree):
    e = dict(_env(), COLUMNS="60")
    out = subprocess.run(
        [sys.executable, "-m", "reloadscope", "ps"], capture_output=True, text=True, env=e
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines and all(len(ln) <= 60 for ln in lines), lines
    assert any(ln.endswith("...") for ln in lines)
    assert not any("reloadscope ps" in ln for ln in lines)
