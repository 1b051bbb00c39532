"""What following costs the target, and how soon a reload is reported.

Starts a target that reloads a module on SIGUSR1, injects the agent (gdb) and holds a follow
connection open the way the UI does (``wait`` requests of 2 s).  Measures the target's CPU
time (utime + stime from /proc) over an idle period with the follower attached, against the
same period before any agent came; then the time from each reload to the end of the rescan
that shows it (``report PID --watch``'s settle rules: 0.75 s of quiet after the reload).

    python benchmarks/follow_cost.py [--idle 10] [--reloads 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from reloadscope.attach.session import Session  # noqa: E402
from reloadscope.follow import follow  # noqa: E402
from test_follow import TARGET  # noqa: E402  (the tests' reloading target)


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=float, default=10.0)
    ap.add_argument("--reloads", type=int, default=5)
    args = ap.parse_args()
    d = Path(tempfile.mkdtemp())
    (d / "target.py").write_text(TARGET)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    p = subprocess.Popen(
        [sys.executable, str(d / "target.py")], stdout=subprocess.PIPE, text=True, env=env
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    try:
        c0 = cpu_s(p.pid)
        time.sleep(args.idle)
        base = cpu_s(p.pid) - c0
        with Session(p.pid) as s:
            client = s.client
            stop = threading.Event()
            shown: list[float] = []

            def on_report(report: object) -> None:
                shown.append(time.monotonic())

            t = threading.Thread(
                target=follow,
                args=(lambda: client.scan(collect=True), on_report),
                kwargs={"wait": client.wait, "stop": stop},
                daemon=True,
            )
            time.sleep(1)  # the agent settles after the injection
            c1 = cpu_s(p.pid)
            t.start()
            time.sleep(args.idle)
            idle = cpu_s(p.pid) - c1
            latencies = []
            for n in range(1, args.reloads + 1):
                before = len(shown)
                sent = time.monotonic()
                os.kill(p.pid, signal.SIGUSR1)
                assert p.stdout.readline().strip() == f"reloaded {n}"
                while len(shown) == before:
                    time.sleep(0.01)
                latencies.append(shown[-1] - sent)
                time.sleep(2)
            stop.set()
            client.hurry()
            t.join(5)
        print(f"target CPU over {args.idle:.0f} s idle: {base * 1000:.0f} ms without an agent, "
              f"{idle * 1000:.0f} ms with a follower attached")  # fmt: skip
        lat = sorted(latencies)
        print(
            f"reload to rescan shown, {len(lat)} reloads: median {lat[len(lat) // 2]:.2f} s, "
            f"max {lat[-1]:.2f} s"
        )
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()


if __name__ == "__main__":
    main()
