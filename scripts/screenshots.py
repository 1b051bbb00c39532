"""Make every SVG in screenshots/ from real runs: the real app, attached live to real programs
that really edit and reload their plugins.  Nothing here is drawn by hand.

- overview, paths, diff, help: ``reloadscope demo``'s scenario (its plugin edited and
  reloaded once) in a program of its own, attached live;
- follow: the same program, attached, then told to reload again: the UI rescans by itself,
  with no key pressed, and marks what changed;
- timeline: a plugin host that registers the plugin's handler and subscribers again after
  every reload and never removes the old ones, reloaded three times, attached live.

Each program runs from a temporary directory under a relative name and records with its own
agent (``reloadscope.install()``), so nothing of this machine's paths reaches a picture.

    python scripts/screenshots.py            # rewrite screenshots/*.svg
    python scripts/screenshots.py --out DIR  # write them elsewhere (the test compares)

tests/test_screenshots.py makes them again and fails when a committed SVG's text differs from
what the current UI draws (``normalized_text``), or when a path of the machine is in one.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "screenshots"
SIZE = (120, 36)
NAMES = ("overview", "paths", "diff", "help", "follow", "timeline")

# The demo's app (reloadscope.cli.demo's plugin, app and edit), then one more reload for each
# line on stdin: generation n+1 of demo_greeter, with the old instance kept.
DEMO_HOST = r"""
import importlib, os, sys, textwrap, time
import reloadscope
from reloadscope.cli.demo import APP, GREETER_V1, GREETER_V2

def write(name, text, bump):
    with open(name, "w") as fh:
        fh.write(textwrap.dedent(text))
    os.utime(name, (time.time() + bump, time.time() + bump))
    importlib.invalidate_caches()

sys.path.insert(0, ".")
write("demo_greeter.py", GREETER_V1, 0)
write("demo_app.py", APP, 0)
reloadscope.install()
import demo_greeter, demo_app
write("demo_greeter.py", GREETER_V2, 10)
importlib.reload(demo_greeter)
guests = []
print("ready", flush=True)
for n, line in enumerate(sys.stdin, 2):
    guests.append(demo_greeter.Greeter("Grace"))  # made by this generation, kept past the next
    write("demo_greeter.py", GREETER_V2.replace("Hi there", f"Welcome back ({n})"), 10 * n)
    importlib.reload(demo_greeter)
    print("reloaded", flush=True)
