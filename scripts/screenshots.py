"""Regenerate screenshots/*.svg: the real app on the data of a real reload.

Runs ``reloadscope demo``'s scenario (a plugin really edited and reloaded), saves it as a
snapshot, opens the app on it, and saves four screens: overview, paths, generation diff, help.
The timeline comes from a second real process that reloads a plugin three times, keeping one
more old object each time.

    python scripts/screenshots.py
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path

from reloadscope.cli import demo
from reloadscope.snapshot import write
from reloadscope.ui.app import ReloadScopeApp
from reloadscope.ui.source import FileSource

OUT = Path(__file__).resolve().parent.parent / "screenshots"

# A plugin host that registers the plugin's handler and subscribers again after every reload
# and never removes the old ones.
GROWING = r'''
import importlib, os, sys, time
import reloadscope
reloadscope.install(listen=False)
here = sys.argv[1]
sys.path.insert(0, here)
path = os.path.join(here, "plugins_feed.py")
SOURCE = """
GEN = {n}
class Subscriber:
    def __init__(self):
        self.backlog = [str(i) for i in range(300 * (GEN + 1))]
def on_message(msg):
    return (GEN, msg)
"""
HANDLERS, SUBSCRIBERS = [], []
for n in range(4):
    open(path, "w").write(SOURCE.format(n=n))
    t = time.time() + 10 * (n + 1)
    os.utime(path, (t, t))
    importlib.invalidate_caches()
    if n == 0:
        import plugins_feed
    else:
        importlib.reload(plugins_feed)
    HANDLERS.append(plugins_feed.on_message)
    SUBSCRIBERS.extend(plugins_feed.Subscriber() for _ in range(n + 1))
reloadscope.snapshot(sys.argv[2])
'''


def make_snapshot(path: Path) -> None:
    def capture(report, as_json: bool) -> None:
        write(report, path)

    demo.print_report = capture  # type: ignore[assignment]
    demo.run(types.SimpleNamespace(json=True))


def make_growing_snapshot(workdir: Path, path: Path) -> None:
    src = str(Path(__file__).resolve().parent.parent / "src")
    env = dict(os.environ, PYTHONPATH=src, PYTHONDONTWRITEBYTECODE="1")
    host = workdir / "plugin_host.py"
    host.write_text(GROWING)
    subprocess.run(
        [sys.executable, str(host), str(workdir), str(path)], check=True, env=env, timeout=120
    )


async def shoot(snapshot: Path) -> None:
    app = ReloadScopeApp(FileSource(snapshot))
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        app.save_screenshot("overview.svg", str(OUT))
        await pilot.press("down", "down")
        await pilot.pause()
        app.save_screenshot("paths.svg", str(OUT))
        await pilot.press("d")
        await pilot.pause()
        app.save_screenshot("diff.svg", str(OUT))
        await pilot.press("escape", "question_mark")
        await pilot.pause()
        app.save_screenshot("help.svg", str(OUT))


async def shoot_timeline(snapshot: Path) -> None:
    app = ReloadScopeApp(FileSource(snapshot))
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("t")
        await pilot.pause()
        app.save_screenshot("timeline.svg", str(OUT))


def main() -> None:
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        snap = Path(d) / "demo.rsnap"
        make_snapshot(snap)
        asyncio.run(shoot(snap))
        growing = Path(d) / "growing.rsnap"
        make_growing_snapshot(Path(d), growing)
        asyncio.run(shoot_timeline(growing))
    for f in sorted(OUT.glob("*.svg")):
        print(f)


if __name__ == "__main__":
    main()
