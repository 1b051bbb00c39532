"""The command line, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scenario import SRC


def rs(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "reloadscope", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_demo_reports_the_stale_copy_and_leftover_name():
    p = rs("demo")
    assert p.returncode == 0, p.stderr
    assert "demo_app.greet" in p.stdout
    assert "leftover names: shout" in p.stdout
    assert "\x1b[" not in p.stdout  # no colour when stdout is not a terminal


def test_demo_json_is_the_report_document_and_nothing_else():
    p = rs("demo", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["format"] == "reloadscope-report" and doc["version"] == 1
    (mod,) = [m for m in doc["modules"] if m["name"] == "demo_greeter"]
    texts = {p["text"] for s in mod["stale"] for p in s["paths"]}
    assert {"demo_app.greet", "demo_app.visitor", "demo_app.on_login[0].__func__"} <= texts


def test_bad_arguments_give_one_error_line_and_exit_2():
    p = rs("no-such-command")
    assert p.returncode == 2
    assert p.stderr.startswith("reloadscope: error: ")
    assert len(p.stderr.strip().splitlines()) == 1
    assert "Traceback" not in p.stderr


def test_help_lists_the_commands():
    p = rs("--help")
    assert p.returncode == 0
    assert "demo" in p.stdout


def test_open_and_attach_without_a_terminal_suggest_report():
    fixture = str(Path(__file__).parent / "fixtures" / "snapshot-v1.rsnap")
    for args, suggestion in (
        (("open", fixture), f"reloadscope report {fixture}"),
        (("attach", "1"), "reloadscope report 1"),
    ):
        p = rs(*args)
        assert p.returncode == 2, p.stderr
        assert p.stderr.startswith("reloadscope: error: ") and "needs a terminal" in p.stderr
        assert suggestion in p.stderr and len(p.stderr.splitlines()) == 1
        assert p.stdout == ""


def test_report_text_and_str_are_what_report_prints():
    fixture = str(Path(__file__).parent / "fixtures" / "snapshot-v1.rsnap")
    p = rs("report", fixture)
    assert p.returncode == 0, p.stderr
    sys.path.insert(0, SRC)
    try:
        import reloadscope

        report = reloadscope.load(fixture)
    finally:
        sys.path.remove(SRC)
    assert report.stale_count > 0  # a report with findings, not the empty summary
    assert report.text() == p.stdout
    assert str(report) == p.stdout
    assert isinstance(report.to_json(), dict)


def test_help_teaches_every_option_of_every_command():
    sys.path.insert(0, SRC)
    try:
        import argparse

        from reloadscope.cli import build_parser
    finally:
        sys.path.remove(SRC)
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert {"attach", "open", "report", "snapshot", "ps", "run", "demo"} <= set(sub.choices)
    for name, command in sub.choices.items():
        assert command.description, name
        shown = rs(name, "--help")
        assert shown.returncode == 0, shown.stderr
        for action in command._actions:
            assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)
            for option in action.option_strings:
                assert option in shown.stdout, (name, option)


def test_help_says_the_default_collects_garbage_in_the_target():
    for command in ("report", "snapshot"):
        shown = " ".join(rs(command, "--help").stdout.split())
        assert "by default the process runs gc.collect() before the scan" in shown, command
