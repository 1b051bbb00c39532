"""The ``.rsnap`` snapshot file: write, validate, load (format: docs/snapshot-format.md).

Loading is parsing plus validation of every field read: nothing in a file is ever executed,
unpickled or evaluated.  Anything that is not a valid snapshot raises ``SnapshotError``.
"""

from __future__ import annotations

import gzip
import json
import os
import stat
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from .agent import snapfile
from .model import FORMAT as REPORT_FORMAT
from .model import Report, ReportError

FORMAT = snapfile.FORMAT
VERSION = snapfile.VERSION
SUFFIX = snapfile.SUFFIX
# Bounds on what a file may cost before it is refused (docs/snapshot-format.md, "Bounds").
MAX_BYTES = 128 << 20  # decompressed (or bare JSON) bytes: 17x a 10,000-entry snapshot
MAX_VALUES = 4_000_000  # ',' '[' '{' bytes counted while reading: 12x a 10,000-entry one
MAX_DEPTH = 64  # nesting of arrays and objects; real documents nest 8 deep
CHUNK = 1 << 20


class SnapshotError(ValueError):
    """The file is not a valid reloadscope snapshot; the message says why."""


def write(report: Report, path: str | os.PathLike[str] | None = None) -> Path:
    """Write ``report`` (with its sources) as a snapshot file; returns the path written."""
    target = path if path is not None else snapfile.default_name(report.pid)
    doc = snapfile.document(report.to_json(), report.sources, report.exit, report.facts or None)
    return Path(snapfile.write(target, doc))


