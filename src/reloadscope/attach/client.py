"""Talking to an agent over its Unix socket (protocol: reloadscope.agent.server)."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from ..agent.server import PROTOCOL, socket_path
from ..model import Report

MAX_RESPONSE = 1 << 30


class AttachError(Exception):
    """The process cannot be reached; the message says why and what to do."""


class Client:
    """One connection to the agent in process ``pid``."""

    def __init__(self, pid: int, *, timeout: float = 120.0, uid: int | None = None) -> None:
        self.pid = pid
        self.path = socket_path(pid, uid)
        self._next = 0
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(self.path)
        except FileNotFoundError:
            sock.close()
            raise AttachError(f"no reloadscope agent listens in process {pid}") from None
        except OSError as e:
            sock.close()
            raise AttachError(f"cannot connect to the agent of process {pid}: {e}") from None
        self._sock = sock
        self._in = sock.makefile("rb")
        self._out = sock.makefile("wb")
        hello = self._read()
        if not isinstance(hello, dict) or hello.get("reloadscope") != PROTOCOL:
            self.close()
            raise AttachError(
                f"the agent in process {pid} speaks protocol {hello.get('reloadscope')!r}, "
                f"this reloadscope speaks {PROTOCOL}; use the same reloadscope version"
            )
        self.python: str = str(hello.get("python", "?"))

    def _read(self) -> Any:
        try:
            line = self._in.readline(MAX_RESPONSE)
        except OSError as e:
            raise AttachError(f"lost the connection to process {self.pid}: {e}") from None
        if not line:
            raise AttachError(f"process {self.pid} closed the connection (did it exit?)")
        return json.loads(line)

    def request(self, op: str, **params: Any) -> Any:
        self._next += 1
        msg = {"id": self._next, "op": op, **params}
        try:
            self._out.write(json.dumps(msg).encode() + b"\n")
            self._out.flush()
            reply = self._read()
        except (OSError, ValueError) as e:
            raise AttachError(f"lost the connection to process {self.pid}: {e}") from None
        if not reply.get("ok"):
            raise AttachError(f"the agent in process {self.pid} answered: {reply.get('error')}")
        return reply.get("result")

    def scan(self, *, collect: bool = True) -> Report:
        result = self.request("scan", collect=collect)
        sources = {
            m: {int(g): t for g, t in gens.items()} for m, gens in result.get("sources", {}).items()
        }
        report = Report.from_json(result["report"], sources, own=True)
        object.__setattr__(report, "facts", dict(result.get("facts") or {}))
        return report

    def snapshot(self, path: str | None = None, *, collect: bool = True) -> str:
        return str(self.request("snapshot", path=path, collect=collect))

    def detach(self) -> None:
        try:
            self.request("detach")
        finally:
            self.close()

    def close(self) -> None:
        for f in (self._in, self._out, self._sock):
            try:
                f.close()
            except OSError:
                pass

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def agent_listens(pid: int, uid: int | None = None) -> bool:
    return os.path.exists(socket_path(pid, uid))
