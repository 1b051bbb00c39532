"""What a target's threads are doing, from /proc: stopped, traced, gone (FIELD-NOTES, "Attach
safety").

A stopped process must not be touched (gdb calling into it leaves it to die of SIGSEGV when it
is continued) and cannot answer a socket; a traced one cannot be attached to (ptrace allows one
tracer per thread).  Every thread is looked at: a debugger may hold any one of them.
"""

from __future__ import annotations

import os


class Task:
    """One thread: its ID, its state letter (``R``, ``S``, ``T``, ``t``, ``Z``...) and the PID
    of the process tracing it (0 when none).  (Not a dataclass: importing dataclasses would
    slow the start of every PID command.)"""

    __slots__ = ("state", "tid", "tracer")

    def __init__(self, tid: int, state: str, tracer: int) -> None:
        self.tid = tid
        self.state = state
        self.tracer = tracer

    def __repr__(self) -> str:
        return f"Task(tid={self.tid!r}, state={self.state!r}, tracer={self.tracer!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Task):
            return NotImplemented
        return (self.tid, self.state, self.tracer) == (other.tid, other.state, other.tracer)

    def __hash__(self) -> int:
        return hash((self.tid, self.state, self.tracer))


def real_uid(pid: int) -> int:
    """The real uid of process ``pid`` (``Uid:`` in its status); OSError when it cannot be
    read (FileNotFoundError or ProcessLookupError: no such process)."""
    with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise OSError(f"/proc/{pid}/status has no Uid line")


def _state_letter(stat: str) -> str:
    # "tid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ")".
    rest = stat[stat.rfind(")") + 1 :].split()
    return rest[0] if rest else "?"


def _tracer(status: str) -> int:
    for line in status.splitlines():
        if line.startswith("TracerPid:"):
            value = line.split(":", 1)[1].strip()
            return int(value) if value.isdigit() else 0
    return 0


def tasks(pid: int) -> list[Task]:
    """The threads of ``pid`` as /proc shows them now; empty when the process is gone."""
    out = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for tid in tids:
        base = f"/proc/{pid}/task/{tid}"
        try:
            with open(f"{base}/stat", encoding="utf-8", errors="replace") as fh:
                state = _state_letter(fh.read())
            with open(f"{base}/status", encoding="utf-8", errors="replace") as fh:
                tracer = _tracer(fh.read())
        except OSError:
            continue  # the thread ended meanwhile
        if tid.isdigit():
            out.append(Task(int(tid), state, tracer))
    return sorted(out, key=lambda t: t.tid)


def name(pid: int) -> str:
    """The command name of ``pid`` (``comm``), or "?"."""
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as fh:
            return fh.read().strip() or "?"
    except OSError:
        return "?"


def tracer(pid: int) -> int:
    """The PID of a process tracing any thread of ``pid``, or 0."""
    for t in tasks(pid):
        if t.tracer:
            return t.tracer
    return 0


def stopped_message(pid: int) -> str:
    return (
        f"process {pid} is stopped (SIGSTOP/job control): resume it with 'kill -CONT {pid}' "
        "and try again"
    )


def traced_message(pid: int, by: int) -> str:
    return f"process {pid} is being traced by process {by} ({name(by)}): detach that debugger first"


def refusal(pid: int) -> str | None:
    """Why ``pid`` must not be touched now (traced, stopped or exited), or None."""
    threads = tasks(pid)
    if not threads:
        return f"process {pid} exited"
    for t in threads:
        if t.tracer:
            return traced_message(pid, t.tracer)
    if any(t.state in "Tt" for t in threads):
        return stopped_message(pid)
    if all(t.state in "ZX" for t in threads):
        return f"process {pid} exited (a zombie its parent has not reaped)"
    return None


def cannot_answer(pid: int) -> str | None:
    """Why the agent in ``pid`` cannot answer at all (every thread stopped, or the process
    gone), or None.  Unlike ``refusal``, a tracer that lets the process run (strace) is no
    reason: the agent still answers under it."""
    threads = tasks(pid)
    if not threads:
        return f"process {pid} exited"
    if all(t.state in "TtZX" for t in threads):
        return refusal(pid)
    return None
