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
