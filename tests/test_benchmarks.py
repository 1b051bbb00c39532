"""The benchmark scripts still run and still measure what the README says (no timing here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def bench(
    *args: str, timeout: int = 600, native_off: bool = False
) -> subprocess.CompletedProcess[str]:
    """A benchmark run with this checkout's src first (as the benchmarks put it themselves);
    the helper is used wherever it loads, unless ``native_off`` (RELOADSCOPE_NATIVE=0)."""
    env = {k: v for k, v in os.environ.items() if k != "RELOADSCOPE_NATIVE"}
    env["PYTHONPATH"] = str(ROOT / "src")
    if native_off:
        env["RELOADSCOPE_NATIVE"] = "0"
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def last_json(p: subprocess.CompletedProcess[str]) -> dict:
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def native_helper() -> str:
    """``loaded`` or ``not loaded (<why>)``: the native helper in a benchmark's process."""
    code = "import sys; sys.path.insert(0, sys.argv[1]); import _heap; print(_heap.native_state())"
    p = bench("-c", code, str(BENCH), timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout.strip().splitlines()[-1]


def expected_engines(helper: str) -> list[str]:
    return ["native", "python"] if helper == "loaded" else ["python"]


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
    assert figures["engines"] == "as shipped"
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
        # Which engine ran: the native helper where it loads (as shipped), else the Python code.
        helper = figures["native_helper"][f"{sys.version_info[0]}.{sys.version_info[1]}"]
        assert r["native_helper"] == helper, (shape, r["native_helper"], helper)
        assert r["engines"] == [r["engine"]] == expected_engines(helper)[:1], (shape, r)
        assert set(r["by_engine"]) == {r["engine"]} and r["reports_equal"] is None, r
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


def test_scan_shapes_engines_measures_both_on_one_heap_and_they_report_the_same():
    helper = native_helper()
    if helper != "loaded":
        pytest.skip(f"native helper {helper}")
    figures = last_json(
        bench(
            str(BENCH / "scan_shapes.py"),
            "--quick",
            "--json",
            "--shapes",
            "inside,one-class",
            "--engines",
            "native,python",
        )
    )
    assert figures["engines"] == "native,python"
    for r in figures["runs"]:
        assert "error" not in r, r
        assert r["native_helper"] == "loaded" and r["engines"] == ["native", "python"], r
        assert r["problems"] == [] and r["ok"], (r["shape"], r["problems"])
        assert r["reports_equal"] is True, r
        assert set(r["by_engine"]) == {"native", "python"}, r
        for e in r["by_engine"].values():
            assert len(e["scan_s"]) == len(e["stall_scan_ms_all"]) == r["repeat"] == 1, e
            for key in ("stall_scan_ms", "stall_ratio"):
                assert isinstance(e[key], (int, float)) and e[key] > 0, (key, e)
        # The first engine's figures stay at the top level, as without --engines.
        assert r["engine"] == "native" and r["scan_s"] == r["by_engine"]["native"]["scan_s"]


def test_scan_shapes_children_inherit_native_off():
    p = bench(
        str(BENCH / "scan_shapes.py"), "--quick", "--json", "--shapes", "apart", native_off=True
    )
    figures = last_json(p)
    off = "not loaded (RELOADSCOPE_NATIVE=0)"
    assert set(figures["native_helper"].values()) == {off}, figures["native_helper"]
    (r,) = figures["runs"]
    assert r["native_helper"] == off and r["engine"] == "python" and r["ok"], r
    assert "native helper: not loaded (RELOADSCOPE_NATIVE=0)" in p.stderr.splitlines()[0]


def test_real_process_quick_compares_the_engines_in_one_run():
    helper = native_helper()
    engines = expected_engines(helper)
    p = bench(str(BENCH / "real_process.py"), "--quick", "--json")
    figures = last_json(p)
    assert figures["native_helper"] == helper and figures["engines"] == engines
    assert figures["repeat"] == 1
    labels = [f"scan [{e}]" for e in engines]
    assert list(figures["seconds"]) == ["floor", *labels]
    assert set(figures["stale"]) == set(figures["ratios"]) == set(labels)
    for key in labels:
        assert len(figures["seconds"][key]) == len(figures["ratios"][key]) == 1
    if helper == "loaded":
        assert figures["reports_equal"] is True  # (the run stops when they differ)
        assert set(figures["native_over_python"]) == {"scan"}
        assert figures["stale"]["scan [native]"] == figures["stale"]["scan [python]"]
    else:
        assert figures["reports_equal"] is None and figures["native_over_python"] == {}
    # The text: the header says whether the helper was used, a line per engine.
    text = bench(str(BENCH / "real_process.py"), "--quick")
    assert text.returncode == 0, text.stderr[-3000:]
    lines = text.stdout.splitlines()
    assert f"native helper: {helper}" in lines[0]
    assert [line.split()[0:2] for line in lines[2 : 2 + len(engines)]] == [
        ["scan", f"[{e}]"] for e in engines
    ]
    if helper == "loaded":
        assert "reports equal" in lines[0] and lines[-1].startswith("  native / python: scan ")


def test_rescan_quick_times_both_scans_of_each_engine_and_they_report_the_same():
    helper = native_helper()
    engines = expected_engines(helper)
    figures = last_json(bench(str(BENCH / "rescan.py"), "--quick", "--stale", "--json"))
    assert figures["native_helper"] == helper and figures["engines"] == engines
    labels = [f"{what} [{e}]" for what in ("first scan", "rescan") for e in engines]
    assert list(figures["seconds"]) == ["floor", *labels]
    assert set(figures["counts"]) == set(figures["ratios"]) == set(labels)
    # Every scan of the repetition reported the same (the run stops otherwise): the 3 entries.
    assert figures["reports_equal"] is True and figures["entries"] == 3
    assert set(figures["walks_by_engine"]) == set(engines)
    c = figures["counts"]
    for e in engines:
        # A rescan looks at fewer code objects than a first scan, and judges the same functions.
        assert c[f"rescan [{e}]"]["codes"] < c[f"first scan [{e}]"]["codes"], c
        assert c[f"rescan [{e}]"]["judged"] == c[f"first scan [{e}]"]["judged"], c
        assert c[f"rescan [{e}]"]["rebuilt"] == 0 and c[f"first scan [{e}]"]["rebuilt"] == 1, c
    if helper == "loaded":
        # The same functions seen and judged one by one with the helper and without it.
        for what in ("first scan", "rescan"):
            for n in ("functions", "judged"):
                assert c[f"{what} [native]"][n] == c[f"{what} [python]"][n], (what, n, c)
        assert set(figures["native_over_python"]) == {"first scan", "rescan"}


def test_engine_vs_other_python_compares_the_helper_with_the_python_code():
    helper = native_helper()
    args = [str(BENCH / "engine_vs.py"), "--other", "python", "--objects", "100k"]
    args += ["--repeat", "2", "--stale", "20"]
    p = bench(*args)
    if helper != "loaded":
        assert p.returncode != 0 and "native helper is not loaded" in p.stderr, p.stderr
        return
    figures = last_json(p)
    assert figures["native_helper"] == "loaded" and figures["engines"] == ["python", "native"]
    assert figures["stale_alive"] == 20
    assert figures["fresh_reports_equal"] is True and figures["reports_equal"] is True
    for key in ("python_ratios", "native_ratios", "native_over_python"):
        assert len(figures[key]) == 2, (key, figures)
    assert {"python_x", "native_x"} <= set(figures)
    # Scan.engine, where the engine says which code ran: the one each scan was meant for.
    assert figures["engine_ran"] in (
        {"python": "python", "native": "native"},
        {"python": None, "native": None},
    ), figures["engine_ran"]
    lines = p.stdout.splitlines()
    assert "native helper: loaded" in lines[0] and "reports equal" in lines[0]
    assert lines[1].split()[0] == "python" and lines[2].split()[0] == "native"
    assert lines[3].startswith("  native / python: ")


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
