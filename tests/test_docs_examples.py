"""Every code example in the README and the docs runs here.

Each ```python block runs, in page order, in a directory of the page's own (where the
repository's ``examples/`` is at hand and ``reloadscope``, ``python`` and ``pytest`` are this
checkout's).  An HTML comment on the line above a block says what else to do with it
(docs/contributing.md lists the markers): ``file: NAME`` writes it there, ``run`` runs a ``sh``
block, ``output: COMMAND`` checks a block against what COMMAND prints, ``session`` runs a shell
session and checks each command's output, ``ipython`` types a transcript's cells into a real
terminal IPython and checks what it shows, ``not run: REASON`` leaves a block out and says why.
Every ```json block must parse, and every other block (but MyST directives, ```{name}) must be
run, checked or marked ``not run``.  Output is compared line by line, in order: ``...`` alone
stands for any lines and within a line for any text, and numbers (sizes, times, PIDs,
versions) may differ.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
MARKER = re.compile(r"^<!--\s*([\w ]+?)(?::\s*(.*?))?\s*-->\s*$")
PID = "4242"  # what the docs write for the PID of the process a session started


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    text: str
    marker: str | None
    argument: str | None

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    out = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(`{3,})(\S*)", lines[i])
        if not m:
            i += 1
            continue
        fence, lang, start = m.group(1), m.group(2), i
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith(fence))
        marker = argument = None
        if start > 0 and (mm := MARKER.match(lines[start - 1])):
            marker, argument = mm.group(1).strip(), mm.group(2)
        text = "\n".join(lines[start + 1 : end]) + "\n"
        out.append(Block(page, start + 1, lang, text, marker, argument))
        i = end + 1
    return out


ALL = [b for page in PAGES for b in blocks(page)]
RUN = [
    b
    for b in ALL
    if b.lang == "python" or b.marker in ("run", "output", "session", "file", "ipython")
]


def _normal(line: str) -> str:
    """Numbers (with the blanks before them, which right-aligned columns vary) become `` N``."""
    return re.sub(r"\s*\d+(?:[.,]\d+)*", " N", line.rstrip())


def _pattern(line: str) -> re.Pattern[str]:
    """An expected line as a pattern: numbers as :func:`_normal` makes them, and ``...`` in a
    line (a path's start, a long command) stands for any text."""
    return re.compile(".*".join(re.escape(part) for part in _normal(line).split("...")))


def shown_in(expected: str | list[str], got: str | list[str], where: object) -> None:
    """Each expected line appears in ``got`` in order (numbers aside); ``...`` is any lines."""
    exp = expected.splitlines() if isinstance(expected, str) else expected
    lines = [_normal(x) for x in (got.splitlines() if isinstance(got, str) else got)]
    at = 0
    for line in exp:
        if line.strip() == "...":
            continue
        want = _pattern(line)
        found = next((i for i in range(at, len(lines)) if want.fullmatch(lines[i])), None)
        assert found is not None, (
            f"{where}: {line!r} is not in what was printed (after line {at}):\n" + "\n".join(lines)
        )
        at = found + 1


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of commands that are this checkout's: reloadscope, python, pytest."""
    bin_dir = tmp_path_factory.mktemp("bin")
    for name, run in [
        ("reloadscope", "-m reloadscope"),
        ("python", ""),
        ("pytest", "-m pytest"),
    ]:
        path = bin_dir / name
        path.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {run} "$@"\n')
        path.chmod(0o755)
    return bin_dir


_workdirs: dict[Path, Path] = {}


def workdir(page: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page's own directory, the same for all its blocks (they run in page order)."""
    if page not in _workdirs:
        d = tmp_path_factory.mktemp(page.stem)
        (d / "examples").symlink_to(ROOT / "examples")
        _workdirs[page] = d
    return _workdirs[page]


def environ(tools: Path, cwd: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELOADSCOPE_", "PYTEST_"))}
    env["PATH"] = f"{tools}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(cwd)])
    env["NO_COLOR"] = "1"
    env.pop("COLUMNS", None)  # pytest then writes 80 columns, as the pages show it
    env.pop("PYTHONBREAKPOINT", None)
    return env


def test_the_pages_have_examples_and_every_marker_is_known():
    assert len([b for b in ALL if b.lang == "python"]) >= 5
    known = {"file", "run", "output", "session", "ipython", "not run"}
    unknown = [(str(b), b.marker) for b in ALL if b.marker and b.marker not in known]
    assert not unknown, unknown
    skipped = [b for b in ALL if b.marker == "not run"]
    assert all(b.argument for b in skipped), "'not run' needs a reason"


def test_every_block_is_run_or_checked_or_says_why_not():
    left = [
        str(b)
        for b in ALL
        if b not in RUN
        and b.lang != "json"
        and b.marker != "not run"
        and not b.lang.startswith("{")
    ]
    assert not left, f"neither run nor checked, nor marked 'not run: REASON': {left}"


@pytest.mark.parametrize("block", [b for b in ALL if b.lang == "json"], ids=str)
def test_every_json_block_parses(block: Block) -> None:
    json.loads(block.text)


@pytest.mark.parametrize("block", RUN, ids=str)
def test_example(block: Block, tools: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    cwd = workdir(block.page, tmp_path_factory)
    env = environ(tools, cwd)
    if block.marker == "not run":
        pytest.skip(block.argument)
    for earlier in ALL:  # the files this block may use (also when it runs alone)
        if earlier.page == block.page and earlier.marker == "file" and earlier.line < block.line:
            (cwd / earlier.argument).write_text(earlier.text)  # type: ignore[operator]
    if block.marker == "file":
        (cwd / block.argument).write_text(block.text)  # type: ignore[operator]
    elif block.marker == "output":
        done = _sh(block.argument, cwd, env)
        assert done.returncode == 0, f"{block}: {block.argument}\n{done.stdout}{done.stderr}"
        shown_in(block.text, done.stdout, block)
    elif block.marker == "session":
        _session(block, cwd, env)
    elif block.marker == "ipython":
        _ipython(block, cwd, env)
    elif block.lang == "python":
        script = cwd / f"example_{block.line}.py"
        script.write_text(block.text)
        done = subprocess.run(
            [sys.executable, script.name],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, f"{block} failed:\n{done.stdout}{done.stderr}"
    else:
        assert block.lang == "sh", f"{block}: 'run' is for sh blocks"
        done = _sh(block.text, cwd, env)
        assert done.returncode == 0, f"{block} failed:\n{done.stdout}{done.stderr}"


def _sh(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


def _session(block: Block, cwd: Path, env: dict[str, str]) -> None:
    """``$ COMMAND`` lines and what each prints.  ``COMMAND &`` starts a process in the
    background (its PID stands in for 4242 afterwards) and reads as many lines of its output
    as the block shows; ``kill -SIG 4242`` signals it and reads the lines shown after it."""
    steps: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            assert steps, f"{block}: output before the first '$ ' command"
            steps[-1][1].append(line)
    background: subprocess.Popen[str] | None = None
    pid = None
    try:
        for command, shown in steps:
            if pid:
                command = command.replace(PID, pid)
            if command.endswith("&"):
                background, pid = _start(shlex.split(command[:-1]), cwd, env)
                got = _read(background, shown)
            elif (m := re.fullmatch(r"kill -(\w+) (\d+)", command)) and m.group(2) == pid:
                os.kill(int(pid), getattr(signal, "SIG" + m.group(1)))
                got = _read(background, shown)  # type: ignore[arg-type]
            else:
                done = _sh(command, cwd, env)
                assert done.returncode == 0, f"{block}: {command}\n{done.stdout}{done.stderr}"
                got = done.stdout.splitlines()
            shown_in(shown, [x.replace(pid, PID) if pid else x for x in got], f"{block} {command}")
    finally:
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid), signal.SIGKILL)  # it and whatever it started (workers)
        if background is not None:
            background.communicate()


def _start(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """``COMMAND &`` as a shell starts it: its parent is not this Python process (so ``ps
    --tree`` draws it at the top, as for a reader), in a session and process group of its own
    (so that it and its children can be killed together).  ``setsid -f`` forks and returns;
    the process writes its PID on a pipe and becomes COMMAND.  Its output comes on the pipes
    of the returned Popen (setsid's, which it inherited)."""
    r, w = os.pipe()
    script = f'echo $$ >&{w}; exec {w}>&-; exec "$@"'
    try:
        starter = subprocess.Popen(
            ["setsid", "-f", "bash", "-c", script, "bash", *argv],
            cwd=cwd,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            pass_fds=(w,),
        )
    finally:
        os.close(w)
    with os.fdopen(r) as pipe:
        pid = pipe.readline().strip()
    assert starter.wait(timeout=30) == 0 and pid.isdigit(), f"{argv} did not start"
    return starter, pid


def _read(process: subprocess.Popen[str], shown: list[str]) -> list[str]:
    assert process.stdout is not None
    return [process.stdout.readline().rstrip("\n") for _ in shown]


def _ipython(block: Block, cwd: Path, env: dict[str, str]) -> None:
    """A terminal IPython transcript: each ``In [N]: CODE`` line is typed into a real terminal
    IPython (``--no-banner --colors=nocolor``, in tmux) once ``In [N]:`` shows, and the block's
    lines are checked against the whole terminal, scrollback included, as for ``output``."""
    pytest.importorskip("IPython")
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    cells = [
        (m.group(1), m.group(2))
        for line in block.text.splitlines()
        if (m := re.fullmatch(r"(In \[\d+\]:) (.*)", line))
    ]
    assert cells, f"{block}: no 'In [N]: ' line"
    env = dict(env, IPYTHONDIR=str(cwd / ".ipython"), TERM="xterm-256color")
    command = " ".join(
        ["env", *(shlex.quote(f"{k}={v}") for k, v in env.items()), shlex.quote(sys.executable)]
    )
    # A tmux server of its own (unique: pids come round again, a killed run's may live on).
    tmux = ["tmux", "-L", f"rs-docs-{os.getpid()}-{uuid.uuid4().hex[:8]}"]
    screen = [*tmux, "capture-pane", "-p", "-J", "-S", "-", "-t", "ipython"]

    def wait_for(text: str) -> str:
        deadline = time.monotonic() + 60
        while True:
            shown = subprocess.run(screen, capture_output=True, text=True).stdout
            if text in shown:
                return shown
            assert time.monotonic() < deadline, f"{block}: {text!r} never showed:\n{shown}"
            time.sleep(0.2)

    ipython = f"{command} -m IPython --no-banner --colors=nocolor; sleep 60"
    size = ["-x", "200", "-y", "50"]
    subprocess.run([*tmux, "new-session", "-d", "-s", "ipython", *size, "-c", str(cwd), ipython])
    try:
        for prompt, code in cells:
            wait_for(prompt)
            subprocess.run([*tmux, "send-keys", "-t", "ipython", "-l", code], check=True)
            subprocess.run([*tmux, "send-keys", "-t", "ipython", "Enter"], check=True)
        number = int(re.sub(r"\D", "", cells[-1][0])) + 1
        shown = wait_for(f"In [{number}]:")
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    shown_in(block.text, shown, block)
