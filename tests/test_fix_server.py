"""``reloadscope fix PID`` and ``fix PID --apply`` on a real threaded server (issue 23):
``examples/threaded_server.py``, the server docs/howto/server.md shows.

It serves a line protocol with ``socketserver.ThreadingTCPServer``, whose handler class lives in
``server_handlers.py``; so does ``Session``, whose instances the server keeps in
``__main__.SESSIONS`` between requests.  The test copies both files to a directory of its own,
edits ``server_handlers.py`` there and sends SIGUSR1, on which the server reloads it: the server
still holds the old handler class (``server.RequestHandlerClass``) and the old sessions are
instances of the old ``Session``, so requests keep getting the old code's answers.  Then, from
outside, through the real CLI (the agent injected with gdb, or ``sys.remote_exec`` on 3.14+):

- ``reloadscope fix PID`` prints the plan: ``__main__.server.RequestHandlerClass`` rebound, the
  old session's ``__class__`` changed; nothing is changed yet (the answers are still old);
- ``reloadscope fix PID --apply`` carries it out: new requests are handled by the new handler,
  and the old session's method gives the new result;
- ``reloadscope report PID --json`` afterwards has no stale entry of ``server_handlers`` left.

On every CPython here; the server keeps serving throughout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from realprocs import env, report, stale, stop, summary, wait_for
from scenario import pythons, version_id

needs_gdb = pytest.mark.skipif(
    subprocess.run(["which", "gdb"], capture_output=True).returncode != 0,
    reason="gdb is not installed",
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
READY = re.compile(r"^threaded server (\d+) on 127\.0\.0\.1:(\d+); kill -USR1 \1 reloads", re.M)


def ask(python: str, where: Path, port: int, name: str) -> str:
    """One request, made by the example's own client (``--ask NAME``)."""
    done = subprocess.run(
        [python, "threaded_server.py", "--port", str(port), "--ask", name],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=60,
        env=env(),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


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
    for name in ("threaded_server.py", "server_handlers.py"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        p = subprocess.Popen(
            [python, "threaded_server.py", "--port", "0"],
            cwd=tmp_path,
            env=env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive() -> str:
        return "" if p.poll() is None else f"the server exited ({p.returncode}):\n{log.read_text()}"

    def said(what: str) -> bool:
        return what in log.read_text()

    try:
        ready = wait_for("the server", lambda: READY.search(log.read_text()), 120, alive)
        assert int(ready.group(1)) == p.pid, log.read_text()
        port = int(ready.group(2))
        assert ask(python, tmp_path, port, "alice") == "hello alice (visit 1)"

        # The edit a developer makes, then the reload (a new size: no stale .pyc either way).
        path = tmp_path / "server_handlers.py"
        path.write_text(path.read_text().replace('f"hello ', 'f"good morning '))
        t = time.time() + 10
        os.utime(path, (t, t))
        os.kill(p.pid, signal.SIGUSR1)
        wait_for("the reload", lambda: said("reloaded server_handlers"), 60, alive)
        # Reloaded, yet the server still runs the old handler on the old session.
        assert ask(python, tmp_path, port, "alice") == "hello alice (visit 2)"

        # The plan, as a person reads it; nothing changes.
        plan = cli("fix", str(p.pid))
        assert plan.returncode == 0, plan.stderr
        for line in (
            "__main__.server.RequestHandlerClass = server_handlers.Handler",
            "__main__.SESSIONS['alice'].__class__ = server_handlers.Session",
            "Nothing has been changed",
        ):
            assert line in plan.stdout, plan.stdout
        doc = json.loads(cli("fix", str(p.pid), "--json").stdout)
        changes = {(c["action"], c["path"]) for c in doc["changes"]}
        assert ("rebind", "__main__.server.RequestHandlerClass") in changes, changes
        assert ("migrate", "instances of server_handlers.Session (generation ?)") in changes
        assert ask(python, tmp_path, port, "alice") == "hello alice (visit 3)"

        # Carried out: the next requests are handled by the new code, on the old session.
        applied = cli("fix", str(p.pid), "--apply", "--json")
        assert applied.returncode == 0, (applied.stdout, applied.stderr)
        result = json.loads(applied.stdout)
        assert result["result"]["not_applied"] == 0, result["changes"]
        done = {(c["action"], c["path"]) for c in result["changes"] if c["applied"]}
        assert ("rebind", "__main__.server.RequestHandlerClass") in done, done
        assert ask(python, tmp_path, port, "alice") == "good morning alice (visit 4)"
        assert ask(python, tmp_path, port, "bob") == "good morning bob (visit 1)"

        after = report(p.pid)
        assert stale(after, "server_handlers") == [], summary(after)
        assert ask(python, tmp_path, port, "alice") == "good morning alice (visit 5)"
    finally:
        stop(p)
