"""The agent's channel: a Unix socket only the same user can reach.

An injected agent serves one client at a time on its own thread (it leaves with that client).
``install()``'s agent gives each connection a thread of its own, at most ``MAX_CLIENTS`` at
once (more wait in the listen backlog), so a client that connected and idles never holds up
another; requests other than ``ping`` and ``wait`` run one at a time.  ``stop()`` closes every
connection and waits for their threads: none is left behind.

Where: ``/tmp/reloadscope-<uid>/<pid>.sock``, in a directory of mode 0700 owned by this user;
every peer's uid is checked with ``SO_PEERCRED``.  Never a TCP port.

Protocol: newline-delimited JSON.  On connect the agent sends a greeting
``{"reloadscope": PROTOCOL, "pid": ..., "python": ...}``; each request is one line
``{"id": N, "op": "...", ...}`` (at most ``MAX_REQUEST`` bytes) and gets one line
``{"id": N, "ok": true, "result": ...}`` or ``{"id": N, "ok": false, "error": "..."}``.  A
malformed or oversized request gets an error reply and the agent keeps serving.

A request with ``"progress": true`` may get progress lines ``{"id": N, "progress": {...}}``
before its answer (a scan sends ``{"objects": COUNT}`` once it has the heap's objects); a
client that does not ask gets none, and an agent that predates them never sends any, so old
clients and old agents both still work.

Following (``"follow": 1`` in the greeting; older agents lack it, and answer ``wait`` with
"unknown op"): ``{"op": "wait", "after": SEQ, "timeout": S}`` answers once the recorder's
generation events have passed SEQ, or after S seconds (at most ``MAX_WAIT_S``), or as soon as
the client sends anything more, with ``{"sequence": N, "events": [...], "missed": bool,
"recording": bool}``; ``"after": null`` answers at once with the sequence now.  A blank line
is no request (it gets no answer): a client sends one to end its pending wait early.  A
client that goes away while it waits gets no answer, and the wait ends within
``WAIT_SLICE_S``.
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import sys
import threading
import time

from . import forksafe

TYPE_CHECKING = False  # typing is not imported at run time: loading must stay cheap
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

PROTOCOL = 1
FOLLOW = 1  # the version of the ``wait`` request this agent answers (see above)
MAX_REQUEST = 1 << 20
THREAD_NAME = "reloadscope-agent"
# Connections an install() agent serves at once, each on a thread of its own.
MAX_CLIENTS = 4
# Requests that may run while another client's request runs (they only read or wait).
CONCURRENT_OPS = frozenset({"ping", "wait"})
MAX_WAIT_S = 30.0
# How often a waiting request looks whether its client sent more or went away.
WAIT_SLICE_S = 0.25


# Who to tell about progress, while this thread answers a request that asked for it; and how
# to know the client has more to say (or has gone).
_answering = threading.local()


class ClientGone(Exception):
    """Raised by a handler whose client went away while it waited: no answer is sent."""


def interrupted() -> bool:
    """Should the request this thread answers end early?  True when its client sent more
    (another request, or a blank line to hurry it) or went away, or the server stops; raises
    ``ClientGone`` when the client went away."""
    check = getattr(_answering, "interrupted", None)
    return check is not None and check()


def progress(news: dict[str, Any]) -> None:
    """Send ``news`` as a progress line of the request this thread is answering, when its
    client asked for progress; otherwise nothing.  Never raises: a client that went away is
    noticed when the answer is sent."""
    send = getattr(_answering, "send", None)
    if send is not None:
        try:
            send(news)
        except Exception:
            _answering.send = None


def runtime_dir(uid: int | None = None) -> str:
    """One fixed place per user, so a client finds an agent whatever either's environment."""
    return f"/tmp/reloadscope-{os.getuid() if uid is None else uid}"


def socket_path(pid: int, uid: int | None = None) -> str:
    return os.path.join(runtime_dir(uid), f"{pid}.sock")


# The initial PID namespace's inode number is fixed (PROC_PID_INIT_INO).
INIT_PID_NS = 0xEFFFFFFC