"""

# A plugin host that registers the plugin's handler and subscribers again after every reload
# and never removes the old ones.
GROWING_HOST = r'''
import importlib, os, sys, time
import reloadscope
reloadscope.install()
sys.path.insert(0, ".")
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
    with open("plugins_feed.py", "w") as fh:
        fh.write(SOURCE.format(n=n))
    t = time.time() + 10 * (n + 1)
    os.utime("plugins_feed.py", (t, t))
    importlib.invalidate_caches()
    if n == 0:
        import plugins_feed
    else:
        importlib.reload(plugins_feed)
    HANDLERS.append(plugins_feed.on_message)
    SUBSCRIBERS.extend(plugins_feed.Subscriber() for _ in range(n + 1))
print("ready", flush=True)
sys.stdin.read()
'''


class Host:
    """A program run from ``workdir`` under the relative name ``name`` (runpy compiles it
    under that name, and it is its argv), recording with its own agent."""

    def __init__(self, workdir: Path, name: str, source: str) -> None:
        from reloadscope.agent.server import socket_path

        (workdir / name).write_text(textwrap.dedent(source))
        run = (
            f"import runpy, sys; sys.argv = [{name!r}]; "
            f"runpy.run_path({name!r}, run_name='__main__')"
        )
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), PYTHONDONTWRITEBYTECODE="1")
        self.p = subprocess.Popen(
            [sys.executable, "-c", run],
            cwd=workdir,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.pid = self.p.pid
        assert self._line() == "ready"
        deadline = time.monotonic() + 60
        while not os.path.exists(socket_path(self.pid)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: its agent never listened")
            time.sleep(0.05)

    def _line(self) -> str:
        assert self.p.stdout is not None
        return self.p.stdout.readline().strip()

    def reload(self) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write("reload\n")
        self.p.stdin.flush()
        assert self._line() == "reloaded"

    def close(self) -> None:
        self.p.kill()
        self.p.wait()


async def _until(pilot, done: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"screenshots: {what} never showed")
        await pilot.pause(0.1)


async def _settle(app, pilot) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


async def shoot_demo(host: Host, out: dict[str, str]) -> None:
    from textual.widgets import Static

    from reloadscope.ui.app import ReloadScopeApp
    from reloadscope.ui.source import LiveSource

    app = ReloadScopeApp(LiveSource(host.pid))
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        follow = app.query_one("#follow", Static)
        await _until(pilot, lambda: "following:" in str(follow.render()), "following")
        out["overview"] = app.export_screenshot(title="overview")
        await pilot.press("down", "down")
        await pilot.pause()
        out["paths"] = app.export_screenshot(title="paths")
        await pilot.press("d")
        await pilot.pause()
        out["diff"] = app.export_screenshot(title="diff")
        await pilot.press("escape", "question_mark")
        await pilot.pause()
        out["help"] = app.export_screenshot(title="help")
        await pilot.press("escape", "up", "up")
        await pilot.pause()
        host.reload()  # no key pressed from here: the UI follows by itself
        await _until(pilot, lambda: "gen 2 of demo_greeter" in str(follow.render()), "a rescan")
        await _settle(app, pilot)
        out["follow"] = app.export_screenshot(title="follow")
        app.exit()


async def shoot_timeline(host: Host, out: dict[str, str]) -> None:
    from reloadscope.ui.app import ReloadScopeApp
    from reloadscope.ui.source import LiveSource

    app = ReloadScopeApp(LiveSource(host.pid))
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        await pilot.press("t")
        await pilot.pause()
        out["timeline"] = app.export_screenshot(title="timeline")
        app.exit()


def make(out_dir: Path) -> list[Path]:
    """Every screenshot, written to ``out_dir``; returns the files."""
    shots: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="reloadscope-shots-") as d:
        for name, source, shoot in (
            ("demo_host.py", DEMO_HOST, shoot_demo),
            ("plugin_host.py", GROWING_HOST, shoot_timeline),
        ):
            work = Path(d) / name.removesuffix(".py")
            work.mkdir()
            host = Host(work, name, source)
            try:
                asyncio.run(shoot(host, shots))
            finally:
                host.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in NAMES:
        path = out_dir / f"{name}.svg"
        path.write_text(shots[name])
        written.append(path)
    return written


# -- what the test compares --------------------------------------------------------------------

CHAR_W, LINE_H = 12.2, 24.4  # Textual's SVG: a cell is 12.2 wide, a line 24.4 high


def svg_text(svg: str) -> str:
    """The terminal's text, as it was on screen: each <text> put at its column and line."""
    rows: dict[int, dict[int, str]] = {}
    pattern = r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>'
    for m in re.finditer(pattern, svg):
        row = round(float(m.group(2)) / LINE_H)
        col = round(float(m.group(1)) / CHAR_W)
        rows.setdefault(row, {})[col] = html.unescape(m.group(3)).replace("\xa0", " ")
    lines = []
    for row in range(min(rows, default=0), max(rows, default=-1) + 1):
        line = ""
        for col, text in sorted(rows.get(row, {}).items()):
            line = line.ljust(col) + text
        lines.append(line.rstrip())
    return "\n".join(lines)


# What varies from run to run or machine to machine, and what it becomes.
VARIES = [
    (r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d)?", "<time>"),
    (r"\b\d\d:\d\d:\d\d\b", "<time>"),
    (r"\bpid \d+", "pid <pid>"),
    (r"\bprocess \d+", "process <pid>"),
    (r"\bPython \d+\.\d+\.\d+\S*", "Python <version>"),
    (r"\d+\.\d+ s\b", "<duration>"),
    (r"[\d,]+ objects\b", "<n> objects"),
    (r"RSS \d+ MiB, CPU \d+%", "<vitals>"),
    (r"\bsha [0-9a-f?]+", "sha <sha>"),
    (r"(?:>=)?\d+(?:\.\d+)? (?:B|kB|MB|GB)\b", "<bytes>"),
    (r"\b\d+ bytes\b", "<bytes>"),
    (r"█+", "█"),  # a bar's length follows bytes
    (r"[ \t]+", " "),  # columns move with the width of what varies
]


def normalized_text(svg: str) -> str:
    """``svg_text`` with what varies replaced: what the test compares."""
    text = svg_text(svg)
    for pattern, sub in VARIES:
        text = re.sub(pattern, sub, text)
    return "\n".join(line.strip() for line in text.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where to write (screenshots/)")
    args = parser.parse_args()
    for path in make(args.out):
        print(path)


if __name__ == "__main__":
    main()
