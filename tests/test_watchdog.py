"""A real watchdog Observer that reloads a package module when its file changes, late and
recording, on every CPython whose test venv has watchdog.

The target watches its package directory with ``watchdog.observers.Observer``; on a modification
of ``pkg/sub.py`` it calls ``importlib.reload(pkg.sub)`` on the observer's thread.  ``pkg``
re-exports ``from .sub import handler, helper`` (those copies stay old) and ``__main__.REGISTRY``
keeps ``sub.removed`` and ``sub.handler``.  The test deletes ``removed`` from sub.py, changes
``handler``, waits for the target to say it reloaded, then reports on it from outside:

- "late": ``reloadscope report PID --json`` injects the agent with gdb after the reload;
- "recording": the target called ``reloadscope.install()`` first; the report talks to it.

The old ``handler`` (``pkg.handler``, ``__main__.REGISTRY[1]``) and the registry's ``removed``
(``__main__.REGISTRY[0]``, and ``pkg.sub.removed``: reload keeps the old name) are found with
paths that name them; ``removed`` even late (the old ``handler`` proves sub.py ran again); so
is the old ``helper`` copy in ``pkg.helper`` (same text, an earlier compilation);
``leftover_names`` lists ``removed``; nothing current is reported; the target runs on.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from realprocs import (
    assert_evidence,
    entries_by_id,
    env,
    module,
    read_json,
    report,
    stale,
    stop,
    summary,
    wait_for,
)
from scenario import python_versions
from targets import python_with

needs_gdb = pytest.mark.skipif(
    subprocess.run(["which", "gdb"], capture_output=True).returncode != 0,
    reason="gdb is not installed",
)

INIT = "from .sub import handler, helper\n"

SUB_V1 = """\
def helper():
    return "helper v1"


def removed():
    return "removed v1"


def handler():
    return "handler v1"
"""

# removed() deleted, handler() changed, helper() as it was.
SUB_V2 = """\
def helper():
    return "helper v1"


def handler():
    return "handler v2"
"""

TARGET = """\
import importlib, json, os, sys, threading, time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
INSTALL
import pkg
import pkg.sub
from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer

REGISTRY = [pkg.sub.removed, pkg.sub.handler]
OLD = {"removed": id(pkg.sub.removed), "handler": id(pkg.sub.handler),
       "pkg.helper": id(pkg.helper)}
RELOADS = []


def say(name, data):
    with open(os.path.join(here, name + ".tmp"), "w") as fh:
        json.dump(data, fh)
    os.replace(os.path.join(here, name + ".tmp"), os.path.join(here, name + ".json"))


class Reloader(FileSystemEventHandler):
    def on_modified(self, event):
        if os.path.abspath(event.src_path) != os.path.abspath(pkg.sub.__file__):
            return
        with open(pkg.sub.__file__) as fh:
            if "handler v2" not in fh.read():
                return  # a partial write: wait for the next event
        if RELOADS:
            return
        importlib.reload(pkg.sub)
        RELOADS.append(time.time())
        say("reloaded", {
            "pid": os.getpid(),
            "old": OLD,
            "current": {"handler": id(pkg.sub.handler), "helper": id(pkg.sub.helper),
                        "pkg.sub": id(pkg.sub), "REGISTRY": id(REGISTRY)},
            "calls": [pkg.sub.handler(), pkg.handler(), REGISTRY[0](), REGISTRY[1]()],
            "has_removed": hasattr(pkg.sub, "removed"),
        })


observer = Observer()
observer.schedule(Reloader(), os.path.join(here, "pkg"), recursive=False)
observer.start()
say("ready", {"pid": os.getpid()})
n = 0
deadline = time.monotonic() + 900
while time.monotonic() < deadline and not os.path.exists(os.path.join(here, "stop")):
    n += 1
    with open(os.path.join(here, "ticks.tmp"), "w") as fh:
        fh.write(str(n))
    os.replace(os.path.join(here, "ticks.tmp"), os.path.join(here, "ticks"))
    time.sleep(0.05)
