"""The README says only what the repository can back: every file it names exists, and every
section with a measured figure names the command that reproduces it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
TOP = ("src/", "tests/", "benchmarks/", "docs/", "scripts/", "screenshots/", "examples/", ".ci/")


def _named_files() -> set[str]:
    names = set()
    for m in re.finditer(
        r"[`(\s]((?:src|tests|benchmarks|docs|scripts|screenshots|examples|\.ci)/[\w./-]+)", README
    ):
        name = m.group(1).rstrip(".,)")
        names.add(name.split("::")[0])
    return names


def test_every_file_the_readme_names_exists():
    names = _named_files()
    assert len(names) > 10  # the pattern finds them
    missing = sorted(n for n in names if not (ROOT / n).exists())
    assert not missing, missing


FIGURE = re.compile(r"\b\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)?\s?(?:x|ms|MB)\b")


def _sections() -> list[tuple[str, str]]:
    parts = re.split(r"^(#{2,4} .*)$", README, flags=re.M)
    return [(parts[i].strip(), parts[i + 1]) for i in range(1, len(parts) - 1, 2)]


def test_every_section_with_a_measured_figure_names_its_command():
    unsourced = []
    for title, body in _sections():
        if "changelog" in title.lower():
            continue  # past figures, each given with its command where it was measured
        if FIGURE.search(body) and not re.search(
            r"python (?:-m \S+ )?benchmarks/|\.ci/run|time ", body
        ):
            unsourced.append((title, FIGURE.search(body).group(0)))
    assert not unsourced, unsourced
