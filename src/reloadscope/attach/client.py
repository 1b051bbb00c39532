"""Talking to an agent over its Unix socket (protocol: reloadscope.agent.server).

Nothing is read from a socket before it is known to be the target's agent: its directory
``/tmp/reloadscope-<uid>`` is a real directory (not a symbolic link) of the target's user with
mode 0700, the socket in it is a socket of that user, and the process at the other end
(``SO_PEERCRED``) is the target itself, running as that user.  Anyone can create a directory
in /tmp under the name another user's agent would use, and put a socket there that answers.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
import struct
import threading
import time

from . import procstate

TYPE_CHECKING = False  # typing is not imported at run time: starting must stay cheap
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..fixplan import FixPlan, FixResult
    from ..model import Report

# The agent's protocol and where it listens, as ``reloadscope.agent.server`` has them
# (tests/test_cli_start.py checks that both agree).  Not imported from there: importing
# the agent package loads its whole engine (recorder, scan), which a client never runs.
PROTOCOL = 1
FOLLOW = 1  # the agent's ``wait`` request, as server.FOLLOW
INIT_PID_NS = 0xEFFFFFFC  # the initial PID namespace's inode number (PROC_PID_INIT_INO)


def runtime_dir(uid: int | None = None) -> str:
    """The agents' directory of user ``uid`` (this user's by default)."""
    return f"/tmp/reloadscope-{os.getuid() if uid is None else uid}"


def socket_name(pid: int, pid_ns: int | None) -> str:
    """The socket's name of the agent of process ``pid`` of PID namespace ``pid_ns``."""
    if pid_ns is None or pid_ns == INIT_PID_NS:
        return f"{pid}.sock"
    return f"{pid}.ns{pid_ns}.sock"


MAX_RESPONSE = 1 << 30
# How often a client waiting for an answer looks whether the target can still give one.
POLL = 0.5


# How long a write waits for another thread's (a line to the agent takes microseconds).
_WRITE_WAIT_S = 5.0


class AttachError(Exception):
    """The process cannot be reached; the message says why and what to do."""


class NoAgent(AttachError):
    """No agent listens for the process: no socket, or one nobody listens on (``stale``: left
    by an agent that died, or by an earlier process with this PID)."""

    def __init__(self, message: str, *, stale: bool = False) -> None:
        super().__init__(message)
        self.stale = stale


def _user(uid: int) -> str:
    try:
        import pwd

        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except (KeyError, ImportError):
        return f"uid {uid}"


