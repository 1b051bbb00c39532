"""screenshots/*.svg are made by scripts/screenshots.py from real runs, never kept by hand:
made again here, their text must be what the committed ones show (what varies from run to
run normalized: PIDs, times, durations, sizes), and no path of this machine may be in one.

After an intended UI change: ``python scripts/screenshots.py``, and look at the pictures."""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "screenshots"
SCRIPT = ROOT / "scripts" / "screenshots.py"

spec = importlib.util.spec_from_file_location("screenshots_script", SCRIPT)
assert spec is not None and spec.loader is not None
screenshots = importlib.util.module_from_spec(spec)
spec.loader.exec_module(screenshots)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shots")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return out


def test_every_screenshot_is_one_the_script_makes():
    assert sorted(p.stem for p in SHOTS.glob("*.svg")) == sorted(screenshots.NAMES)


def _made_on(svg: str) -> str | None:
    found = re.search(r"Python (\d+\.\d+)\.", screenshots.svg_text(svg))
    return found.group(1) if found else None


@pytest.mark.parametrize("name", screenshots.NAMES)
def test_the_committed_screenshot_is_what_the_ui_draws_now(fresh, name):
    committed = (SHOTS / f"{name}.svg").read_text()
    made_on = _made_on((SHOTS / "overview.svg").read_text())
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if made_on != here:  # object sizes differ between CPythons, and with them the columns
        pytest.skip(f"the screenshots were made on CPython {made_on}, this is {here}")
    want = screenshots.normalized_text(committed)
    got = screenshots.normalized_text((fresh / f"{name}.svg").read_text())
    diff = "\n".join(
        difflib.unified_diff(
            want.splitlines(), got.splitlines(), "committed", "drawn now", lineterm=""
        )
    )
    assert want == got, (
        f"screenshots/{name}.svg is not what the UI draws now; run "
        f"'python scripts/screenshots.py' and look at it:\n{diff}"
    )


def _machine_paths() -> list[str]:
    """Paths of this machine a picture must not show."""
    found = {str(ROOT), tempfile.gettempdir() + "/", str(Path.home()) + "/", "/work/", "/tmp/"}
    found |= {str(Path(os.getcwd()))} - {"/"}
    return sorted(found)


# An absolute path under a directory that names a machine, a user or a checkout.
ABSOLUTE = re.compile(r"(?<![\w.~-])/(?:tmp|work|home|root|Users|var|private|opt|srv)/[\w.-]+")


@pytest.mark.parametrize("where", ["committed", "fresh"])
def test_no_path_of_this_machine_is_in_a_screenshot(fresh, where):
    folder = SHOTS if where == "committed" else fresh
    for name in screenshots.NAMES:
        svg = (folder / f"{name}.svg").read_text()
        text = screenshots.svg_text(svg)
        for path in _machine_paths():
            assert path not in svg and path not in text, f"{name}.svg shows {path}"
        found = ABSOLUTE.search(text)
        assert found is None, f"{name}.svg shows the path {found.group(0)}"


def test_the_text_comparison_ignores_what_varies_and_sees_what_does_not():
    """Two runs differ in PIDs, times, durations, counts of objects and sizes: normalized,
    they are the same; a changed word is not."""
    one = screenshots.normalized_text((SHOTS / "follow.svg").read_text())
    svg = (SHOTS / "follow.svg").read_text()
    other = re.sub(r"pid&#160;\d+", "pid&#160;4242", svg)
    other = other.replace("following:", "followin:")
    assert "pid <pid>" in one and "<n> objects" in one and "<vitals>" in one
    assert screenshots.normalized_text(other) != one
    back = other.replace("followin:", "following:")
    assert screenshots.normalized_text(back) == one
