"""The main screens, rendered and compared with stored SVGs (pytest-textual-snapshot).

After an intended UI change: ``python -m pytest tests/test_ui_snapshots.py --snapshot-update``
and look at the new files in tests/__snapshots__.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reloadscope.ui.app import ReloadScopeApp
from reloadscope.ui.source import FileSource

FIXTURE = Path(__file__).parent / "fixtures" / "snapshot-v1.rsnap"
SCREENS = {
    "overview": [],
    "paths": ["down", "down"],
    "timeline": ["t"],
    "diff": ["d"],
    "help": ["question_mark"],
    "fix": ["B"],  # a snapshot's plan: shown, not applicable
}


async def _settle(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()  # the tables' widths are fitted after the first layout


# 80x24 first (a terminal's default: the footer, the held-by column, the help must fit),
# and a large one.
SIZES = {"80x24": (80, 24), "160x45": (160, 45)}


@pytest.mark.parametrize("size", sorted(SIZES))
@pytest.mark.parametrize("screen", sorted(SCREENS))
def test_screen(snap_compare, screen, size):
    app = ReloadScopeApp(FileSource(FIXTURE))
    assert snap_compare(app, press=SCREENS[screen], terminal_size=SIZES[size], run_before=_settle)
