"""Real Streamlit (``streamlit run``), late and recording, on every CPython whose test venv has it.

Streamlit runs the app script when a browser session asks for it; this test is that browser: a
small websocket client (standard library only) that opens ``/_stcore/stream`` the way the
frontend does and sends ``BackMsg.rerun_script``.  The script writes what it saw to a file, then
waits (its ``<module>`` frame running) until the test releases it, so that the scan sees a
running script:

- with "magic" on (the default) Streamlit compiles a REWRITTEN tree of app.py (the bare
  expression becomes ``st.write(...)``) under app.py's own file name.  That code is not stale:
  no stale entry for ``__main__``'s ``<module>``, ever (the old false positive).
- after helpers.py is edited (``removed`` deleted, ``changed`` changed), Streamlit notices,
  tells the session (``script_changed_on_disk``), and on the next rerun drops the watched user
  modules from ``sys.modules`` and imports helpers again.  ``st.cache_resource`` and
  ``st.session_state`` keep the first helpers' functions: those are found, by object id, and the
  current ``helpers.changed`` is not.

"late": ``reloadscope report PID --json`` injects the agent with gdb into the plain
``streamlit run`` process.  "recording": Streamlit runs under ``python -m reloadscope run -m
streamlit run ...`` and the same report talks to the listening agent.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from realprocs import (
    assert_evidence,
    entries_by_id,
    env,
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

HELPERS_V1 = """\
VERSION = 1


def removed():
    return "removed v1"


def changed():
    return "changed v1"
"""

# removed() is gone, changed() says something else.
HELPERS_V2 = """\
VERSION = 2


def changed():
    return "changed v2"
"""

APP = """\
import json, os, sys, time

import streamlit as st

import helpers

helpers.VERSION  # a bare expression: magic makes it st.write(helpers.VERSION)


@st.cache_resource
def kept():
    return [helpers.removed, helpers.changed]


KEPT = kept()
if "old" not in st.session_state:
    st.session_state["old"] = {"removed": helpers.removed, "changed": helpers.changed}


def ran_and_wait():
    here = os.path.dirname(os.path.abspath(__file__))
    frame = sys._getframe(1)
    with open(__file__) as fh:
        plain = compile(fh.read(), __file__, "exec")
    info = {
        "pid": os.getpid(),
        "version": helpers.VERSION,
        "rewritten": frame.f_code.co_code != plain.co_code,
        "filename": frame.f_code.co_filename,
        "main_is_script": sys.modules["__main__"].__dict__ is frame.f_globals,
        "helpers_in_sys_modules": sys.modules.get("helpers") is helpers,
        "current": {name: id(getattr(helpers, name, None)) for name in ("removed", "changed")},
        "kept": [id(f) for f in KEPT],
        "session": {k: id(v) for k, v in st.session_state["old"].items()},
        "calls": [f() for f in KEPT],
    }
    with open(os.path.join(here, "ran.tmp"), "w") as fh:
        json.dump(info, fh)
    os.replace(os.path.join(here, "ran.tmp"), os.path.join(here, f"ran-{helpers.VERSION}.json"))
    release = os.path.join(here, f"release-{helpers.VERSION}")
    deadline = time.monotonic() + 900
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.05)


ran_and_wait()
"""


# A browser, as far as Streamlit can tell ------------------------------------------------------
class Browser:
    """One websocket session on ``/_stcore/stream`` (RFC 6455 by hand: a masked binary frame out,
    frames in on a reader thread that answers pings), speaking Streamlit's protobufs."""

    def __init__(self, port: int, timeout: float = 60) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        self._ForwardMsg = ForwardMsg
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                "GET /_stcore/stream HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Protocol: streamlit\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            assert chunk, f"the server closed the websocket handshake: {head!r}"
            head += chunk
        head, self._buf = head.split(b"\r\n\r\n", 1)
        assert head.split(b"\r\n", 1)[0].split()[1] == b"101", head
        self.sock.settimeout(None)
        self.messages: list[Any] = []
        self.closed = ""
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self._buf += chunk
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def _frame(self) -> tuple[bool, int, bytes]:
        b0, b1 = self._exact(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._exact(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._exact(8))
        mask = self._exact(4) if b1 & 0x80 else b""
        data = self._exact(n)
        if mask:
            data = bytes(c ^ mask[i % 4] for i, c in enumerate(data))
        return bool(b0 & 0x80), b0 & 0x0F, data

    def _send(self, opcode: int, data: bytes) -> None:
        mask = os.urandom(4)
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 1 << 16:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        with self._lock:
            self.sock.sendall(head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(data)))

    def _read(self) -> None:
        try:
            message = b""
            while True:
                fin, opcode, data = self._frame()
                if opcode == 0x9:  # ping
                    self._send(0xA, data)
                elif opcode == 0x8:  # close
                    self.closed = f"closed by the server: {data!r}"
                    return
                elif opcode in (0x0, 0x1, 0x2):
                    message += data
                    if fin:
                        msg = self._ForwardMsg()
                        msg.ParseFromString(message)
                        with self._lock:
                            self.messages.append(msg)
                        message = b""
        except (OSError, EOFError) as e:
            self.closed = self.closed or f"websocket gone: {e!r}"

    def rerun(self) -> None:
        """What the frontend sends to (re)run the script: ``BackMsg.rerun_script``."""
        from streamlit.proto.BackMsg_pb2 import BackMsg

        msg = BackMsg()
        msg.rerun_script.query_string = ""
        self._send(0x2, msg.SerializeToString())

    def seen(self, pred: Callable[[Any], bool], since: int = 0) -> bool:
        with self._lock:
            return any(pred(m) for m in self.messages[since:])

    def count(self) -> int:
        with self._lock:
            return len(self.messages)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def changed_on_disk(msg: Any) -> bool:
    return msg.WhichOneof("type") == "session_event" and msg.session_event.script_changed_on_disk


