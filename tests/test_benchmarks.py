"""The benchmark scripts still run and still measure what the README says (no timing here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_scan_shapes_quick_reports_every_stale_object_at_the_full_walks_depth():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "scan_shapes.py"), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    runs = {r["shape"]: r for r in figures["runs"]}
    assert set(runs) == {
        "one-class",
        "one-class-deep",
        "many-classes",
        "many-functions",
        "inside",
        "apart",
    }
    can_reset_peak = os.access("/proc/self/clear_refs", os.W_OK)
    for shape, r in runs.items():
        assert "error" not in r, (shape, r, out.stderr)
        assert r["reloadscope"] == str(ROOT / "src" / "reloadscope"), r
        assert sum(r["alive"].values()) > 0, r
        assert r["reported"] == r["alive"], (shape, r)
        assert r["entries"] == r["entries_with_module_path"] > 0, (shape, r)
        assert r["depth_mismatches"] == 0, (shape, r["mismatches"])
        assert r["problems"] == [] and r["ok"], (shape, r["problems"])
        for key in ("stall_scan_ms", "stall_get_objects_ms", "stall_ratio"):
            assert isinstance(r[key], (int, float)) and r[key] > 0, (shape, key, r[key])
        for key in ("rss_mb", "mem_extra_mb", "mem_extra_pct"):
            if can_reset_peak:
                assert isinstance(r[key], (int, float)) and r[key] >= 0, (shape, key, r[key])
            else:
                assert r[key] is None, (shape, key, r[key])
    # The stale objects placed are all alive (the benchmark holds them only weakly).
    assert runs["many-classes"]["alive"] == {"class": 20}
    assert runs["many-functions"]["alive"] == {"function": 20}
    assert runs["one-class"]["alive"] == {"instance": 20, "class": 1}
    for shape in ("inside", "apart"):
        assert runs[shape]["alive"] == {"function": 10, "instance": 10, "class": 1}


def test_stale_instances_quick_counts_them_in_bulk_and_searches_only_the_samples():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "stale_instances.py"), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    (r,) = figures["runs"]
    assert "error" not in r, (r, out.stderr)
    assert r["reloadscope"] == str(ROOT / "src" / "reloadscope"), r
    assert r["problems"] == [] and r["ok"], r["problems"]
    assert r["count"] == 20_000 and r["repeat"] == 1
    # Counted and sized in bulk; paths searched for the samples shown alone.
    engine = r["engine"]
    assert engine["listed"] == 0 and engine["counted"] == 20_000, engine
    assert 1 <= engine["sampled"] <= 3, engine
    for key in ("stall_scan_ms", "stall_get_objects_ms"):
        assert len(r[key]) == 1 and r[key][0] > 0, (key, r[key])
    can_reset_peak = os.access("/proc/self/clear_refs", os.W_OK)
    for key in ("rss_mb", "mem_extra_mb", "mem_extra_pct", "mem_bound_mb"):
        if can_reset_peak:
            assert isinstance(r[key], (int, float)) and r[key] >= 0, (key, r[key])
        else:
            assert r[key] is None, (key, r[key])


def test_fix_cost_quick_plans_and_applies_every_change():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "fix_cost.py"), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["command"] == "python benchmarks/fix_cost.py --quick --json"
    (r,) = figures["runs"]
    assert "error" not in r, (r, out.stderr)
    assert r["reloadscope"] == str(ROOT / "src" / "reloadscope"), r
    assert r["problems"] == [] and r["ok"], r["problems"]
    # 30 stale functions, the class and its 30 instances; one change per function, one
    # __class__ change for the instances.
    assert r["stale"] == 61 and r["changes"] == 31 and r["cannot"] == 0, r
    for what in ("scan", "plan", "apply"):
        assert len(r["times"][what]) == 1 and r["median"][what] > 0, (what, r["times"])
    assert r["plan_per_scan"] > 0 and r["apply_per_scan"] > 0


def test_cli_start_quick_measures_every_command():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "cli_start.py"), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["repeat"] == 2
    rows = figures["commands"]
    assert {
        "bare",
        "python -m reloadscope --version",
        "python -m reloadscope report PID --json",
    } <= set(rows)
    if figures["console_script"] is not None:
        assert {"reloadscope --version", "reloadscope report PID --json"} <= set(rows)
    assert rows["bare"]["ratio_to_bare"] == 1.0
    for f in rows.values():
        assert 0 < f["min_s"] <= f["median_s"] <= f["max_s"]


def test_cell_check_runs_and_sees_no_reload_where_there_is_none():
    pytest.importorskip("ipykernel")
    p = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "cell_check.py"),
            "--user-modules",
            "5",
            "--repeat",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-3000:]  # it raises when a check sees a reload
    figures = json.loads(p.stdout)
    assert figures["user_modules"] == 5 and figures["check_ms"]["median"] > 0


def test_pytest_plugin_cost_quick_finds_the_leaking_tests_and_scans_only_after_reloads():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "pytest_plugin_cost.py"), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["tests"] == 100 and figures["repeat"] == 1
    reloading, calm = figures["reloading"], figures["calm"]
    assert reloading["listed"] == ["test_part0.py::test_0050"]  # the one that leaks
    assert reloading["scans"] == reloading["reloading_tests"] == 2
    assert calm["listed"] == [] and calm["scans"] == 0
    for suite in (reloading, calm):
        for what in ("session_s", "wall_s"):
            r = suite[what]["ratio"]
            assert 0 < r["min"] <= r["median"] <= r["max"], (what, r)
