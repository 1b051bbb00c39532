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


@pytest.fixture(params=["plain", "big-containers"])
def any_heap_scenario(request: pytest.FixtureRequest, tmp_path: Path) -> Scenario:
    """``scenario``, once as it is and once beside big unrelated containers: the scan must
    report the same either way (the second takes the pruned first walk)."""
    return Scenario(tmp_path, big_containers=request.param == "big-containers")