def dump(report: Report, stream: BinaryIO) -> None:
    """Write ``report`` as a snapshot file's bytes to a binary stream (``snapshot -o -``)."""
    doc = snapfile.document(report.to_json(), report.sources, report.exit, report.facts or None)
    stream.write(snapfile.encode(doc))
    stream.flush()


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _check_regular(path: Path, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kind = next((what for test, what in _KINDS if test(mode)), "not a regular file")
    if kind == "a directory":
        raise SnapshotError(f"{path} is a directory, not a snapshot file")
    raise SnapshotError(f"{path}: is {kind}, not a snapshot file; give the path of a .rsnap file")


def _open(path: Path) -> BinaryIO:
    """Open a regular file for reading; anything else is refused before a byte is read."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        # stat first: opening some devices has effects; O_NONBLOCK: a FIFO's open never waits.
        _check_regular(path, os.stat(path).st_mode)
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise SnapshotError(f"{path}: no such file") from None
    except PermissionError:
        raise SnapshotError(
            f"{path}: permission denied (check the file's owner and mode)"
        ) from None
    except OSError as e:
        raise SnapshotError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        _check_regular(path, st.st_mode)  # it may have been replaced since the stat
        if st.st_size > MAX_BYTES:
            raise SnapshotError(
                f"{path}: is {st.st_size} bytes, more than the {_mib(MAX_BYTES)} a snapshot "
                "may have; refusing to read it"
            )
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _mib(n: int) -> str:
    return f"{n >> 20} MiB"


def _collect(path: Path, read: Callable[[int], bytes], first: bytes = b"") -> bytearray:
    """Read to the end, refusing (before parsing) data too large or with too many values."""
    data = bytearray()
    values = 0
    chunk = first or read(CHUNK)
    while chunk:
        if len(data) + len(chunk) > MAX_BYTES:
            raise SnapshotError(
                f"{path}: expands beyond {_mib(MAX_BYTES)}, more than a snapshot may hold; "
                "refusing to load it"
            )
        # Every JSON value but the first follows a ',' or opens with '[' or '{': this bounds
        # the number of Python objects parsing would build (bytes in strings only add to it).
        values += chunk.count(b",") + chunk.count(b"[") + chunk.count(b"{")
        if values > MAX_VALUES:
            raise SnapshotError(
                f"{path}: holds more than {MAX_VALUES:,} JSON values, more than a snapshot "
                "may have; refusing to load it"
            )
        data += chunk
        chunk = read(CHUNK)
    return data


class _Prefixed:
    """A byte stream with what was already read of it put back in front (stdin cannot seek)."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self.head = head
        self.stream = stream

    def read(self, n: int = -1) -> bytes:
        if self.head:
            out, self.head = (
                (self.head, b"")
                if n < 0 or n >= len(self.head)
                else (
                    self.head[:n],
                    self.head[n:],
                )
            )
            return out
        return self.stream.read(n)


def _contents(path: Path, stream: BinaryIO | None = None) -> bytearray:
    if stream is not None:
        return _stream_contents(path, stream)
    with _open(path) as fh:
        try:
            head = fh.read(CHUNK)
        except OSError as e:
            raise SnapshotError(f"{path}: cannot read: {e.strerror or e}") from None
        if not head:
            raise SnapshotError(f"{path} is empty, not a snapshot file")
        if head[:2] == b"\x1f\x8b":
            fh.seek(0)
            try:
                with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
                    return _collect(path, gz.read)
            except EOFError:
                raise SnapshotError(
                    f"{path} is truncated (the compressed data ends early)"
                ) from None
            except (OSError, zlib.error) as e:
                raise SnapshotError(f"{path} is damaged: {e}") from None
        if head.lstrip()[:1] != b"{":
            raise SnapshotError(f"{path} is not a reloadscope snapshot: {_what_it_is(head)}")
        try:
            # a bare report document, as ``reloadscope report --json`` prints
            return _collect(path, fh.read, head)
        except OSError as e:
            raise SnapshotError(f"{path}: cannot read: {e.strerror or e}") from None


def _stream_contents(path: Path, stream: BinaryIO) -> bytearray:
    """``_contents`` of a stream that cannot seek (``reloadscope report -``), same bounds."""
    try:
        head = stream.read(CHUNK)
        if not head:
            raise SnapshotError(f"{path} is empty, not a snapshot")
        if head[:2] == b"\x1f\x8b":
            try:
                with gzip.GzipFile(fileobj=_Prefixed(head, stream), mode="rb") as gz:  # type: ignore[call-overload]
                    return _collect(path, gz.read)
            except EOFError:
                raise SnapshotError(
                    f"{path} is truncated (the compressed data ends early)"
                ) from None
            except zlib.error as e:
                raise SnapshotError(f"{path} is damaged: {e}") from None
        if head.lstrip()[:1] != b"{":
            raise SnapshotError(f"{path} is not a reloadscope snapshot: {_what_it_is(head)}")
        return _collect(path, stream.read, head)
    except OSError as e:
        raise SnapshotError(f"{path}: cannot read: {e.strerror or e}") from None


def _what_it_is(data: bytes) -> str:
    if data[:1] == b"\x80" or data[:2] in (b"(d", b"(l", b"}q", b"]q"):
        return "it looks like a pickle, which reloadscope never loads"
    if data[:4] == b"PK\x03\x04":
        return "it is a zip archive"
    try:
        data[:512].decode("utf-8")
    except UnicodeDecodeError:
        return "it is binary data of another kind"
    return "it is plain text"


def _too_deep(doc: Any) -> bool:
    """Whether arrays and objects nest deeper than ``MAX_DEPTH`` (level by level, no recursion)."""
    level = [doc]
    for _ in range(MAX_DEPTH):
        dicts = [n for n in level if type(n) is dict]
        lists = [n for n in level if type(n) is list]
        level = [c for n in dicts for c in n.values() if type(c) is dict or type(c) is list]
        level += [c for n in lists for c in n if type(c) is dict or type(c) is list]
        if not level:
            return False
    return True


def load(path: str | os.PathLike[str], *, stream: BinaryIO | None = None) -> Report:
    """Read a snapshot file (or a report document saved with ``report --json``); with
    ``stream``, read it from there instead (``path`` names it in messages: ``-`` for stdin).

    Costs are bounded: see ``MAX_BYTES``, ``MAX_VALUES`` and ``MAX_DEPTH``.
    """
    p = Path(path)
    try:
        data = _contents(p, stream)
        try:
            text = data.decode(json.detect_encoding(data), "surrogatepass")
        except UnicodeDecodeError:
            raise SnapshotError(f"{p} is not a reloadscope snapshot: not UTF-8 JSON") from None
        del data  # only the text is kept while the objects are built
        try:
            doc = json.loads(text)
        except RecursionError:
            raise SnapshotError(
                f"{p} is not a reloadscope snapshot: JSON nested too deeply"
            ) from None
        except ValueError as e:
            raise SnapshotError(f"{p} is not a reloadscope snapshot: invalid JSON ({e})") from None
        del text
        if _too_deep(doc):
            raise SnapshotError(
                f"{p}: arrays and objects nest more than {MAX_DEPTH} deep; not a snapshot"
            )
        try:
            return from_document(doc)
        except SnapshotError as e:
            raise SnapshotError(f"{p}: {e}") from None
        except (ReportError, RecursionError) as e:
            raise SnapshotError(f"{p}: invalid snapshot: {e}") from None
    except MemoryError:
        raise SnapshotError(f"{p}: not enough memory to load it") from None


def from_document(doc: Any) -> Report:
    """Validate a parsed snapshot (or report) document and build the Report."""
    if not isinstance(doc, dict):
        raise SnapshotError("not a reloadscope snapshot: the JSON is not an object")
    fmt = doc.get("format")
    if fmt == REPORT_FORMAT:
        return Report.from_json(doc, own=True)
    if fmt != FORMAT:
        raise SnapshotError(f"not a reloadscope snapshot: format is {fmt!r}, expected {FORMAT!r}")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SnapshotError(f"invalid snapshot: version {version!r} is not a positive integer")
    if version > VERSION:
        raise SnapshotError(
            f"snapshot format version {version} is newer than this reloadscope reads "
            f"(version {VERSION}); upgrade reloadscope to open it"
        )
    sources = _sources(doc.get("sources", {}))
    facts = doc.get("process", {})
    if not isinstance(facts, dict):
        raise SnapshotError("invalid snapshot: 'process' is not an object")
    exit_info = doc.get("exit")
    if exit_info is not None and not isinstance(exit_info, dict):
        raise SnapshotError("invalid snapshot: 'exit' is not an object")
    if "report" not in doc:
        raise SnapshotError("invalid snapshot: missing field 'report'")
    report = Report.from_json(doc["report"], sources, own=True)
    object.__setattr__(report, "facts", dict(facts))
    object.__setattr__(report, "exit", exit_info)
    return report


def _sources(raw: Any) -> dict[str, dict[int, str]]:
    if not isinstance(raw, dict):
        raise SnapshotError("invalid snapshot: 'sources' is not an object")
    out: dict[str, dict[int, str]] = {}
    for module, gens in raw.items():
        if not isinstance(gens, dict):
            raise SnapshotError(f"invalid snapshot: sources[{module!r}] is not an object")
        texts: dict[int, str] = {}
        for number, text in gens.items():
            if not (isinstance(number, str) and number.isdigit() and isinstance(text, str)):
                raise SnapshotError(f"invalid snapshot: sources[{module!r}] has a bad entry")
            texts[int(number)] = text
        out[module] = texts
    return out
