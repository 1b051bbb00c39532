"""How long the command line takes to start, compared with a bare interpreter.

Interleaved in one run, --repeat times each (default 20; --quick: 2), wall time of:

- ``python -c "import argparse, json, socket"``: the bare interpreter (the yardstick);
- ``python -m reloadscope --version``;
- the ``reloadscope`` console script (the one next to ``sys.executable``) ``--version``;
- ``reloadscope report PID --json`` (console script and ``python -m``), against a small child
  target that called ``reloadscope.install(listen=True)``, so no injection is involved.

Every command runs with this interpreter and this checkout first on ``PYTHONPATH`` (the child
target too).  Byte code may be written (``PYTHONDONTWRITEBYTECODE`` is dropped for the children)
and one uncounted round runs first, so no run compiles source: an installed reloadscope has
its byte code.  Prints the median and min-max of each, and the ratio of medians to the bare
interpreter; ``--json`` prints the figures as one JSON object instead.

    python benchmarks/cli_start.py [--repeat 20 | --quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = str(Path(__file__).resolve().parent.parent / "src")
BARE = "import argparse, json, socket"

TARGET = """
import sys
import reloadscope
reloadscope.install(listen=True)
print("ready", flush=True)
sys.stdin.read()  # until the benchmark closes our stdin
"""


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SRC, *filter(None, [env.get("PYTHONPATH")])])
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("RELOADSCOPE_PROGRESS_AFTER_S", None)
    return env


def console_script() -> str | None:
    exe = Path(sys.executable).parent / "reloadscope"
    return str(exe) if os.access(exe, os.X_OK) else None


def commands(pid: int) -> dict[str, list[str]]:
    py = sys.executable
    cmds = {
        "bare": [py, "-c", BARE],
        "python -m reloadscope --version": [py, "-m", "reloadscope", "--version"],
    }
    script = console_script()
    if script is not None:
        cmds["reloadscope --version"] = [script, "--version"]
        cmds["reloadscope report PID --json"] = [script, "report", str(pid), "--json"]
    cmds["python -m reloadscope report PID --json"] = [
        py,
        "-m",
        "reloadscope",
        "report",
        str(pid),
        "--json",
    ]
    return cmds


def run_once(cmd: list[str], env: dict[str, str], name: str) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True)
    took = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{name} failed ({p.returncode}): {p.stderr.decode(errors='replace')}")
    if name.endswith("--json"):
        json.loads(p.stdout)  # the report document, and nothing else
    return took


def measure(repeat: int) -> dict[str, object]:
    env = child_env()
    with tempfile.TemporaryDirectory() as d:
        target = subprocess.Popen(
            [sys.executable, "-c", TARGET],
            cwd=d,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert target.stdout is not None
            if target.stdout.readline().strip() != "ready":
                raise SystemExit("the target did not start")
            cmds = commands(target.pid)
            names = list(cmds)
            for name in names:  # uncounted: byte code written, caches warm
                run_once(cmds[name], env, name)
            times: dict[str, list[float]] = {name: [] for name in names}
            for i in range(repeat):
                # Interleaved, in a rotating order, so drift and noise spread over all.
                k = i % len(names)
                for name in names[k:] + names[:k]:
                    times[name].append(run_once(cmds[name], env, name))
        finally:
            if target.stdin is not None:
                target.stdin.close()
            try:
                target.wait(5)
            except subprocess.TimeoutExpired:
                target.kill()
                target.wait()
    bare = statistics.median(times["bare"])
    figures: dict[str, object] = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "console_script": console_script(),
        "repeat": repeat,
        "commands": {
            name: {
                "median_s": round(statistics.median(ts), 4),
                "min_s": round(min(ts), 4),
                "max_s": round(max(ts), 4),
                "ratio_to_bare": round(statistics.median(ts) / bare, 2),
            }
            for name, ts in times.items()
        },
    }
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20, help="runs of each command (default 20)")
    ap.add_argument("--quick", action="store_true", help="2 runs of each")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    figures = measure(2 if args.quick else max(1, args.repeat))
    if args.json:
        print(json.dumps(figures))
        return
    print(
        f"CPython {figures['python']} ({figures['executable']}), {figures['repeat']} runs "
        "each, interleaved"
    )
    if figures["console_script"] is None:
        print(f"(no console script next to {sys.executable}: install with 'pip install -e .')")
    rows = figures["commands"]
    assert isinstance(rows, dict)
    width = max(len(n) for n in rows)
    print(f"{'command':<{width}}  {'median':>8}  {'min-max':>15}  vs bare")
    for name, f in rows.items():
        span = f"{f['min_s'] * 1000:.1f}-{f['max_s'] * 1000:.1f} ms"
        print(
            f"{name:<{width}}  {f['median_s'] * 1000:>5.1f} ms  {span:>15}  "
            f"{f['ratio_to_bare']:.2f}x"
        )


if __name__ == "__main__":
    main()
