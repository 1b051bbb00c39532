"""Regenerate screenshots/*.svg: the real app on the data of a real reload.

Runs ``reloadscope demo``'s scenario (a plugin really edited and reloaded), saves it as a
snapshot, opens the app on it, and saves four screens: overview, paths, generation diff, help.

    python scripts/screenshots.py
"""

from __future__ import annotations

import asyncio
import tempfile
import types
from pathlib import Path

from reloadscope.cli import demo
from reloadscope.snapshot import write
from reloadscope.ui.app import ReloadScopeApp
from reloadscope.ui.source import FileSource

OUT = Path(__file__).resolve().parent.parent / "screenshots"


def make_snapshot(path: Path) -> None:
    def capture(report, as_json: bool) -> None:
        write(report, path)

    demo.print_report = capture  # type: ignore[assignment]
    demo.run(types.SimpleNamespace(json=True))


async def shoot(snapshot: Path) -> None:
    app = ReloadScopeApp(FileSource(snapshot))
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        app.save_screenshot("overview.svg", str(OUT))
        await pilot.press("tab", "down", "down")
        await pilot.pause()
        app.save_screenshot("paths.svg", str(OUT))
        await pilot.press("d")
        await pilot.pause()
        app.save_screenshot("diff.svg", str(OUT))
        await pilot.press("escape", "question_mark")
        await pilot.pause()
        app.save_screenshot("help.svg", str(OUT))


def main() -> None:
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        snap = Path(d) / "demo.rsnap"
        make_snapshot(snap)
        asyncio.run(shoot(snap))
    for f in sorted(OUT.glob("*.svg")):
        print(f)


if __name__ == "__main__":
    main()