class AgentDir:
    """A descriptor of the agent directory of ``uid``, checked to be trustworthy; every later
    look-up goes through it, so the path cannot be swapped behind the check."""

    def __init__(self, pid: int, uid: int) -> None:
        self.pid = pid
        self.uid = uid
        self.path, self.name = agent_place(pid, uid)
        self.socket = os.path.join(self.path, self.name)
        self.fd = self._open()

    def _refuse(self, why: str, remove: str) -> AttachError:
        # In /tmp (sticky) only its owner or root can remove a directory; a socket, whoever
        # owns its directory, which by then is known to be the caller's own (or root calls).
        try:
            owner = os.lstat(remove).st_uid
        except OSError:
            owner = os.getuid()
        verb = "remove" if os.getuid() in (0, owner) else "have root remove"
        return AttachError(
            f"{self.socket} is not the agent of process {self.pid}: {why}; {verb} {remove} "
            "and try again"
        )

    def _open(self) -> int:
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            raise NoAgent(f"no reloadscope agent listens in process {self.pid}") from None
        except OSError as e:
            raise AttachError(f"cannot look at {self.path}: {e.strerror}") from None
        self._check(st)
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise NoAgent(f"no reloadscope agent listens in process {self.pid}") from None
        except OSError:
            raise self._refuse(f"{self.path} is not a directory", self.path) from None
        try:
            self._check(os.fstat(fd))  # the very directory opened, in case it was replaced
        except AttachError:
            os.close(fd)
            raise
        return fd

    def _check(self, st: os.stat_result) -> None:
        if stat.S_ISLNK(st.st_mode):
            raise self._refuse(f"{self.path} is a symbolic link", self.path)
        if not stat.S_ISDIR(st.st_mode):
            raise self._refuse(f"{self.path} is not a directory", self.path)
        if st.st_uid != self.uid:
            raise self._refuse(
                f"{self.path} belongs to {_user(st.st_uid)}, not to the process's user "
                f"{_user(self.uid)}",
                self.path,
            )
        if st.st_mode & 0o077:
            raise self._refuse(
                f"{self.path} has mode {stat.S_IMODE(st.st_mode):04o}, open to other users "
                "(an agent's directory has mode 0700)",
                self.path,
            )

    def check_socket(self) -> None:
        """The socket exists, is a socket and belongs to the process's user."""
        try:
            st = os.stat(self.name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            raise NoAgent(f"no reloadscope agent listens in process {self.pid}") from None
        except OSError as e:
            raise AttachError(f"cannot look at {self.socket}: {e.strerror}") from None
        if not stat.S_ISSOCK(st.st_mode):
            raise self._refuse("it is not a socket", self.socket)
        if st.st_uid != self.uid:
            raise self._refuse(
                f"it belongs to {_user(st.st_uid)}, not to the process's user {_user(self.uid)}",
                self.socket,
            )

    def connect(self, timeout: float) -> socket.socket:
        """A connection to the agent, whose peer is checked to be process ``pid`` of ``uid``."""
        self.check_socket()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            # Through the checked directory's descriptor, never through the path again.
            sock.connect(f"/proc/self/fd/{self.fd}/{self.name}")
        except FileNotFoundError:
            sock.close()
            raise NoAgent(f"no reloadscope agent listens in process {self.pid}") from None
        except ConnectionRefusedError:
            sock.close()
            raise NoAgent(
                f"nothing listens on {self.socket} (left by an agent that died)", stale=True
            ) from None
        except OSError as e:
            sock.close()
            raise AttachError(f"cannot connect to the agent of process {self.pid}: {e}") from None
        try:
            self._check_peer(sock)
        except BaseException:
            sock.close()
            raise
        return sock

    def _check_peer(self, sock: socket.socket) -> None:
        size = struct.calcsize("3i")
        peer_pid, peer_uid, _gid = struct.unpack(
            "3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, size)
        )
        if peer_uid != self.uid:
            raise self._refuse(
                f"the process listening on it runs as {_user(peer_uid)}, not as the process's "
                f"user {_user(self.uid)}",
                self.socket,
            )
        # SO_PEERCRED gives the PID in our namespace, even for a target in a container.
        if peer_pid != self.pid:
            who = (
                f"process {peer_pid} ({procstate.name(peer_pid)}) listens on it"
                if peer_pid > 0
                else "a process outside this PID namespace listens on it"
            )
            raise self._refuse(f"{who}, not process {self.pid}", self.socket)

    def remove_stale(self) -> None:
        """Remove a socket nobody listens on (checked: a socket of the process's user)."""
        self.check_socket()
        try:
            os.unlink(self.name, dir_fd=self.fd)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise AttachError(
                f"cannot remove the stale socket {self.socket}: {e.strerror}"
            ) from None

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Client:
    """One connection to the agent in process ``pid`` (of user ``uid``, this user's by
    default), refused unless it is that process's own agent (see the module's docstring)."""

    def __init__(self, pid: int, *, timeout: float = 120.0, uid: int | None = None) -> None:
        self.pid = pid
        self.uid = os.getuid() if uid is None else uid
        self.path = os.path.join(*agent_place(pid, self.uid))
        self.timeout = timeout
        self._next = 0
        self._buf = bytearray()
        # Writes come from one thread at a time, and a blank line (``hurry``) from any.
        # Reentrant, and never waited for long: a Ctrl-C that lands between taking it and the
        # ``with`` block's cleanup leaves it held by the main thread, whose detach would then
        # wait for itself for ever (seen: ``report --watch`` hung after Ctrl-C).
        self._writing = threading.RLock()
        directory = AgentDir(pid, self.uid)
        try:
            sock = directory.connect(timeout)
        finally:
            directory.close()
        sock.settimeout(min(timeout, POLL))  # see _read
        self._sock = sock
        self._out = sock.makefile("wb")
        try:
            hello = self._read()
        except BaseException:
            self.close()
            raise
        if not isinstance(hello, dict) or hello.get("reloadscope") != PROTOCOL:
            self.close()
            theirs = hello.get("reloadscope") if isinstance(hello, dict) else None
            raise AttachError(
                f"the agent in process {pid} speaks protocol {theirs!r}, "
                f"this reloadscope speaks {PROTOCOL}; use the same reloadscope version"
            )
        self.python: str = str(hello.get("python", "?"))
        # Whether the agent answers ``wait`` (it tells generations as they begin and end);
        # agents before it do not say, and answer "unknown op".
        self.follows: bool = hello.get("follow") == FOLLOW
        # The agent's generation event number when the last scan began (None: not told).
        self.last_sequence: int | None = None

    def _read(self) -> Any:
        """The next line, waiting while the agent works (``timeout`` without a byte at most),
        but not for a process that cannot answer: stopped, held by a debugger, or gone."""
        quiet_since = time.monotonic()
        searched = 0
        while True:
            end = self._buf.find(b"\n", searched)
            if end >= 0:
                line = bytes(self._buf[: end + 1])
                del self._buf[: end + 1]
                try:
                    return json.loads(line)
                except ValueError:
                    raise AttachError(
                        f"the agent in process {self.pid} sent something that is not JSON"
                    ) from None
            searched = len(self._buf)
            if searched > MAX_RESPONSE:
                raise AttachError(
                    f"the agent in process {self.pid} sent more than {MAX_RESPONSE} bytes in "
                    "one answer"
                )
            try:
                chunk = self._sock.recv(1 << 20)
            except TimeoutError:
                why = procstate.cannot_answer(self.pid)
                if why is not None:
                    raise AttachError(why) from None
                if time.monotonic() - quiet_since > self.timeout:
                    raise AttachError(
                        f"the agent in process {self.pid} did not answer within "
                        f"{self.timeout:.0f} s"
                    ) from None
                continue
            except OSError as e:
                if e.errno == errno.EINTR:
                    continue
                raise AttachError(f"lost the connection to process {self.pid}: {e}") from None
            if not chunk:
                raise AttachError(f"process {self.pid} closed the connection (did it exit?)")
            self._buf += chunk
            quiet_since = time.monotonic()

    def request(
        self, op: str, *, on_progress: Callable[[Any], None] | None = None, **params: Any
    ) -> Any:
        """Send one request and wait for its answer.  With ``on_progress``, the agent is asked
        for progress messages (``"progress": true``), which it sends before the answer and
        ``on_progress`` hears; an agent that knows none just answers."""
        self._send(op, on_progress is not None, params)
        return self._answer(on_progress)

    def _send(self, op: str, progress: bool, params: dict[str, Any]) -> None:
        self._next += 1
        msg = {"id": self._next, "op": op, **params}
        if progress:
            msg["progress"] = True
        line = json.dumps(msg).encode() + b"\n"
        if not self._writing.acquire(timeout=_WRITE_WAIT_S):
            raise AttachError(f"could not write to process {self.pid}'s agent (a write hung)")
        try:
            self._out.write(line)
            self._out.flush()
        except (OSError, ValueError) as e:
            raise AttachError(f"lost the connection to process {self.pid}: {e}") from None
        finally:
            self._writing.release()

    def hurry(self) -> None:
        """End a ``wait`` this connection has pending (from another thread): the agent answers
        it at once.  Only for an agent that ``follows`` (older ones would answer the blank line
        with an error).  Never raises."""
        if not self.follows or not self._writing.acquire(timeout=_WRITE_WAIT_S):
            return
        try:
            self._sock.sendall(b"\n")
        except (OSError, ValueError):
            pass
        finally:
            self._writing.release()

    def wait(self, after: int | None, timeout: float) -> dict[str, Any]:
        """The agent's generation events after sequence number ``after`` (None: none, just
        the sequence now), waiting up to ``timeout`` seconds for some: ``{"sequence": N,
        "events": [{"module", "generation", "status", "kind", "reload", "sequence"}, ...],
        "missed": bool, "recording": bool}``.  Only for an agent that ``follows``."""
        result = self.request("wait", after=after, timeout=timeout)
        if not isinstance(result, dict) or type(result.get("sequence")) is not int:
            raise AttachError(f"the agent in process {self.pid} answered 'wait' with no sequence")
        events = result.get("events")
        result["events"] = (
            [e for e in events if isinstance(e, dict)] if type(events) is list else []
        )
        return result

    def _answer(self, on_progress: Callable[[Any], None] | None = None) -> Any:
        while True:
            reply = self._read()
            if not isinstance(reply, dict):
                raise AttachError(
                    f"the agent in process {self.pid} sent an answer that is no object"
                )
            rid = reply.get("id")
            if type(rid) is int and rid != self._next:
                continue  # the answer to an earlier request this client gave up on
            if on_progress is not None and "progress" in reply and "ok" not in reply:
                on_progress(reply["progress"])
                continue
            if not reply.get("ok"):
                raise AttachError(f"the agent in process {self.pid} answered: {reply.get('error')}")
            return reply.get("result")

    def scan(
        self, *, collect: bool = True, progress: Callable[[str], None] | None = None
    ) -> Report:
        """The target's report.  ``progress`` hears what is waited for: "scanning PID 123",
        then, from an agent that tells, "scanning 1,034,567 objects in PID 123"."""
        pid = self.pid

        def heard(news: Any) -> None:
            objects = news.get("objects") if isinstance(news, dict) else None
            if progress is not None and type(objects) is int and objects >= 0:
                progress(f"scanning {objects:,} objects in PID {pid}")

        if progress is not None:
            progress(f"scanning PID {pid}")
        self._send("scan", progress is not None, {"collect": collect})
        # The model loads while the agent scans.
        from ..model import Report

        result = self._answer(heard if progress is not None else None)
        sources = {
            m: {int(g): t for g, t in gens.items()} for m, gens in result.get("sources", {}).items()
        }
        report = Report.from_json(result["report"], sources, own=True)
        object.__setattr__(report, "facts", dict(result.get("facts") or {}))
        sequence = result.get("sequence")
        self.last_sequence = sequence if type(sequence) is int else None
        return report

    def fix(
        self,
        *,
        apply: bool = False,
        remove_leftovers: bool = False,
        only: list[str] | None = None,
        collect: bool = True,
    ) -> FixPlan | FixResult:
        """The target's repair plan, or (``apply``) the plan carried out (only the changes
        whose keys are in ``only``, when given) and the result of the scan run again."""
        from ..fixplan import FixPlan, FixResult

        params: dict[str, Any] = {"apply": apply, "remove_leftovers": remove_leftovers}
        params["collect"] = collect
        if only is not None:
            params["only"] = list(only)
        result = self.request("fix", **params)
        try:
            if apply:
                return FixResult.from_json(result)
            return FixPlan.from_json(result)
        except (ValueError, KeyError, TypeError) as e:
            msg = f"the agent in process {self.pid} sent a plan that is not valid: {e}"
            raise AttachError(msg) from None

    def snapshot(self, path: str | None = None, *, collect: bool = True) -> str:
        return str(self.request("snapshot", path=path, collect=collect))

    def detach(self) -> None:
        try:
            self.request("detach")
        finally:
            self.close()

    def close(self) -> None:
        for f in (self._out, self._sock):
            try:
                f.close()
            except OSError:
                pass

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ns(pid: int | str, kind: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None


def _ns_pid(pid: int) -> int:
    """The process's PID in its own PID namespace (the last field of ``NSpid:``)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        pass
    return pid


def other_mount_ns(pid: int) -> bool:
    """Does ``pid`` see another file system than we do (a container, systemd PrivateTmp)?"""
    mine, theirs = _ns("self", "mnt"), _ns(pid, "mnt")
    return mine is not None and theirs is not None and mine != theirs


def agent_place(pid: int, uid: int) -> tuple[str, str]:
    """(directory, socket name) of the agent of ``pid`` as this process can reach it: in the
    target's own /tmp (through ``/proc/PID/root`` when it sees another one), named by its PID
    and PID namespace as the agent itself names it (``server.socket_name``)."""
    directory = runtime_dir(uid)
    if other_mount_ns(pid):
        directory = f"/proc/{pid}/root{directory}"
    return directory, socket_name(_ns_pid(pid), _ns(pid, "pid"))


MAX_FAILURE = 4096


def failure_name(socket_name: str) -> str:
    """The file an injected agent that could not start leaves beside where its socket would
    be (``report_start_failure`` in the agent package): ``123.sock`` -> ``123.failed``."""
    return socket_name.removesuffix(".sock") + ".failed"


def start_failure(pid: int, uid: int | None = None, *, since: float | None = None) -> str | None:
    """Why the agent injected into ``pid`` could not start, as it wrote it (one line, control
    characters escaped), or None.  Read only from the checked private directory of the
    target's user (``AgentDir``), only a regular file of that user, at most ``MAX_FAILURE``
    bytes; the file is removed once read.  A file older than ``since`` (a time.time()) is
    from an earlier injection: removed, not believed."""
    try:
        directory = AgentDir(pid, os.getuid() if uid is None else uid)
    except AttachError:
        return None
    try:
        name = failure_name(directory.name)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory.fd)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != directory.uid:
                return None
            data = os.read(fd, MAX_FAILURE)
        finally:
            os.close(fd)
        try:
            os.unlink(name, dir_fd=directory.fd)
        except OSError:
            pass
        if since is not None and st.st_mtime < since - 1:
            return None
    finally:
        directory.close()
    from ..inert import inert

    text = data.decode("utf-8", "replace").strip().replace("\n", " ")
    return inert(text) or None


def agent_listens(pid: int, uid: int | None = None) -> bool:
    """Does a socket that may be the agent of ``pid`` exist (in a trustworthy directory, of
    the right user)?  Not proof: ``Client`` checks the process at the other end."""
    try:
        directory = AgentDir(pid, os.getuid() if uid is None else uid)
    except AttachError:
        return False
    try:
        directory.check_socket()
    except AttachError:
        return False
    finally:
        directory.close()
    # A socket file outlives a process killed with SIGKILL, and a new process may get its PID:
    # the file alone says nothing.  Believe it only when the process itself listens on it.
    listening = _listens_on(pid, os.path.join(runtime_dir(uid), directory.name))
    return listening is not False


_ACCEPTING = 0x10000  # __SO_ACCEPTCON in /proc/net/unix's Flags: a listening socket


def _listens_on(pid: int, path: str) -> bool | None:
    """Does ``pid`` hold a listening Unix socket bound at ``path`` (as the agent binds it: at
    ``path`` or at a temporary ``path.*`` name it then renames)?  None when /proc cannot tell
    (another user's process, without root)."""
    try:
        with open(f"/proc/{pid}/net/unix", encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()[1:]
        held = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                held.add(link[8:-1])
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        bound, listening = fields[7], int(fields[3], 16) & _ACCEPTING
        if listening and (bound == path or bound.startswith(path + ".")) and fields[6] in held:
            return True
    return False
