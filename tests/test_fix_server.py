"""``reloadscope fix PID`` and ``fix PID --apply`` on a real threaded server (issue 23).

The target serves a line protocol with ``socketserver.ThreadingTCPServer``, whose handler class
lives in ``handlers.py``; so does ``Session``, whose instances the server keeps in
``__main__.SESSIONS`` between requests.  On SIGUSR1 the target reloads ``handlers`` (the test
has edited the file): the server still holds the old handler class
(``server.RequestHandlerClass``) and the old sessions are instances of the old ``Session``, so
requests keep getting the old code's answers.  Then, from outside, through the real CLI (the
agent injected with gdb, or ``sys.remote_exec`` on 3.14+):

- ``reloadscope fix PID`` prints the plan: ``__main__.server.RequestHandlerClass`` rebound, the
  old session's ``__class__`` changed; nothing is changed yet (the answers are still old);
- ``reloadscope fix PID --apply`` carries it out: new requests are handled by the new handler,
  and the old session's method gives the new result;
- ``reloadscope report PID --json`` afterwards has no stale entry of ``handlers`` left.

On every CPython here; the server keeps serving throughout.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from realprocs import env, read_json, report, stale, stop, summary, wait_for
from scenario import pythons, version_id

needs_gdb = pytest.mark.skipif(
    subprocess.run(["which", "gdb"], capture_output=True).returncode != 0,
    reason="gdb is not installed",
)

HANDLERS_V1 = """\
import socketserver

VERSION = "v1"


class Session:
    def __init__(self, name):
        self.name = name
        self.hits = 0

    def greet(self):
        return "v1 hello " + self.name


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        name = self.rfile.readline().strip().decode()
        sessions = self.server.sessions
        if name not in sessions:
            sessions[name] = Session(name)
        s = sessions[name]
        s.hits += 1
        self.wfile.write(("handled by v1: " + s.greet() + "\\n").encode())
"""

HANDLERS_V2 = HANDLERS_V1.replace('"v1', '"v2').replace("by v1", "by v2")

TARGET = """\
import importlib, json, os, signal, socketserver, sys, threading, time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import handlers

SESSIONS = {}


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


server = Server(("127.0.0.1", 0), handlers.Handler)
server.sessions = SESSIONS
threading.Thread(target=server.serve_forever, name="serve", daemon=True).start()


def say(name, data):
    with open(os.path.join(here, name + ".tmp"), "w") as fh:
        json.dump(data, fh)
    os.replace(os.path.join(here, name + ".tmp"), os.path.join(here, name + ".json"))


def on_usr1(signum, frame):
    importlib.reload(handlers)
    say("reloaded", {"version": handlers.VERSION})


signal.signal(signal.SIGUSR1, on_usr1)
say("ready", {"pid": os.getpid(), "port": server.server_address[1]})
deadline = time.monotonic() + 900
while time.monotonic() < deadline and not os.path.exists(os.path.join(here, "stop")):
    time.sleep(0.05)
server.shutdown()
"""


def ask(port: int, name: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(name.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.decode().strip()


def cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reloadscope", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(),
    )


@needs_gdb
@pytest.mark.parametrize("python", pythons(), ids=version_id)
def test_fix_rebinds_a_threaded_servers_handler_class_and_migrates_its_sessions(
    python: str, tmp_path: Path
) -> None:
    (tmp_path / "handlers.py").write_text(HANDLERS_V1)
    (tmp_path / "target.py").write_text(TARGET)
    log = tmp_path / "target.log"
    with open(log, "w") as out:
        p = subprocess.Popen(
            [python, str(tmp_path / "target.py")],
            cwd=tmp_path,
            env=env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive() -> str:
        return "" if p.poll() is None else f"the target exited ({p.returncode}):\n{log.read_text()}"

    try:
        ready = wait_for("the target", lambda: read_json(tmp_path / "ready.json"), 120, alive)
        port = ready["port"]
        assert ask(port, "alice") == "handled by v1: v1 hello alice"

        path = tmp_path / "handlers.py"
        path.write_text(HANDLERS_V2)
        t = time.time() + 10
        os.utime(path, (t, t))
        os.kill(p.pid, signal.SIGUSR1)
        got = wait_for("the reload", lambda: read_json(tmp_path / "reloaded.json"), 60, alive)
        assert got == {"version": "v2"}
        # Reloaded, yet the server still runs the old handler on the old session.
        assert ask(port, "alice") == "handled by v1: v1 hello alice"

        # The plan, as a person reads it; nothing changes.
        plan = cli("fix", str(p.pid))
        assert plan.returncode == 0, plan.stderr
        assert "__main__.server.RequestHandlerClass = handlers.Handler" in plan.stdout, plan.stdout
        assert "__main__.SESSIONS['alice'].__class__ = handlers.Session" in plan.stdout, plan.stdout
        assert "Nothing has been changed" in plan.stdout, plan.stdout
        doc = json.loads(cli("fix", str(p.pid), "--json").stdout)
        changes = {(c["action"], c["path"]) for c in doc["changes"]}
        assert ("rebind", "__main__.server.RequestHandlerClass") in changes, changes
        assert ("migrate", "instances of handlers.Session (generation ?)") in changes, changes
        assert ask(port, "alice") == "handled by v1: v1 hello alice"

        # Carried out: the next requests are handled by the new code, on the old session.
        applied = cli("fix", str(p.pid), "--apply", "--json")
        assert applied.returncode == 0, (applied.stdout, applied.stderr)
        result = json.loads(applied.stdout)
        assert result["result"]["not_applied"] == 0, result["changes"]
        done = {(c["action"], c["path"]) for c in result["changes"] if c["applied"]}
        assert ("rebind", "__main__.server.RequestHandlerClass") in done, done
        assert ask(port, "alice") == "handled by v2: v2 hello alice"
        assert ask(port, "bob") == "handled by v2: v2 hello bob"

        after = report(p.pid)
        assert stale(after, "handlers") == [], summary(after)
        assert ask(port, "alice") == "handled by v2: v2 hello alice"
    finally:
        (tmp_path / "stop").write_text("")
        stop(p)