observer.stop()
observer.join(30)
"""

INSTALL = {"late": "", "recording": "import reloadscope; reloadscope.install()"}


def write_future(path: Path, text: str, bump: float) -> None:
    """Rewrite a file with an mtime clearly after the first import's (no stale .pyc)."""
    path.write_text(text)
    t = time.time() + bump
    os.utime(path, (t, t))


def ticks(d: Path) -> int:
    try:
        return int((d / "ticks").read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


@pytest.fixture(params=list(python_versions()))
def version(request: pytest.FixtureRequest) -> str:
    return request.param


@needs_gdb
@pytest.mark.parametrize("mode", ["late", "recording"])
def test_a_watchdog_reloader_leaves_the_old_handler_and_the_removed_function(
    version: str, mode: str, tmp_path: Path
) -> None:
    python = python_with(version, "watchdog")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text(INIT)
    (tmp_path / "pkg" / "sub.py").write_text(SUB_V1)
    (tmp_path / "target.py").write_text(TARGET.replace("INSTALL", INSTALL[mode]))
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
        assert ready["pid"] == p.pid
        write_future(tmp_path / "pkg" / "sub.py", SUB_V2, 10)
        got = wait_for("the reload", lambda: read_json(tmp_path / "reloaded.json"), 120, alive)
        assert got["calls"] == ["handler v2", "handler v1", "removed v1", "handler v1"], got
        assert got["has_removed"], "importlib.reload keeps the old name in the module's dict"
        old, current = got["old"], got["current"]

        doc = report(p.pid)
        text = summary(doc)
        assert doc["process"]["python"].startswith(version + "."), doc["process"]
        found = entries_by_id(doc)
        sub = module(doc, "pkg.sub")
        assert sub is not None, f"pkg.sub not in the report:\n{text}"

        # The old handler: the package's re-exported copy and the registry's.
        assert old["handler"] in found, f"the old handler was not found:\n{text}"
        h = found[old["handler"]]
        assert (h["kind"], h["qualname"]) == ("function", "handler"), h
        assert h in sub["stale"], f"the old handler is listed under another module:\n{text}"
        assert_evidence(h, mode)
        paths = [x["text"] for x in h["paths"]]
        assert "pkg.handler" in paths and "__main__.REGISTRY[1]" in paths, h

        # removed: gone from the file, still bound in pkg.sub (a leftover name) and the registry.
        assert old["removed"] in found, f"the removed function was not found:\n{text}"
        r = found[old["removed"]]
        assert (r["kind"], r["qualname"]) == ("function", "removed"), r
        assert r in sub["stale"], f"removed is listed under another module:\n{text}"
        assert_evidence(r, mode)
        paths = [x["text"] for x in r["paths"]]
        assert "__main__.REGISTRY[0]" in paths and "pkg.sub.removed" in paths, r
        assert "removed" in sub["leftover_names"], sub
        assert "handler" not in sub["leftover_names"], sub

        # The old helper that pkg re-exported: the same text, an earlier compilation of it.
        assert old["pkg.helper"] in found, f"the old pkg.helper was not found:\n{text}"
        hp = found[old["pkg.helper"]]
        assert (hp["kind"], hp["qualname"]) == ("function", "helper"), hp
        assert_evidence(hp, mode)
        assert [x["text"] for x in hp["paths"]] == ["pkg.helper"], hp

        # Nothing current: the new handler and helper, the module, the registry.
        wrong = {k: v for k, v in current.items() if v in found}
        assert not wrong, f"current objects reported: {wrong}\n{text}"
        outside = [m["name"] for m in doc["modules"] if m["stale"] and m["name"] != "pkg.sub"]
        assert not outside, f"stale outside pkg.sub:\n{text}"
        assert not stale(doc, "pkg"), text

        # The target runs on.
        t0 = ticks(tmp_path)
        wait_for("the target to tick on", lambda: ticks(tmp_path) > t0, 60, alive)
        (tmp_path / "stop").write_text("")
        assert p.wait(timeout=60) == 0, log.read_text()
    finally:
        stop(p)
