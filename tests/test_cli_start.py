"""The command line starts quickly: what it imports, checked in real subprocesses (no timings
here; ``benchmarks/cli_start.py`` measures them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reloadscope.agent import server
from reloadscope.attach import client
from scenario import SRC

# Run main(argv) in a fresh interpreter and print the modules it imported (beyond what the
# interpreter had loaded before: site's .pth files differ between machines).
IMPORTED = """
import sys
before = set(sys.modules)
from reloadscope.cli import main
try:
    status = main(sys.argv[1:])
except SystemExit as e:
    status = e.code
new = sorted(set(sys.modules) - before)
print("@@", status, " ".join(new), file=sys.stderr)
"""

# Loaded by no command's start: the agent's engine, the UI, psutil, and what only some commands
# need (dataclasses pulls in inspect and ast; gzip the snapshot files).
NEVER_AT_START = [
    "reloadscope.agent",
    "reloadscope.agent.scan",
    "reloadscope.agent.recorder",
    "reloadscope.ui",
    "textual",
    "rich",
    "psutil",
    "dataclasses",
    "inspect",
    "ast",
    "typing",
    "gzip",
    "reloadscope.snapshot",
    "reloadscope.textreport",
]


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("RELOADSCOPE_")}
    return dict(e, PYTHONPATH=SRC, PYTHONDONTWRITEBYTECODE="1")


def imported(*argv: str, python: str = sys.executable) -> tuple[int, set[str], str]:
    p = subprocess.run(
        [python, "-c", IMPORTED, *argv], capture_output=True, text=True, env=env(), timeout=120
    )
    assert "@@" in p.stderr, p.stderr
    status, _, names = p.stderr.rsplit("@@ ", 1)[1].strip().partition(" ")
    return int(status or 0), set(names.split()), p.stdout


def assert_none_of(names: set[str], forbidden: list[str]) -> None:
    loaded = sorted({n for n in names for f in forbidden if n == f or n.startswith(f + ".")})
    assert not loaded, f"imported at start: {loaded}"


def test_version_imports_no_command_and_nothing_heavy():
    status, names, out = imported("--version")
    assert status == 0 and out.strip() == "reloadscope 0.1.0"
    assert_none_of(
        names,
        [
            *NEVER_AT_START,
            "reloadscope.model",
            "reloadscope.attach",
            "json",
            "socket",
            "threading",
            "pathlib",
            "shutil",
            "copy",
        ],
    )
    # No subcommand's module: each is imported only when its command runs.
    commands = sorted(n for n in names if n.startswith("reloadscope.cli."))
    assert commands == ["reloadscope.cli.errors", "reloadscope.cli.output"], commands


def test_help_lists_every_command_without_importing_them():
    status, names, out = imported("--help")
    assert status == 0
    from reloadscope.cli import COMMANDS

    for name, summary in COMMANDS.items():
        assert name in out and summary in " ".join(out.split()), (name, out)
    # (On 3.14+ argparse's colours bring dataclasses along: help is written, not skipped.)
    heavy = {"dataclasses", "inspect", "ast", "typing"}
    assert_none_of(
        names,
        [n for n in NEVER_AT_START if n not in heavy]
        + ["reloadscope.cli.report", "reloadscope.cli.demo"],
    )


def test_a_command_imports_only_its_own_module():
    status, names, _ = imported("report", "--help")
    assert status == 0
    commands = {n for n in names if n.startswith("reloadscope.cli.")} - {
        "reloadscope.cli.errors",
        "reloadscope.cli.output",
        "reloadscope.cli.progress",
        "reloadscope.cli.target",
    }
    assert commands == {"reloadscope.cli.report"}, commands


def test_importing_reloadscope_loads_nothing_of_it_yet_and_its_names_still_work():
    code = textwrap.dedent(
        """
        import sys
        before = set(sys.modules)
        import reloadscope
        print(sorted(set(sys.modules) - before))
        from reloadscope import Report, ReportError, SnapshotError
        from reloadscope.snapshot import load  # the submodule must not hide snapshot()
        print(callable(reloadscope.snapshot) and reloadscope.snapshot.__name__ == "snapshot")
        print(issubclass(SnapshotError, ValueError), Report.__name__, ReportError.__name__)
        print(reloadscope.agent.__name__, reloadscope.model.__name__)
        """
    )
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env(), timeout=60
    )
    assert p.returncode == 0, p.stderr
    first, *rest = p.stdout.splitlines()
    assert [n for n in eval(first) if n.startswith("reloadscope")] == ["reloadscope"], first
    assert rest == ["True", "True Report ReportError", "reloadscope.agent reloadscope.model"]


TARGET = """
import sys
import reloadscope
reloadscope.install(listen=True)
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def listening(tmp_path: Path):
    """A small process whose agent listens (``install(listen=True)``)."""
    p = subprocess.Popen(
        [sys.executable, "-c", TARGET],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env(),
        cwd=tmp_path,
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    yield p
    p.kill()
    p.wait()


def test_report_pid_json_loads_neither_the_agent_nor_psutil_nor_dataclasses(listening):
    status, names, out = imported("report", str(listening.pid), "--json")
    assert status == 0
    assert json.loads(out)["process"]["pid"] == listening.pid
    assert_none_of(names, NEVER_AT_START)
    assert "reloadscope.model" in names  # it is needed: the document is checked


def test_the_client_names_sockets_and_speaks_the_protocol_as_the_agent_does():
    # attach/client.py has its own copy, so that a client never imports the agent package.
    assert client.PROTOCOL == server.PROTOCOL
    assert client.FOLLOW == server.FOLLOW
    assert client.INIT_PID_NS == server.INIT_PID_NS
    for uid in (None, 0, 1000):
        assert client.runtime_dir(uid) == server.runtime_dir(uid)
    for pid, ns in ((1, None), (4242, server.INIT_PID_NS), (4242, 4026532999), (7, 0)):
        assert client.socket_name(pid, ns) == server.socket_name(pid, ns)


def test_help_is_argparses_at_any_width():
    # The CLI's help formatter finds the width without shutil, as shutil would.
    from reloadscope import cli

    for columns in (None, "0", "37", "200", "x"):
        e = dict(os.environ)
        e.pop("COLUMNS", None)
        if columns is not None:
            e["COLUMNS"] = columns
        code = (
            "import shutil, reloadscope.cli as c; "
            "print(c._columns(), shutil.get_terminal_size().columns)"
        )
        p = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=dict(e, PYTHONPATH=SRC),
            timeout=60,
        )
        ours, theirs = p.stdout.split()
        assert ours == theirs, (columns, p.stdout, p.stderr)
    # Stand-ins show the same top-level help as the full parsers.
    assert cli.build_parser([]).format_help() == cli.build_parser().format_help()


@pytest.mark.skipif(
    not os.access(Path(sys.executable).parent / "reloadscope", os.X_OK),
    reason="no reloadscope console script next to this interpreter",
)
def test_the_console_script_starts_the_same_way():
    script = Path(sys.executable).parent / "reloadscope"
    p = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, env=env(), timeout=60
    )
    assert p.returncode == 0 and p.stdout.strip() == "reloadscope 0.1.0", p.stderr
    # pip's wrapper runs reloadscope.cli's main, which the tests above look at.
    assert "from reloadscope.cli import main" in script.read_text()