def script_finished(msg: Any) -> bool:
    return msg.WhichOneof("type") == "script_finished"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


def write_future(path: Path, text: str, bump: float) -> None:
    """Rewrite a file with an mtime clearly after the one Streamlit saw."""
    path.write_text(text)
    t = time.time() + bump
    os.utime(path, (t, t))


# the test --------------------------------------------------------------------------------------
@pytest.fixture(params=list(python_versions()))
def version(request: pytest.FixtureRequest) -> str:
    return request.param


@needs_gdb
@pytest.mark.parametrize("magic", [True, False], ids=["magic", "no-magic"])
@pytest.mark.parametrize("mode", ["late", "recording"])
def test_streamlit_reruns_keep_old_helpers_and_the_rewritten_script_is_current(
    version: str, mode: str, magic: bool, tmp_path: Path
) -> None:
    pytest.importorskip("streamlit.proto.BackMsg_pb2")  # the client, in this process
    python = python_with(version, "streamlit")
    (tmp_path / "helpers.py").write_text(HELPERS_V1)
    (tmp_path / "app.py").write_text(APP)
    port = free_port()
    args = [
        *(["-m", "reloadscope", "run"] if mode == "recording" else []),
        *["-m", "streamlit", "run", "app.py", "--server.headless", "true"],
        *["--server.port", str(port), "--server.address", "127.0.0.1"],
        *["--browser.gatherUsageStats", "false"],
        *([] if magic else ["--runner.magicEnabled", "false"]),
    ]
    log = tmp_path / "streamlit.log"
    with open(log, "w") as out:
        p = subprocess.Popen(
            [python, *args],
            cwd=tmp_path,
            env=env(STREAMLIT_SERVER_FILE_WATCHER_TYPE="auto"),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    browser: Browser | None = None

    def alive() -> str:
        if p.poll() is not None:
            return f"streamlit exited ({p.returncode}):\n{log.read_text()}"
        if browser is not None and browser.closed:
            return f"{browser.closed}\n{log.read_text()}"
        return ""

    try:
        wait_for("Streamlit's health endpoint", lambda: healthy(port), 240, alive)
        browser = Browser(port)
        browser.rerun()
        ran1 = wait_for("the first run", lambda: read_json(tmp_path / "ran-1.json"), 240, alive)
        pid = ran1["pid"]
        assert ran1["rewritten"] is magic, ran1  # magic on: a rewritten tree runs
        assert ran1["filename"] == str(tmp_path / "app.py"), ran1
        assert ran1["main_is_script"], ran1
        assert ran1["calls"] == ["removed v1", "changed v1"], ran1
        # The streamlit process itself runs the script (``reloadscope run`` execs python).
        assert pid == p.pid, (pid, p.pid)

        # 1. The script runs (its <module> frame is on the stack): nothing there is stale.
        doc1 = report(pid)
        assert doc1["process"]["python"].startswith(version + "."), doc1["process"]
        main1 = stale(doc1, "__main__")
        assert not [s for s in main1 if "<module>" in s["qualname"]], summary(doc1)
        assert not main1, f"the running script's objects are current:\n{summary(doc1)}"
        assert not entries_by_id(doc1), f"nothing changed yet:\n{summary(doc1)}"
        # What the scan could not judge is said: magic's rewritten <module>, and only then.
        unjudged = [b for b in doc1["scan"].get("blind_spots", []) if b.startswith("__main__")]
        assert bool(unjudged) is magic, summary(doc1)

        # 2. Let that run end, edit helpers.py, wait until Streamlit tells the session, rerun.
        mark = browser.count()
        (tmp_path / "release-1").write_text("")
        wait_for("the first run to finish", lambda: browser.seen(script_finished, mark), 120, alive)
        mark = browser.count()
        write_future(tmp_path / "helpers.py", HELPERS_V2, 10)
        wait_for(
            "Streamlit to see helpers.py change",
            lambda: browser.seen(changed_on_disk, mark),
            120,
            alive,
        )
        browser.rerun()
        ran2 = wait_for("the second run", lambda: read_json(tmp_path / "ran-2.json"), 240, alive)
        assert ran2["pid"] == pid
        # helpers is a new module now; the cache and the session state kept the first one's.
        assert ran2["helpers_in_sys_modules"], ran2
        assert ran2["kept"] == ran1["kept"], "st.cache_resource ran kept() again"
        assert ran2["session"] == ran1["session"], "st.session_state lost its entry"
        assert ran2["calls"] == ["removed v1", "changed v1"], ran2
        assert ran2["current"]["changed"] not in ran2["kept"], ran2
        assert ran2["rewritten"] is magic, ran2

        doc2 = report(pid)
        text = summary(doc2)
        main2 = stale(doc2, "__main__")
        assert not [s for s in main2 if "<module>" in s["qualname"]], text
        found = entries_by_id(doc2)
        old_removed, old_changed = ran1["current"]["removed"], ran1["current"]["changed"]
        for i, (name, oid) in enumerate((("removed", old_removed), ("changed", old_changed))):
            assert oid in found, f"the first helpers' {name} (cached) was not found:\n{text}"
            entry = found[oid]
            assert entry["kind"] == "function" and entry["qualname"] == name, entry
            assert entry in stale(doc2, "helpers"), f"listed under another module:\n{text}"
            assert_evidence(entry, mode)
            # The cached list, which the current script binds as KEPT, holds it.
            assert f"__main__.KEPT[{i}]" in [p["text"] for p in entry["paths"]], entry
        others = [m["name"] for m in doc2["modules"] if m["stale"]]
        assert set(others) <= {"helpers", "__main__"}, f"stale outside the app:\n{text}"
        current = ran2["current"]["changed"]
        assert current not in found, f"the current helpers.changed is reported:\n{text}"
        assert p.poll() is None, "streamlit died"
        (tmp_path / "release-2").write_text("")
        wait_for(
            "the second run to finish", lambda: browser.seen(script_finished, mark), 120, alive
        )
    finally:
        if browser is not None:
            browser.close()
        stop(p)


# What Streamlit's watcher does to an injected agent, without Streamlit ---------------------------
# When a watched file changes, Streamlit drops from sys.modules every module whose file lies on
# PYTHONPATH, the agent's among them when reloadscope is found there.  The next report injects a
# new agent; the old one's modules are reloadscope's, never the program's stale objects (they
# were listed, ~200 of them, as "replaced-module").
EVICTOR = """\
import os, sys, time
here = os.path.dirname(os.path.abspath(__file__))
print("ready", flush=True)
deadline = time.monotonic() + 600
while time.monotonic() < deadline:
    if os.path.exists(os.path.join(here, "evict")):
        for name in [n for n in sys.modules if n.startswith(("_reloadscope_agent", "reloadscope"))]:
            del sys.modules[name]
        os.rename(os.path.join(here, "evict"), os.path.join(here, "evicted"))
    time.sleep(0.05)
"""


@needs_gdb
def test_an_agent_whose_modules_the_program_dropped_is_not_reported(
    version: str, tmp_path: Path
) -> None:
    python = python_versions()[version]
    (tmp_path / "target.py").write_text(EVICTOR)
    p = subprocess.Popen(
        [python, str(tmp_path / "target.py")],
        env=env(),
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        first = report(p.pid)
        assert first["process"]["python"].startswith(version + "."), first["process"]
        assert not entries_by_id(first), summary(first)
        (tmp_path / "evict").write_text("")

        def alive() -> str:
            return "" if p.poll() is None else f"the target exited ({p.returncode})"

        wait_for("the target to drop the agent", (tmp_path / "evicted").exists, 120, alive)
        second = report(p.pid)
        assert not [m["name"] for m in second["modules"] if m["stale"]], summary(second)
        assert p.poll() is None
    finally:
        stop(p)
