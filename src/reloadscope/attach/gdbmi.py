"""A gdb driven over its machine interface (MI), run so that nothing the CLI does can kill it
inside a call into the target.

gdb is the only tool here that stops a process, and a gdb that dies at the wrong moment takes
the target with it: killed while a function it called in the target is still running, that
function later returns into gdb's vanished dummy frame (SIGSEGV); killed while breakpoints are
inserted, the target next executes an ``int3`` nobody catches (SIGTRAP).  So:

- gdb runs in its own session: the terminal's Ctrl-C and hang-up reach the CLI only;
- its output goes to a private file, never a pipe (no SIGPIPE if the CLI dies);
- it reads its commands from a pipe: if the CLI dies, gdb reads end-of-file once its current
  command is done, and quits, which detaches from the target (removing breakpoints);
- the CLI never kills it.  Waiting for the target is done with the target *running* (``continue``
  under breakpoints), which can be interrupted safely; calls into the target are only ever short
  ones, and are waited for however long they take.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

from .client import AttachError

NO_SUCH_DIR = "/nonexistent/reloadscope"
# x86-64: the registers gdb saves and restores around a call (see the file's comment).
X86_64_REGISTERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "amd64-linux-sse.xml")
ATTACH_TIMEOUT = 20.0  # gdb's start, reading the target's symbols, and the ptrace stop
CALL_GRACE = 120.0  # after this, a call that has not returned is left to gdb (never killed)


class GdbGone(AttachError):
    """gdb exited, or stopped answering, before a command was done."""


@dataclass
class Record:
    """One MI record: ``kind`` is ``^`` (result), ``*`` (exec async), ``=`` (notify)."""

    kind: str
    cls: str  # "done", "error", "running", "stopped", ...
    token: int | None = None
    fields: dict[str, object] = field(default_factory=dict)


_RECORD = re.compile(r"^(\d*)([\^*=])([a-z-]+)(?:,(.*))?$")


def _parse_value(text: str, i: int) -> tuple[object, int]:
    c = text[i]
    if c == '"':
        out = []
        i += 1
        while text[i] != '"':
            if text[i] == "\\":
                i += 1
                out.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(text[i], text[i]))
            else:
                out.append(text[i])
            i += 1
        return "".join(out), i + 1
    close = "}" if c == "{" else "]"
    i += 1
    items: list[object] = []
    named: dict[str, object] = {}
    while text[i] != close:
        m = re.match(r"([A-Za-z_][\w-]*)=", text[i:])
        if m:  # name=value (tuples, and lists of results)
            value, i = _parse_value(text, i + m.end())
            named[m.group(1)] = value
            items.append(value)
        else:
            value, i = _parse_value(text, i)
            items.append(value)
        if text[i] == ",":
            i += 1
    return (named if c == "{" else items), i + 1


def parse_record(line: str) -> Record | None:
    """An MI result or async record, or None for stream output and the prompt."""
    m = _RECORD.match(line)
    if m is None:
        return None
    token, kind, cls, rest = m.groups()
    fields: dict[str, object] = {}
    if rest:
        try:
            parsed, _ = _parse_value("{" + rest + "}", 0)
        except (IndexError, ValueError):
            parsed = {}
        if isinstance(parsed, dict):
            fields = parsed
    return Record(kind, cls, int(token) if token else None, fields)


class Gdb:
    """One gdb, attached to one process for the length of a ``with`` block."""

    def __init__(self, pid: int) -> None:
        exe = shutil.which("gdb")
        if exe is None:
            raise AttachError(
                "gdb is needed to attach to a process without an agent: install it "
                "('apt-get install gdb'), or start the program with 'reloadscope run' or call "
                "reloadscope.install() in it, which need no injection"
            )
        self.pid = pid
        self._dir = tempfile.mkdtemp(prefix="reloadscope-gdb-")
        out_path = os.path.join(self._dir, "out")
        out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        self._out = open(out_path, "rb")  # noqa: SIM115 (read as gdb writes)
        self._buffer = b""
        self._token = 0
        self.pending: list[Record] = []  # async records not consumed yet
        self._queue: list[Record] = []  # records read, not yet handed out
        self.console: list[str] = []
        self.attached = False
        registers: list[str] = []
        if platform.machine() in ("x86_64", "AMD64") and os.path.exists(X86_64_REGISTERS):
            registers = ["-iex", f"set tdesc filename {X86_64_REGISTERS}"]
        try:
            self._proc = subprocess.Popen(
                [
                    exe,
                    *registers,
                    # Before the target is read: gdb loads nothing the target's user could
                    # have placed (no init files, no auto-loaded scripts beside its libraries,
                    # no libthread_db from its library directory, no debuginfod download).
                    "-nx",
                    "-nh",
                    "-q",
                    "-iex",
                    "set auto-load off",
                    "-iex",
                    f"set libthread-db-search-path {NO_SUCH_DIR}",
                    "-iex",
                    "set debuginfod enabled off",
                    "--interpreter=mi3",
                ],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=out,
                start_new_session=True,  # Ctrl-C in the terminal is the CLI's alone
            )
        finally:
            os.close(out)

    # -- the conversation -------------------------------------------------------------------

    def _lines(self) -> list[str]:
        chunk = self._out.read()
        if not chunk:
            return []
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        return [x.decode("utf-8", "replace").rstrip("\r") for x in lines]

    def _read(self, until: float) -> Record | None:
        """The next result or async record, or None once ``until`` (monotonic) has passed."""
        while True:
            for line in self._lines():
                if line.startswith(("~", "&", "@")):
                    try:
                        text, _ = _parse_value(line, 1)
                    except (IndexError, ValueError):
                        text = line[1:]
                    self.console.append(str(text))
                    continue
                record = parse_record(line)
                if record is not None:
                    self._queue.append(record)
            if self._queue:
                return self._queue.pop(0)
            if self._proc.poll() is not None:
                # Whatever it wrote last is read above; nothing more will come.
                if not self._lines():
                    raise GdbGone(f"gdb exited while attached to process {self.pid}")
                continue
            if time.monotonic() >= until:
                return None
            time.sleep(0.005)

    def send(self, command: str) -> int:
        self._token += 1
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(f"{self._token}{command}\n".encode())
            self._proc.stdin.flush()
        except OSError:
            raise GdbGone(f"gdb exited while attached to process {self.pid}") from None
        return self._token

    def command(self, command: str, timeout: float = 10.0) -> Record:
        """Send an MI command and wait for its result record (async records are kept)."""
        token = self.send(command)
        deadline = time.monotonic() + timeout
        while True:
            record = self._read(deadline)
            if record is None:
                raise GdbGone(
                    f"gdb did not answer within {timeout:.0f} s while attached to process "
                    f"{self.pid}; it was left to detach by itself"
                )
            if record.kind == "^" and record.token == token:
                return record
            if record.kind != "^":
                self.pending.append(record)

    def call(self, expression: str, *, thread: str | None = None) -> str:
        """Evaluate ``expression`` (which may call a function in the target) and return its
        value.  A call is waited for however long it takes (up to ``CALL_GRACE``, and even
        through Ctrl-C): interrupting or killing gdb inside it would kill the target."""
        where = f"--thread {thread} --frame 0 " if thread is not None else ""
        quoted = expression.replace("\\", "\\\\").replace('"', '\\"')
        token = self.send(f'-data-evaluate-expression {where}"{quoted}"')
        deadline = time.monotonic() + CALL_GRACE
        while True:
            got: Record | None
            try:
                got = self._read(deadline)
            except KeyboardInterrupt:
                continue  # the call finishes first; the caller sees the interrupt afterwards
            if got is None:
                raise GdbGone(
                    f"a call into process {self.pid} did not return within {CALL_GRACE:.0f} s; "
                    "gdb was left to finish it and detach by itself"
                )
            if got.kind == "^" and got.token == token:
                if got.cls == "error":
                    raise AttachError(self._error_text(got))
                return str(got.fields.get("value", ""))
            if got.kind != "^":
                self.pending.append(got)

    def console_command(self, command: str, timeout: float = 10.0) -> Record:
        quoted = command.replace("\\", "\\\\").replace('"', '\\"')
        return self.command(f'-interpreter-exec console "{quoted}"', timeout)

    def wait_stop(self, until: float) -> Record | None:
        """The next ``*stopped`` record, or None when ``until`` passed first."""
        while True:
            for i, record in enumerate(self.pending):
                if record.kind == "*" and record.cls == "stopped":
                    del self.pending[: i + 1]
                    return record
            self.pending.clear()
            nxt = self._read(until)
            if nxt is None:
                return None
            self.pending.append(nxt)

    @staticmethod
    def _error_text(record: Record) -> str:
        return str(record.fields.get("msg", "gdb reported an error"))

    # -- the steps --------------------------------------------------------------------------

    def attach(self) -> None:
        for setting in (
            "-gdb-set mi-async on",
            "-gdb-set pagination off",
            "-gdb-set confirm off",
            "-gdb-set scheduler-locking off",
            "-gdb-set unwindonsignal on",
        ):
            self.command(setting, ATTACH_TIMEOUT)
        # The target's own signals go to it unseen: a stop for one of them in another thread
        # while a call runs would make gdb abandon the call half done.
        self.console_command("handle all nostop noprint pass", ATTACH_TIMEOUT)
        record = self.command(f"-target-attach {self.pid}", ATTACH_TIMEOUT)
        if record.cls == "error":
            raise AttachError(self._error_text(record))
        self.attached = True
        # All threads are stopped once the attach's *stopped record has come.
        if self.wait_stop(time.monotonic() + ATTACH_TIMEOUT) is None:
            raise GdbGone(f"gdb did not stop process {self.pid} within {ATTACH_TIMEOUT:.0f} s")

    def threads(self) -> dict[int, str]:
        """LWP (thread id of the kernel) -> gdb's thread id, for every thread."""
        record = self.command("-thread-info")
        found: dict[int, str] = {}
        listed = record.fields.get("threads")
        for t in listed if isinstance(listed, list) else []:
            if not isinstance(t, dict):
                continue
            m = re.search(r"(?:LWP|process) (\d+)", str(t.get("target-id", "")))
            if m:
                found[int(m.group(1))] = str(t.get("id"))
        return found

    def break_insert(self, location: str, *, condition: str = "", thread: str = "") -> str:
        options = ""
        if condition:
            options += f'-c "{condition}" '
        if thread:
            options += f"-p {thread} "
        record = self.command(f"-break-insert {options}{location}")
        if record.cls == "error":
            raise AttachError(self._error_text(record))
        bkpt = record.fields.get("bkpt")
        return str(bkpt.get("number")) if isinstance(bkpt, dict) else ""

    def resume(self) -> None:
        record = self.command("-exec-continue")
        if record.cls == "error":
            raise AttachError(self._error_text(record))

    def interrupt(self) -> Record | None:
        """Stop every thread (gdb stops each with a SIGSTOP of its own, which the target never
        sees) and return the stop gdb reports: a breakpoint hit at that very moment comes
        first.  None when the target had already stopped for a reason not yet read."""
        record = self.command("-exec-interrupt")
        if record.cls == "error":  # already stopped: by what, if gdb said so already
            return self.wait_stop(time.monotonic())
        stop = self.wait_stop(time.monotonic() + ATTACH_TIMEOUT)
        if stop is None:
            raise GdbGone(f"gdb did not stop process {self.pid} within {ATTACH_TIMEOUT:.0f} s")
        return stop

    def detach(self) -> None:
        record = self.command("-target-detach", ATTACH_TIMEOUT)
        if record.cls != "error":
            self.attached = False

    def close(self) -> None:
        """Let gdb go: ask it to exit and give it its end of file.  If it is inside a call it
        finishes that first, then detaches and exits by itself: it is never killed here."""
        try:
            if self._proc.poll() is None:
                try:
                    self.send("-gdb-exit")
                except GdbGone:
                    pass
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
            except OSError:
                pass
            try:
                self._proc.wait(timeout=ATTACH_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass  # it detaches when its call returns; the file is removed below anyway
        finally:
            self._out.close()
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Gdb:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
