"""The timeline: per module and generation, what that generation still has alive (stale
objects, their bytes, and what only they keep alive), in the document, the text report and
the model, on every CPython here; old documents without it still load."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reloadscope.agent.server import socket_path
from reloadscope.model import Figures, Report
from reloadscope.snapshot import load
from reloadscope.textreport import render
from scenario import SRC, Scenario, pythons, version_id

FIXTURE = Path(__file__).parent / "fixtures" / "snapshot-v1.rsnap"

# Each reload keeps the old handler, the old class and one more old instance than the last,
# each instance holding a list that grows with its generation.
GROW = r'''
import rs, reloadscope
reloadscope.install(listen=False)
SOURCE = """
GEN = {n}
class Widget:
    def __init__(self):
        self.data = [GEN] * (200 * (GEN + 1))
def handler():
    return GEN
"""
rs.write("growplug.py", SOURCE.format(n=0))
import growplug
KEEP = []
for n in range(1, 4):
    KEEP.append(growplug.handler)
    KEEP.extend(growplug.Widget() for _ in range(n))
    rs.edit(growplug, SOURCE.format(n=n))
reloadscope.snapshot("grow.rsnap")
rs.report()
'''


def _check_growth(module: dict) -> list[dict]:
    gens = module["generations"]
    assert [g["number"] for g in gens] == [0, 1, 2, 3]
    for g in gens:
        mine = [s for s in module["stale"] if s["generation"] == g["number"]]
        # The figures are the entries' own, summed.
        assert g["stale"] == sum(s["count"] for s in mine)
        assert g["stale_bytes"] == sum(s["size"] for s in mine)
    assert [g["stale"] for g in gens] == [3, 4, 5, 0]  # handler, class, 1-2-3 instances
    kept = [g["retained_bytes"] for g in gens]
    assert all(isinstance(r, int) for r in kept), kept
    for g in gens:
        assert g["retained_bytes"] >= g["stale_bytes"]
        assert not g.get("retained_capped")
    # Each generation's instances hold 200 * (gen + 1) references in their lists: what only
    # they keep alive grows by more than that much storage each reload.
    assert kept[1] - kept[0] > 8 * 200 and kept[2] - kept[1] > 8 * 200, kept
    assert gens[3]["retained_bytes"] == 0
    return gens


@pytest.mark.parametrize("python", pythons(), ids=version_id)
def test_each_generation_counts_what_it_keeps_alive(tmp_path, python):
    r = Scenario(tmp_path, python).run(GROW)
    _check_growth(r.module("growplug"))
    # The same figures through the snapshot file and the model.
    report = load(tmp_path / "grow.rsnap")
    m = report.module("growplug")
    assert m is not None
    assert [g.stale for g in m.generations] == [3, 4, 5, 0]
    for g in m.generations:
        assert g.stale_bytes == sum(s.size for s in m.stale if s.generation == g.number)
        assert g.retained_bytes is not None and g.retained_bytes >= g.stale_bytes


def test_text_report_has_one_line_per_generation_with_stale_objects(tmp_path):
    Scenario(tmp_path).run(GROW)
    report = load(tmp_path / "grow.rsnap")
    text = render(report)
    m = report.module("growplug")
    assert m is not None
    lines = [ln for ln in text.splitlines() if re.match(r"  gen \d+ \(", ln)]
    assert len(lines) == 3, text  # generation 3 (current) has nothing alive
    for line, g in zip(lines, m.generations):
        assert line.startswith(f"  gen {g.number} ({g.kind} ")
        assert f"{g.stale} stale objects, {g.stale_bytes} B, retained {g.retained_bytes} B" in line


RUN_TARGET = r"""
import importlib, os, sys, time
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
path = os.path.join(here, "liveplug.py")
KEEP = []
for n in range(4):
    open(path, "w").write(f"def handler():\n    return {n}\n")
    t = time.time() + 10 * (n + 1)
    os.utime(path, (t, t))
    importlib.invalidate_caches()
    if n == 0:
        import liveplug
    else:
        KEEP.append(liveplug.handler)
        importlib.reload(liveplug)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def test_a_live_process_reports_its_timeline(tmp_path):
    """``reloadscope run`` a program that reloads three times, keeping each old handler;
    ``report PID`` (through its agent) gives each generation its one object."""
    (tmp_path / "t.py").write_text(RUN_TARGET)
    env = dict(os.environ, PYTHONPATH=SRC, PYTHONDONTWRITEBYTECODE="1")
    p = subprocess.Popen(
        [sys.executable, "-m", "reloadscope", "run", str(tmp_path / "t.py")],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
        deadline = time.time() + 10
        while not os.path.exists(socket_path(p.pid)) and time.time() < deadline:
            time.sleep(0.05)
        out = subprocess.run(
            [sys.executable, "-m", "reloadscope", "report", str(p.pid), "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        (m,) = [m for m in doc["modules"] if m["name"] == "liveplug"]
        gens = m["generations"]
        assert [g["stale"] for g in gens] == [1, 1, 1, 0]
        for g in gens[:3]:
            (entry,) = [s for s in m["stale"] if s["generation"] == g["number"]]
            assert g["stale_bytes"] == entry["size"]
            assert g["retained_bytes"] >= g["stale_bytes"]
        text = subprocess.run(
            [sys.executable, "-m", "reloadscope", "report", str(p.pid)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        ).stdout
        line = r"^  gen 2 \(reload \S+\): 1 stale object, \d+ B, retained \d+ B$"
        assert re.search(line, text, re.M), text
    finally:
        p.kill()
        p.wait()


def test_an_old_snapshot_without_the_timeline_still_loads():
    report = load(FIXTURE)
    m = report.module("demo_greeter")
    assert m is not None
    g0 = m.generations[0]
    # Counted from its entries; what they retain was not measured then.
    assert g0.stale == m.stale_count == 5
    assert g0.stale_bytes == sum(s.size for s in m.stale)
    assert g0.retained_bytes is None
    assert "retained not measured" in render(report)


def test_the_model_reads_the_fields_tolerantly():
    doc = load(FIXTURE).to_json()
    g = doc["modules"][0]["generations"][0]
    g.update(stale=2, stale_bytes=300, retained_bytes=None, retained_capped=True, future=1)
    doc["modules"][0]["unknown_generation"] = {"stale": 1, "stale_bytes": 50, "retained_bytes": 80}
    m = Report.from_json(doc).modules[0]
    assert m.generations[0].figures == Figures(2, 300, None, True)
    assert m.unknown_generation == Figures(1, 50, 80)
    assert "gen ? (before recording): 1 stale object, 50 B, retained 80 B" in render(
        Report.from_json(doc)
    )
    g["stale"] = "two"
    with pytest.raises(ValueError, match="stale"):
        Report.from_json(doc)