def socket_name(pid: int, pid_ns: int | None) -> str:
    """The socket's name for a process of PID ``pid`` in PID namespace ``pid_ns`` (an inode
    number, None when unknown): a process in another namespace (a container) has a PID there
    that means another process on the host, so its name carries the namespace too."""
    if pid_ns is None or pid_ns == INIT_PID_NS:
        return f"{pid}.sock"
    return f"{pid}.ns{pid_ns}.sock"


def own_socket_path() -> str:
    """Where this process's agent listens (its own PID and PID namespace, its own /tmp)."""
    try:
        pid_ns: int | None = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        pid_ns = None
    return os.path.join(runtime_dir(), socket_name(os.getpid(), pid_ns))


def _private_dir(path: str) -> None:
    """Create ``path`` with mode 0700, or check that an existing one is ours and private."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if st.st_uid != os.getuid() or (st.st_mode & 0o077) or not os.path.isdir(path):
        raise PermissionError(f"{path} is not a private directory of this user")


_NO_SIGPIPE = getattr(socket, "MSG_NOSIGNAL", 0)


class _Writer:
    """What the agent writes a client with: ``sendall`` with MSG_NOSIGNAL.  A client gone
    mid-answer then raises EPIPE here; a plain write would send SIGPIPE, which kills a target
    that restored its default action (``signal(SIGPIPE, SIG_DFL)``, as many CLI tools do)."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn

    def write(self, data: bytes) -> None:
        self.conn.sendall(data, _NO_SIGPIPE)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass  # the connection is closed by its owner


