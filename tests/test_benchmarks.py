"""The benchmark scripts still run and still measure what the README says (no timing here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_scan_vs_floor_quick_finds_everything_in_both_placements():
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "scan_vs_floor.py"),
            "--quick",
            "--json",
            "--repeat",
            "1",
            "--objgraph-sample",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    for placement in ("apart", "inside"):
        f = figures[placement]
        assert f["alive"] == f["reported"] == 20, f
        assert f["entries"] == f["entries_with_module_path"] == 12, f
    # Apart from the big containers the first walk suffices; inside them it cannot.
    assert figures["apart"]["walks"] == 1
    assert figures["inside"]["walks"] == 2
    assert figures["inside"]["depths"][0] == figures["apart"]["depths"][0] + 1
