"""``reloadscope report PID --watch``: one line per reload (or one report document per line
with ``--json``) until Ctrl-C or the process ends.

Ctrl-C is how a watch is meant to end, so it exits 0 without a word, as ``py-spy record``
does when Control-C stops it: what was printed is complete.  A process that ends is the
other normal end: one line on stderr, exit 0.  Either way an injected agent is detached.
"""

from __future__ import annotations

import sys

from .errors import UserError
from .progress import Progress
from .target import parse_pid

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from ..attach.session import Session
    from ..model import Report


def _ended(pid: int, within: float = 2.0) -> bool:
    """Has the process exited (gone, or a zombie its parent has not reaped)?  Its socket
    closes while it exits, a moment before /proc shows it: look for ``within`` seconds."""
    import time

    from ..attach.procstate import tasks

    deadline = time.monotonic() + within
    while True:
        threads = tasks(pid)
        if not threads or all(t.state in "ZX" for t in threads):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def watch(args: argparse.Namespace) -> int:
    if not args.target.isdigit():
        raise UserError("--watch follows a live process: give a PID (see 'reloadscope ps')")
    if args.fail_on_stale:
        raise UserError("--watch and --fail-on-stale do not go together; use one of them")
    pid = parse_pid(args.target)
    opened: list[Session] = []
    try:
        return _watch(pid, args, opened)
    except KeyboardInterrupt:
        return 0
    finally:
        for session in opened:  # detaches an agent it injected
            try:
                session.close()
            except Exception:
                pass


def _watch(pid: int, args: argparse.Namespace, opened: list[Session]) -> int:
    import threading
    import time

    from ..attach.client import AttachError
    from ..attach.session import Session
    from ..follow import changes, follow, grown_holders
    from ..inert import inert
    from ..textreport import plural

    try:
        with Progress() as progress:  # erased before anything is printed
            session = Session(pid, progress=progress)
            opened.append(session)
            first = session.client.scan(collect=args.collect, progress=progress)
    except AttachError as e:
        raise UserError(str(e)) from None
    client = session.client
    wait = client.wait if client.follows else None
    print(
        f"reloadscope: watching process {pid} (Python {inert(client.python)}): "
        f"{first.stale_count} stale in {plural(len(first.modules), 'module')} now; Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    if wait is None:
        from ..follow import POLL_S

        print(
            f"reloadscope: the agent in process {pid} cannot tell when it reloads (an older "
            f"reloadscope's): rescanning every {POLL_S:.0f} s instead",
            file=sys.stderr,
            flush=True,
        )
    last: list[Report] = [first]

    def on_report(report: Report) -> None:
        found = changes(last[0], report)
        grown = grown_holders(last[0], report)
        last[0] = report
        if not found and not grown:
            return
        if args.json:
            import json

            doc = dict(report.document)
            doc["changes"] = [c.as_json() for c in found]  # a field of its own (readers skip it)
            doc["holder_changes"] = [h.as_json() for h in grown]  # the holders that grew
            sys.stdout.write(json.dumps(doc, separators=(",", ":")) + "\n")
        else:
            stamp = time.strftime("%H:%M:%S")
            lines = [c.line() for c in found] + [h.line() for h in grown]
            sys.stdout.write("".join(f"{stamp} {line}\n" for line in lines))
        sys.stdout.flush()

    try:
        follow(
            lambda: client.scan(collect=args.collect),
            on_report,
            wait=wait,
            stop=threading.Event(),
            after=client.last_sequence,
        )
    except AttachError as e:
        if _ended(pid):
            print(f"reloadscope: process {pid} ended; stopped watching", file=sys.stderr)
            return 0
        raise UserError(str(e)) from None
    return 0
