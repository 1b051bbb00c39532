"""Writing ``.rsnap`` snapshot files (stdlib only: the target writes its own post-mortem).

The format is described in docs/snapshot-format.md: gzip-compressed UTF-8 JSON, one object
``{"format": "reloadscope-snapshot", "version": 1, "report": ..., "sources": ..., ...}``.
Written atomically: a temporary file in the same directory, flushed and fsynced, then renamed
over the target name, so a crash leaves the old file or none, never a torn one.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False  # typing is not imported at run time: loading must stay cheap
if TYPE_CHECKING:
    from typing import Any

FORMAT = "reloadscope-snapshot"
VERSION = 1
SUFFIX = ".rsnap"


def default_name(pid: int | None = None) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return f"reloadscope-{pid if pid is not None else os.getpid()}-{stamp}{SUFFIX}"


def process_facts() -> dict[str, Any]:
    """What the snapshot records about the process beyond the report's ``process``."""
    facts: dict[str, Any] = {
        "executable": sys.executable,
        "cwd": _safe(os.getcwd),
        "platform": sys.platform,
    }
    try:
        with open(f"/proc/{os.getpid()}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime", "rb") as fh:
            uptime = float(fh.read().split()[0])
        facts["started_at_unix"] = round(time.time() - uptime + int(fields[19]) / ticks, 3)
        facts["rss_bytes"] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    return facts


def _safe(fn: Any) -> Any:
    try:
        return fn()
    except OSError:
        return None


def document(
    report: dict[str, Any],
    sources: dict[str, dict[int, str]],
    exit_info: dict[str, Any] | None = None,
    facts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The snapshot document; ``facts`` default to this process's."""
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "report": report,
        "sources": {m: {str(g): t for g, t in gens.items()} for m, gens in sources.items()},
        "process": facts if facts is not None else process_facts(),
    }
    if exit_info is not None:
        doc["exit"] = exit_info
    return doc


def encode(doc: dict[str, Any]) -> bytes:
    """The bytes of a snapshot file holding ``doc``."""
    import gzip  # here, not at load: an injected agent rarely writes files
    import json

    return gzip.compress(json.dumps(doc, separators=(",", ":")).encode("utf-8"), 6, mtime=0)


def write(path: str | os.PathLike[str], doc: dict[str, Any]) -> str:
    """Write ``doc`` to ``path`` atomically; returns the absolute path written."""
    final = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(final) or "."
    data = encode(doc)
    tmp = os.path.join(directory, f".rsnap-{os.getpid()}-{os.urandom(6).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return final
