"""The readable report on a terminal: colour as NO_COLOR, FORCE_COLOR and TERM=dumb say, and
long findings wrapped to the terminal's width (never on a pipe)."""

from __future__ import annotations

import copy
import gzip
import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from scenario import SRC

FIXTURE = Path(__file__).parent / "fixtures" / "snapshot-v1.rsnap"
LONG = "demo_app.registry['handlers'][3].callbacks.on_login[0].__func__.__closure__[0]"


def _env(**extra: str) -> dict[str, str]:
    drop = ("PYTHON", "LC_", "NO_COLOR", "FORCE_COLOR", "COLUMNS", "TERM")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(PYTHONPATH=SRC, TERM="xterm")
    env.update(extra)
    return env


def _on_a_terminal(args: list[str], cols: int = 200, **env: str) -> str:
    """What ``reloadscope ARGS`` writes to a terminal ``cols`` wide."""
    import fcntl
    import struct
    import termios

    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, cols, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "reloadscope", *args],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=_env(**env),
    )
    os.close(follower)
    out = b""
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 30)
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(leader)
        proc.wait(timeout=30)
    assert proc.returncode == 0, out
    return out.decode().replace("\r\n", "\n")


@pytest.mark.parametrize(
    ("env", "colored"),
    [
        ({}, True),
        ({"NO_COLOR": "1"}, False),
        ({"TERM": "dumb"}, False),
        ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),  # NO_COLOR wins, as in CPython
    ],
)
def test_colour_on_a_terminal_follows_the_environment(env, colored):
    out = _on_a_terminal(["report", str(FIXTURE)], **env)
    assert "held by" in out
    assert ("\x1b[" in out) is colored


def _piped(snapshot: Path, **env: str) -> str:
    """What ``reloadscope report SNAPSHOT`` writes to a pipe."""
    p = subprocess.run(
        [sys.executable, "-m", "reloadscope", "report", str(snapshot)],
        capture_output=True,
        text=True,
        env=_env(**env),
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_force_color_colours_a_pipe():
    assert "\x1b[" not in _piped(FIXTURE)
    assert "\x1b[36m" in _piped(FIXTURE, FORCE_COLOR="1")


def _long_path_fixture(tmp_path: Path) -> Path:
    doc = json.loads(gzip.decompress(FIXTURE.read_bytes()))
    doc = copy.deepcopy(doc)
    stale = doc["report"]["modules"][0]["stale"][0]
    stale["paths"][0]["text"] = LONG
    out = tmp_path / "long.rsnap"
    out.write_bytes(gzip.compress(json.dumps(doc).encode()))
    return out


def _held_by(out: str) -> list[str]:
    """The lines of the first ``held by`` finding: its first line and continuations."""
    lines = out.splitlines()
    i = next(i for i, ln in enumerate(lines) if "held by" in ln)
    block = [lines[i]]
    indent = lines[i].index("held by") + len("held by ")
    for ln in lines[i + 1 :]:
        if not ln.startswith(" " * indent) or ln[indent] == " ":
            break
        block.append(ln)
    return block


def test_a_long_path_wraps_to_the_terminal_and_keeps_every_character(tmp_path):
    snap = _long_path_fixture(tmp_path)
    out = _on_a_terminal(["report", str(snap)], cols=40, NO_COLOR="1")
    block = _held_by(out)
    assert len(block) > 1 and all(len(ln) <= 40 for ln in block), block
    assert "".join(ln.strip() for ln in block).removeprefix("held by ") == LONG
    # a break falls before a '.' or '[' of the path, never inside a name
    assert all(ln.strip()[0] in ".[" for ln in block[1:]), block
    for ln in out.splitlines():
        if ln.startswith("      "):  # every finding's lines fit, not only the path
            assert len(ln) <= 40, ln


def test_a_pipe_gets_one_line_per_finding_unless_columns_is_set(tmp_path):
    snap = _long_path_fixture(tmp_path)
    assert f"held by {LONG}" in _piped(snap)
    assert len(_held_by(_piped(snap, COLUMNS="50"))) > 1


def _drain(fd: int) -> str:
    """Everything written to the terminal so far (a pty may hand it over in pieces)."""
    out = b""
    while select.select([fd], [], [], 0.5)[0]:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        out += chunk
    return out.decode()


def test_the_progress_line_uses_no_escape_codes_on_a_dumb_terminal(monkeypatch):
    sys.path.insert(0, SRC)
    from reloadscope.cli.progress import Progress

    for term, escaped in (("dumb", False), ("xterm", True)):
        monkeypatch.setenv("TERM", term)
        leader, follower = os.openpty()
        try:
            with open(follower, "w", closefd=False) as stream:
                with Progress(stream, after=0) as progress:
                    progress("scanning 12 objects")
                stream.flush()
            out = _drain(leader)
        finally:
            os.close(follower)
            os.close(leader)
        assert "reloadscope: scanning 12 objects..." in out
        assert ("\x1b[" in out) is escaped, out
        assert out.endswith("\r") or escaped  # a dumb terminal's line is blanked, cursor home
