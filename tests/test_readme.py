"""The README and the docs say only what the repository can back: every file they name exists,
every relative link leads somewhere, and every section with a measured figure names the command
that reproduces it.  (tests/test_docs_examples.py runs their examples.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = sorted((ROOT / "docs").rglob("*.md"))
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *DOCS]
TOP = ("src/", "tests/", "benchmarks/", "docs/", "scripts/", "screenshots/", "examples/", ".ci/")


def _id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _named_files(text: str) -> set[str]:
    names = set()
    for m in re.finditer(
        r"[`(\s]((?:src|tests|benchmarks|docs|scripts|screenshots|examples|\.ci)/[\w./-]+)", text
    ):
        name = m.group(1).rstrip(".,)")
        names.add(name.split("::")[0])
    return names


def test_every_file_the_readme_names_exists():
    names = _named_files(README)
    assert len(names) > 10  # the pattern finds them
    missing = sorted(n for n in names if not (ROOT / n).exists())
    assert not missing, missing


def test_every_file_the_docs_name_exists():
    named = {(_id(p), n) for p in PAGES for n in _named_files(p.read_text(encoding="utf-8"))}
    assert len(named) > 40
    missing = sorted((page, n) for page, n in named if not (ROOT / n).exists())
    assert not missing, missing


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_every_relative_link_leads_somewhere(page: Path) -> None:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for m in re.finditer(r"\]\(([^)\s]+)\)", text):
        target = m.group(1).split("#")[0]
        if not target or re.match(r"\w+:", target):
            continue  # an anchor on the same page, or a URL
        if not (page.parent / target).exists():
            broken.append(m.group(1))
    assert not broken, broken


FIGURE = re.compile(r"\b\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)?\s?(?:x|ms|MB)\b")
COMMAND = re.compile(r"python (?:-m \S+ )?benchmarks/|\.ci/run|time ")


def _sections(text: str, levels: str = "2,4") -> list[tuple[str, str]]:
    parts = re.split(rf"^(#{{{levels}}} .*)$", text, flags=re.M)
    return [(parts[i].strip(), parts[i + 1]) for i in range(1, len(parts) - 1, 2)]


def _unsourced(sections: list[tuple[str, str]]) -> list[tuple[str, str]]:
    unsourced = []
    for title, body in sections:
        if "changelog" in title.lower():
            continue  # past figures, each given with its command where it was measured
        if FIGURE.search(body) and not COMMAND.search(body):
            unsourced.append((title, FIGURE.search(body).group(0)))
    return unsourced


def test_every_section_with_a_measured_figure_names_its_command():
    assert not _unsourced(_sections(README))


@pytest.mark.parametrize("page", DOCS, ids=_id)
def test_every_docs_section_with_a_measured_figure_names_its_command(page: Path) -> None:
    # A page's title counts as a section too: its text before the first subsection.
    assert not _unsourced(_sections(page.read_text(encoding="utf-8"), "1,4"))
