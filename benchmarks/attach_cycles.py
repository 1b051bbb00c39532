"""Attach latency, and what 100 attach/detach cycles leave behind in one busy target.

Starts a target that never heard of reloadscope (busy in Python, with a reloaded module), then
--cycles times: inject the agent (gdb), ask for a scan, detach.  Prints the latency from the
start of an attach to the first answer (median, 90th percentile, first), and compares the
target's threads, open file descriptors and RSS before and after all cycles.

    python benchmarks/attach_cycles.py [--cycles 100] [--json]
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

from reloadscope.agent.server import socket_path
from reloadscope.attach.session import Session

TARGET = r"""
import importlib, os, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plug.py")
open(path, "w").write("def f():\n    return 1\n")
import plug
keep = plug.f
open(path, "w").write("def f():\n    return 2\n")
os.utime(path, (time.time() + 10, time.time() + 10))
importlib.reload(plug)
print("ready", flush=True)
n = 0
while True:
    n += 1
"""


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "target.py")
        with open(script, "w") as fh:
            fh.write(TARGET)
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        env.pop("PYTHONPATH", None)
        p = subprocess.Popen([sys.executable, script], stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert p.stdout is not None
            p.stdout.readline()
            time.sleep(0.3)
            threads0 = sorted(os.listdir(f"/proc/{p.pid}/task"))
            fds0 = sorted(os.listdir(f"/proc/{p.pid}/fd"))
            latencies, rss_after = [], []
            for _ in range(args.cycles):
                t0 = time.perf_counter()
                with Session(p.pid) as s:
                    s.client.request("ping")
                    latencies.append(time.perf_counter() - t0)
                    s.client.scan()
                rss_after.append(rss(p.pid))
            time.sleep(0.5)
            threads1 = sorted(os.listdir(f"/proc/{p.pid}/task"))
            fds1 = sorted(os.listdir(f"/proc/{p.pid}/fd"))
            alive = p.poll() is None
            socket_left = os.path.exists(socket_path(p.pid))
        finally:
            p.kill()
            p.wait()
    lat = sorted(latencies)
    tenth = max(1, len(rss_after) // 10)
    figures = {
        "cycles": args.cycles,
        "latency_first_s": round(latencies[0], 3),
        "latency_median_s": round(statistics.median(lat), 3),
        "latency_p90_s": round(lat[int(len(lat) * 0.9) - 1], 3),
        "threads_same": threads0 == threads1,
        "fds_same": fds0 == fds1,
        "rss_growth_first_to_last_tenth_kb": round(
            (statistics.mean(rss_after[-tenth:]) - statistics.mean(rss_after[:tenth])) / 1024
        ),
        "target_alive": alive,
        "socket_left": socket_left,
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"{args.cycles} attach/scan/detach cycles against one busy target:")
    print(
        f"  attach to first answer: first {figures['latency_first_s']} s, median "
        f"{figures['latency_median_s']} s, p90 {figures['latency_p90_s']} s"
    )
    print(
        f"  threads same: {figures['threads_same']}, fds same: {figures['fds_same']}, "
        f"target alive: {alive}, socket left: {socket_left}"
    )
    print(
        f"  RSS growth, first to last tenth of cycles: "
        f"{figures['rss_growth_first_to_last_tenth_kb']} KiB"
    )


if __name__ == "__main__":
    main()
