from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scenario import Scenario


@pytest.fixture
def scenario(tmp_path: Path) -> Scenario:
    """A fresh directory and interpreter for one reload scenario."""
    return Scenario(tmp_path)


@pytest.fixture(params=["plain", "big-containers", "bulk-instances"])
def any_heap_scenario(request: pytest.FixtureRequest, tmp_path: Path) -> Scenario:
    """``scenario``, as it is, beside big unrelated containers, and beside them with every
    stale class's instances counted in bulk: the scan must report the same each way (the
    second takes the pruned first walk, the third finds the instances it shows by class)."""
    return Scenario(
        tmp_path,
        big_containers=request.param != "plain",
        bulk_instances=request.param == "bulk-instances",
    )


def pytest_report_header(config: pytest.Config) -> str:
    from scenario import python_versions

    found = python_versions()
    return "CPythons taking part as targets: " + ", ".join(
        f"{v} ({exe})" for v, exe in found.items()
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from scenario import python_versions

    versions = ", ".join(python_versions())
    running = "{}.{}".format(*sys.version_info[:2])
    terminalreporter.write_line(
        f"reloadscope: pytest ran on CPython {running}; target CPythons covered: {versions}"
    )
