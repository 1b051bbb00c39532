"""The ``.rsnap`` snapshot file: write, validate, load (format: docs/snapshot-format.md).

Loading is parsing plus validation of every field read: nothing in a file is ever executed,
unpickled or evaluated.  Anything that is not a valid snapshot raises ``SnapshotError``.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import zlib
from pathlib import Path
from typing import Any

from .agent import snapfile
from .model import FORMAT as REPORT_FORMAT
from .model import Report, ReportError

FORMAT = snapfile.FORMAT
VERSION = snapfile.VERSION
SUFFIX = snapfile.SUFFIX
MAX_BYTES = 1 << 30  # decompressed; a larger file is refused rather than read into memory


class SnapshotError(ValueError):
    """The file is not a valid reloadscope snapshot; the message says why."""


def write(report: Report, path: str | os.PathLike[str] | None = None) -> Path:
    """Write ``report`` (with its sources) as a snapshot file; returns the path written."""
    target = path if path is not None else snapfile.default_name(report.pid)
    doc = snapfile.document(report.to_json(), report.sources, report.exit, report.facts or None)
    return Path(snapfile.write(target, doc))


def _read(path: Path) -> bytes:
    try:
        if path.is_dir():
            raise SnapshotError(f"{path} is a directory, not a snapshot file")
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise SnapshotError(f"{path}: no such file") from None
    except PermissionError:
        raise SnapshotError(
            f"{path}: permission denied (check the file's owner and mode)"
        ) from None
    except OSError as e:
        raise SnapshotError(f"{path}: cannot read: {e.strerror or e}") from None
    if not data:
        raise SnapshotError(f"{path} is empty, not a snapshot file")
    if len(data) > MAX_BYTES:
        raise SnapshotError(f"{path} is larger than {MAX_BYTES} bytes; not a snapshot file")
    return data


def _decompress(path: Path, data: bytes) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
            out = gz.read(MAX_BYTES + 1)
    except EOFError:
        raise SnapshotError(f"{path} is truncated (the compressed data ends early)") from None
    except (OSError, zlib.error) as e:
        raise SnapshotError(f"{path} is damaged: {e}") from None
    if len(out) > MAX_BYTES:
        raise SnapshotError(f"{path} expands beyond {MAX_BYTES} bytes; refusing to load it")
    return out


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


def load(path: str | os.PathLike[str]) -> Report:
    """Read a snapshot file (or a report document saved with ``report --json``)."""
    p = Path(path)
    data = _read(p)
    if data[:2] == b"\x1f\x8b":
        text = _decompress(p, data)
    elif data.lstrip()[:1] == b"{":
        text = data  # a bare report document, as ``reloadscope report --json`` prints
    else:
        raise SnapshotError(f"{p} is not a reloadscope snapshot: {_what_it_is(data)}")
    try:
        doc = json.loads(text)
    except UnicodeDecodeError:
        raise SnapshotError(f"{p} is not a reloadscope snapshot: not UTF-8 JSON") from None
    except RecursionError:
        raise SnapshotError(f"{p} is not a reloadscope snapshot: JSON nested too deeply") from None
    except ValueError as e:
        raise SnapshotError(f"{p} is not a reloadscope snapshot: invalid JSON ({e})") from None
    try:
        return from_document(doc)
    except SnapshotError as e:
        raise SnapshotError(f"{p}: {e}") from None
    except (ReportError, RecursionError) as e:
        raise SnapshotError(f"{p}: invalid snapshot: {e}") from None


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