class Server:
    """Serves requests on the agent's own thread until ``stop()`` or a ``detach`` request."""

    def __init__(
        self,
        handlers: dict[str, Callable[[dict[str, Any]], Any]],
        on_detach: Callable[[Server], None] | None = None,
        idle: float | None = None,
    ) -> None:
        """``on_detach`` makes an injected agent's server: it leaves by itself when its client
        goes away without detaching (killed, terminal closed), and when no client has come for
        ``idle`` seconds (the injector died before connecting), so it is never left behind."""
        self.handlers = handlers
        self.on_detach = on_detach
        self.idle = idle
        self.path = own_socket_path()
        self.pid = os.getpid()  # a forked child has the object, not the socket file
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._conn: socket.socket | None = None  # the client being served
        self.thread: threading.Thread | None = None
        # install()'s agent: the threads serving connections, and those connections.
        self._clients: dict[threading.Thread, socket.socket] = {}
        self._clients_lock = threading.Lock()
        self._busy = threading.Lock()  # one request at a time, but for CONCURRENT_OPS

    def start(self) -> None:
        _private_dir(os.path.dirname(self.path))
        try:
            os.unlink(self.path)  # a socket left by a process that died
        except FileNotFoundError:
            pass
        # Kept at once: a child forked from here on closes its copy (forget_in_child).  Forks
        # wait while it is made: socket() gives up the GIL, and a child forked before the
        # assignment would keep an unbound socket nothing of it knows (forksafe.hold_forks).
        held = forksafe.hold_forks()
        try:
            sock = self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        finally:
            forksafe.release_forks(held)
        # Bind under a temporary name and rename once listening: a client that sees the path
        # can connect.
        tmp = f"{self.path}.{threading.get_ident()}.tmp"
        try:
            sock.bind(tmp)
            os.chmod(tmp, 0o600)
            sock.listen(16)
            os.rename(tmp, self.path)
            sock.settimeout(0.2)
        except BaseException:
            self._sock = None
            sock.close()
            raise
        self.thread = threading.Thread(target=self._serve, name=THREAD_NAME, daemon=True)
        self.thread.start()
        forksafe.remember(self.thread)  # its fork warning is the agent's until it is gone

    def forget_in_child(self) -> None:
        """In a forked child: close the copies of the parent's listening socket and of the
        connection it was serving.  Nothing is unlinked (the file is the parent's), no
        ``on_detach`` runs, and this object is never used again (not even its event: the
        parent's thread may have held its lock)."""
        # (install()'s clients are served on threads of their own: their connections too.)
        for sock in (self._conn, self._sock, *list(self._clients.values())):
            if sock is not None:
                try:
                    fd = sock.detach()  # not close(): a file made from it may still count
                    if fd >= 0:
                        os.close(fd)
                except OSError:
                    pass
        self._conn = self._sock = None
        # A connection the parent had accepted but not yet recorded (its thread was taking
        # the GIL back after accept() when the fork came): found by its address, ours.
        try:
            fds = os.listdir("/proc/self/fd")
        except OSError:
            return
        for name in fds:
            try:
                fd = int(name)
                if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                    continue
                probe = socket.socket(fileno=fd)
            except (OSError, ValueError):
                continue
            try:
                address = probe.getsockname()
            except OSError:
                address = None
            probe.detach()
            if type(address) is str and address.startswith(self.path):
                try:
                    os.close(fd)
                except OSError:
                    pass

    @property
    def stopping(self) -> bool:
        """Asked to stop (a client detached), though its thread may not have finished."""
        return self._stop.is_set()

    def stop(self, wait: bool = True) -> None:
        self._stop.set()
        t = self.thread
        if wait and t is not None and t is not threading.current_thread():
            t.join(5)

    # -- the thread ----------------------------------------------------------------------------
    def _serve(self) -> None:
        forksafe.this_thread()  # before anything it may import (see forksafe)
        injected = self.on_detach is not None
        waiting_since = time.monotonic()
        try:
            while not self._stop.is_set():
                assert self._sock is not None
                if not injected and self._serving() >= MAX_CLIENTS:
                    self._stop.wait(0.1)  # the next connection waits in the backlog
                    continue
                try:
                    conn, _ = self._sock.accept()
                except TimeoutError:
                    waited = time.monotonic() - waiting_since
                    if injected and self.idle is not None and waited > self.idle:
                        self._stop.set()  # nobody came: leave as if detached
                    continue
                except OSError:
                    break
                if not injected:
                    self._start_client(conn)
                    continue
                self._conn = conn
                try:
                    served = self._client(conn)
                except Exception:
                    served = False
                finally:
                    self._conn = None
                    conn.close()
                if injected and served:
                    # Its client is gone, detached or not: an injected agent leaves with it.
                    self._stop.set()
                waiting_since = time.monotonic()
        finally:
            self._close()

    def _serving(self) -> int:
        with self._clients_lock:
            return len(self._clients)

    def _start_client(self, conn: socket.socket) -> None:
        """Serve ``conn`` on a thread of its own (install()'s agent)."""
        t = threading.Thread(
            target=self._client_thread, args=(conn,), name=f"{THREAD_NAME}-client", daemon=True
        )
        with self._clients_lock:
            self._clients[t] = conn
        try:
            t.start()
        except BaseException:  # no thread to be had: this client is not served
            with self._clients_lock:
                self._clients.pop(t, None)
            conn.close()

    def _client_thread(self, conn: socket.socket) -> None:
        forksafe.this_thread()
        try:
            self._client(conn)
        except Exception:
            pass
        finally:
            with self._clients_lock:
                self._clients.pop(threading.current_thread(), None)
            conn.close()

    def _end_clients(self) -> None:
        """Close every connection (a thread waiting for its client's next line then ends)
        and wait for the threads, each finishing the request it may be answering."""
        with self._clients_lock:
            clients = list(self._clients.items())
        for _, conn in clients:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t, _ in clients:
            if t is not threading.current_thread():
                t.join(5)

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._unlink()
        self._end_clients()
        try:
            os.rmdir(os.path.dirname(self.path))  # only succeeds when no other agent is there
        except OSError:
            pass
        if self.on_detach is not None and self._stop.is_set():
            try:
                self.on_detach(self)
            except Exception:
                pass

    def _unlink(self) -> None:
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def _client(self, conn: socket.socket) -> bool:
        """Serve one connection until it ends; False when the peer was refused."""
        uid = struct.unpack(
            "3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        )[1]
        if uid not in (os.getuid(), 0):
            return False
        conn.settimeout(None)
        out = _Writer(conn)
        inp = conn.makefile("rb")
        try:
            _answering.interrupted = lambda: self._interrupted(conn)
            self._converse(inp, out)
        except ClientGone:
            pass
        except OSError:
            pass  # the client went away mid-answer: it is gone all the same
        finally:
            _answering.interrupted = None
            # The socket's descriptor closes only when its files are closed too; closing
            # ``out`` flushes what a gone client could not take, which fails again.
            for f in (inp, out):
                try:
                    f.close()
                except OSError:
                    pass
        return True

    def _converse(self, inp: Any, out: Any) -> None:
        self._send(
            out,
            {
                "reloadscope": PROTOCOL,
                "pid": os.getpid(),
                # "3.13.1t" on a free-threaded build (as safe.PY_VERSION; not imported:
                # this module loads nothing else of the agent).
                "python": "{}.{}.{}".format(*sys.version_info[:3])
                + ("t" if "t" in getattr(sys, "abiflags", "") else ""),
                # An injected agent leaves when this connection ends; install()'s stays.
                "injected": self.on_detach is not None,
                "follow": FOLLOW,
            },
        )
        while not self._stop.is_set():
            line = inp.readline(MAX_REQUEST + 1)
            if not line:
                return
            if len(line) > MAX_REQUEST and not line.endswith(b"\n"):
                while line and not line.endswith(b"\n"):  # drop the rest of the line
                    line = inp.readline(MAX_REQUEST)
                self._send(
                    out,
                    {"id": None, "ok": False, "error": f"request larger than {MAX_REQUEST} bytes"},
                )
                continue
            if not line.strip():
                continue  # a blank line: only there to end a wait early
            self._send(out, self._answer(line, out))
            if getattr(_answering, "leaving", False):
                _answering.leaving = False
                return

    def _interrupted(self, conn: socket.socket) -> bool:
        if self._stop.is_set():
            return True
        try:
            readable = select.select([conn], [], [], 0)[0]
            if not readable:
                return False
            if not conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT):
                raise ClientGone
        except (OSError, ValueError):
            raise ClientGone from None
        return True

    def _answer(self, line: bytes, out: Any = None) -> dict[str, Any]:
        try:
            req = json.loads(line)
        except ValueError:
            return {"id": None, "ok": False, "error": "request is not valid JSON"}
        if not isinstance(req, dict) or not isinstance(req.get("op"), str):
            return {"id": None, "ok": False, "error": "request needs an 'op' string"}
        rid = req.get("id")
        op = req["op"]
        if op == "detach":
            if self.on_detach is None:
                # install()'s agent stays for its other clients: only this connection ends.
                _answering.leaving = True
                return {"id": rid, "ok": True, "result": "detached"}
            self._stop.set()
            self._unlink()  # at once, so no new client connects to an agent that is leaving
            return {"id": rid, "ok": True, "result": "detached"}
        handler = self.handlers.get(op)
        if handler is None:
            return {"id": rid, "ok": False, "error": f"unknown op {op!r}"}
        if out is not None and req.get("progress") is True:
            _answering.send = lambda news: self._send(out, {"id": rid, "progress": news})
        busy = None if op in CONCURRENT_OPS else self._busy
        try:
            if busy is not None:
                busy.acquire()
            try:
                return {"id": rid, "ok": True, "result": handler(req)}
            finally:
                if busy is not None:
                    busy.release()
        except ClientGone:
            raise
        except Exception as e:
            said = str(e)
            if not said and type(e) is MemoryError:
                said = (
                    "the process ran out of memory while the agent answered; nothing in it "
                    "changed: free memory in it or raise its memory limit, then try again"
                )
            return {"id": rid, "ok": False, "error": f"{type(e).__name__}: {said}"}
        finally:
            _answering.send = None

    @staticmethod
    def _send(out: Any, msg: dict[str, Any]) -> None:
        out.write(json.dumps(msg, separators=(",", ":")).encode("utf-8") + b"\n")
        out.flush()
