"""The report: host-side value objects over the report document (SPEC: version 1).

A ``Report`` keeps the document it was built from, so fields this version does not know survive
a round trip; the typed attributes are read-only views checked on construction.

The classes are frozen value objects as ``@dataclass(frozen=True)`` would make them (the same
constructors, ``==``, ``hash`` and ``repr``; assigning raises ``FrozenInstanceError``), written
out: importing ``dataclasses`` (it imports ``inspect``) and building six classes with it took
longer than the scan 'reloadscope report PID --json' waits for (benchmarks/cli_start.py).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time: starting must stay cheap
if TYPE_CHECKING:
    from typing import Any

    from .holders import Holder

FORMAT = "reloadscope-report"
VERSION = 1
KINDS = ("function", "class", "instance", "module", "code", "other")
ROOTS = ("module", "thread", "other")


class ReportError(ValueError):
    """The document is not a valid report document."""


class FrozenInstanceError(AttributeError):
    """An attribute of a value object was assigned or deleted (as ``dataclasses``')."""


class _Value:
    """What ``@dataclass(frozen=True)`` gives: ``_FIELDS`` are compared, hashed and shown,
    in order; a subclass's ``__init__`` sets its attributes with ``object.__setattr__``."""

    _FIELDS: tuple[str, ...] = ()
    __match_args__: tuple[str, ...] = ()

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f) for f in self._FIELDS)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, _Value)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        shown = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._FIELDS)
        return f"{self.__class__.__qualname__}({shown})"

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")


def _set(obj: _Value, **values: Any) -> None:
    for name, value in values.items():
        object.__setattr__(obj, name, value)


def _get(
    d: dict, key: str, types: type | tuple[type, ...], where: str, *, optional: bool = False
) -> Any:
    if key not in d:
        if optional:
            return None
        raise ReportError(f"{where}: missing field {key!r}")
    value = d[key]
    if value is None and optional:
        return None
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise ReportError(f"{where}.{key}: expected {_names(types)}, got a boolean")
    if not isinstance(value, types):
        raise ReportError(f"{where}.{key}: expected {_names(types)}, got {type(value).__name__}")
    return value


def _names(types: type | tuple[type, ...]) -> str:
    ts = types if isinstance(types, tuple) else (types,)
    return " or ".join(t.__name__ for t in ts)


def _list_of_str(d: dict, key: str, where: str) -> tuple[str, ...]:
    items = _get(d, key, list, where)
    for i, s in enumerate(items):
        if not isinstance(s, str):
            raise ReportError(f"{where}.{key}[{i}]: expected str")
    return tuple(items)


class Path(_Value):
    _FIELDS = __match_args__ = ("root", "text", "hint", "depth", "object_id", "steps")
    root: str
    text: str
    hint: str
    depth: int  # objects between the root and the object (differs between CPythons)
    object_id: int | None  # the object in the scanned process (meaningless elsewhere)
    # Labelled steps of ``text`` (the same on every CPython); None in older documents.
    steps: int | None

    def __init__(
        self,
        root: str,
        text: str,
        hint: str = "",
        depth: int = 0,
        object_id: int | None = None,
        steps: int | None = None,
    ) -> None:
        _set(self, root=root, text=text, hint=hint, depth=depth, object_id=object_id, steps=steps)

    @classmethod
    def from_json(cls, d: Any, where: str) -> Path:
        if not isinstance(d, dict):
            raise ReportError(f"{where}: expected an object")
        root = _get(d, "root", str, where)
        if root not in ROOTS:
            raise ReportError(f"{where}.root: unknown root {root!r}")
        return cls(
            root,
            _get(d, "text", str, where),
            _get(d, "hint", str, where, optional=True) or "",
            _get(d, "depth", int, where, optional=True) or 0,
            _get(d, "object_id", int, where, optional=True),
            _get(d, "steps", int, where, optional=True),
        )


class Evidence(_Value):
    """Why an entry is stale: a short identifier (README lists them) and a sentence."""

    _FIELDS = __match_args__ = ("kind", "text")
    kind: str
    text: str

    def __init__(self, kind: str, text: str) -> None:
        _set(self, kind=kind, text=text)

    @classmethod
    def from_json(cls, d: Any, where: str) -> Evidence | None:
        if d is None:
            return None
        if not isinstance(d, dict):
            raise ReportError(f"{where}: expected an object")
        return cls(_get(d, "kind", str, where), _get(d, "text", str, where))


class StaleObject(_Value):
    _FIELDS = __match_args__ = (
        "kind",
        "qualname",
        "type",
        "generation",
        "count",
        "size",
        "paths",
        "evidence",
        "in_traceback",
    )
    kind: str
    qualname: str
    type: str
    generation: int | None
    count: int
    size: int
    paths: tuple[Path, ...]
    evidence: Evidence | None  # absent in documents from before evidence was reported
    # Post-mortem: a frame of the crash's traceback ran its code or held it.
    in_traceback: bool

    def __init__(
        self,
        kind: str,
        qualname: str,
        type: str,
        generation: int | None,
        count: int,
        size: int,
        paths: tuple[Path, ...],
        evidence: Evidence | None = None,
        in_traceback: bool = False,
    ) -> None:
        _set(
            self,
            kind=kind,
            qualname=qualname,
            type=type,
            generation=generation,
            count=count,
            size=size,
            paths=paths,
            evidence=evidence,
            in_traceback=in_traceback,
        )

    @classmethod
    def from_json(cls, d: Any, where: str) -> StaleObject:
        if not isinstance(d, dict):
            raise ReportError(f"{where}: expected an object")
        kind = _get(d, "kind", str, where)
        if kind not in KINDS:
            raise ReportError(f"{where}.kind: unknown kind {kind!r}")
        paths = _get(d, "paths", list, where)
        return cls(
            kind,
            _get(d, "qualname", str, where),
            _get(d, "type", str, where),
            _get(d, "generation", int, where, optional=True),
            _get(d, "count", int, where),
            _get(d, "size", int, where),
            tuple(Path.from_json(p, f"{where}.paths[{i}]") for i, p in enumerate(paths)),
            Evidence.from_json(d.get("evidence"), f"{where}.evidence"),
            d.get("in_traceback") is True,
        )


class Figures(_Value):
    """What one generation still has alive (the timeline): ``stale`` objects (entries'
    ``count`` summed), their ``stale_bytes`` (entries' ``size`` summed), and ``retained_bytes``,
    a lower bound of the bytes only they keep alive, theirs included (None: not measured, as in
    files from before the timeline); ``retained_capped`` when the scan's bound stopped it."""

    _FIELDS = __match_args__ = ("stale", "stale_bytes", "retained_bytes", "retained_capped")
    stale: int
    stale_bytes: int
    retained_bytes: int | None
    retained_capped: bool

    def __init__(
        self,
        stale: int = 0,
        stale_bytes: int = 0,
        retained_bytes: int | None = None,
        retained_capped: bool = False,
    ) -> None:
        _set(
            self,
            stale=stale,
            stale_bytes=stale_bytes,
            retained_bytes=retained_bytes,
            retained_capped=retained_capped,
        )

    @classmethod
    def from_json(cls, d: dict, where: str) -> Figures | None:
        """None when ``d`` has no ``stale`` count (a document from before the timeline)."""
        if _get(d, "stale", int, where, optional=True) is None:
            return None
        return cls(
            d["stale"],
            _get(d, "stale_bytes", int, where, optional=True) or 0,
            _get(d, "retained_bytes", int, where, optional=True),
            _get(d, "retained_capped", bool, where, optional=True) is True,
        )


class Generation(_Value):
    _FIELDS = __match_args__ = (
        "number",
        "started_at",
        "source_sha256",
        "kind",
        "status",
        "trigger",
        "error",
        "figures",
    )
    number: int
    started_at: str
    source_sha256: str | None
    kind: str
    status: str
    trigger: str | None
    error: str | None
    # The timeline; a document from before it gets them from its entries (Module.from_json).
    figures: Figures

    def __init__(
        self,
        number: int,
        started_at: str,
        source_sha256: str | None,
        kind: str = "reload",
        status: str = "unknown",
        trigger: str | None = None,
        error: str | None = None,
        figures: Figures | None = None,
    ) -> None:
        _set(
            self,
            number=number,
            started_at=started_at,
            source_sha256=source_sha256,
            kind=kind,
            status=status,
            trigger=trigger,
            error=error,
            figures=Figures() if figures is None else figures,
        )

    @property
    def stale(self) -> int:
        return self.figures.stale

    @property
    def stale_bytes(self) -> int:
        return self.figures.stale_bytes

    @property
    def retained_bytes(self) -> int | None:
        return self.figures.retained_bytes

    @classmethod
    def from_json(cls, d: Any, where: str, stale: tuple[StaleObject, ...] = ()) -> Generation:
        if not isinstance(d, dict):
            raise ReportError(f"{where}: expected an object")
        number = _get(d, "number", int, where)
        figures = Figures.from_json(d, where)
        if figures is None:  # from before the timeline: its entries tell the first two
            mine = [s for s in stale if s.generation == number]
            figures = Figures(sum(s.count for s in mine), sum(s.size for s in mine))
        return cls(
            number,
            _get(d, "started_at", str, where),
            _get(d, "source_sha256", str, where, optional=True),
            _get(d, "kind", str, where, optional=True) or "reload",
            _get(d, "status", str, where, optional=True) or "unknown",
            _get(d, "trigger", str, where, optional=True),
            _get(d, "error", str, where, optional=True),
            figures,
        )


class Module(_Value):
    _FIELDS = __match_args__ = (
        "name",
        "file",
        "current_generation",
        "generations",
        "leftover_names",
        "stale",
        "warnings",
        "generations_known",
        "unknown_generation",
    )
    name: str
    file: str | None
    current_generation: int | None
    generations: tuple[Generation, ...]
    leftover_names: tuple[str, ...]
    stale: tuple[StaleObject, ...]
    warnings: tuple[str, ...]
    # False when the module's executions were not recorded (a late agent): the stale objects
    # come from earlier executions found by evidence, their numbers unknown.
    generations_known: bool
    # The timeline's figures for stale objects whose generation is unknown (made before
    # recording): None when there are none.
    unknown_generation: Figures | None

    def __init__(
        self,
        name: str,
        file: str | None,
        current_generation: int | None,
        generations: tuple[Generation, ...],
        leftover_names: tuple[str, ...],
        stale: tuple[StaleObject, ...],
        warnings: tuple[str, ...] = (),
        generations_known: bool = True,
        unknown_generation: Figures | None = None,
    ) -> None:
        _set(
            self,
            name=name,
            file=file,
            current_generation=current_generation,
            generations=generations,
            leftover_names=leftover_names,
            stale=stale,
            warnings=warnings,
            generations_known=generations_known,
            unknown_generation=unknown_generation,
        )

    @property
    def stale_count(self) -> int:
        return sum(s.count for s in self.stale)

    @classmethod
    def from_json(cls, d: Any, where: str) -> Module:
        if not isinstance(d, dict):
            raise ReportError(f"{where}: expected an object")
        gens = _get(d, "generations", list, where)
        stale = tuple(
            StaleObject.from_json(s, f"{where}.stale[{i}]")
            for i, s in enumerate(_get(d, "stale", list, where))
        )
        unknown = _get(d, "unknown_generation", dict, where, optional=True)
        unknown_figures = (
            Figures.from_json(unknown, f"{where}.unknown_generation")
            if unknown is not None
            else None
        )
        if unknown is None and not any(isinstance(g, dict) and "stale" in g for g in gens):
            # From before the timeline: the entries of unknown generation tell their count.
            mine = [s for s in stale if s.generation is None]
            if mine:
                unknown_figures = Figures(sum(s.count for s in mine), sum(s.size for s in mine))
        return cls(
            _get(d, "name", str, where),
            _get(d, "file", str, where, optional=True),
            _get(d, "current_generation", int, where, optional=True),
            tuple(
                Generation.from_json(g, f"{where}.generations[{i}]", stale)
                for i, g in enumerate(gens)
            ),
            _list_of_str(d, "leftover_names", where),
            stale,
            _list_of_str(d, "warnings", where) if "warnings" in d else (),
            _get(d, "generations_known", bool, where, optional=True) is not False,
            unknown_figures,
        )


class Report(_Value):
    """A scan's findings.  ``sources`` maps module -> generation -> source text (not in JSON).

    ``sources``, ``document``, ``facts`` and ``exit`` are neither compared nor shown."""

    _FIELDS = (
        "pid",
        "python",
        "argv",
        "taken_at",
        "duration_s",
        "objects",
        "complete",
        "modules",
        "blind_spots",
    )
    __match_args__ = (
        "pid",
        "python",
        "argv",
        "taken_at",
        "duration_s",
        "objects",
        "complete",
        "modules",
        "sources",
        "document",
        "facts",
        "exit",
        "blind_spots",
    )
    pid: int
    python: str
    argv: tuple[str, ...]
    taken_at: str
    duration_s: float
    objects: int
    complete: bool
    modules: tuple[Module, ...]
    sources: dict[str, dict[int, str]]
    document: dict[str, Any]
    # From snapshot files: process facts (executable, start time, RSS) and how it ended.
    facts: dict[str, Any]
    exit: dict[str, Any] | None
    # What the scan could not judge (SPEC: "scan"."blind_spots").
    blind_spots: tuple[str, ...]

    def __init__(
        self,
        pid: int,
        python: str,
        argv: tuple[str, ...],
        taken_at: str,
        duration_s: float,
        objects: int,
        complete: bool,
        modules: tuple[Module, ...],
        sources: dict[str, dict[int, str]] | None = None,
        document: dict[str, Any] | None = None,
        facts: dict[str, Any] | None = None,
        exit: dict[str, Any] | None = None,
        blind_spots: tuple[str, ...] = (),
    ) -> None:
        _set(
            self,
            pid=pid,
            python=python,
            argv=argv,
            taken_at=taken_at,
            duration_s=duration_s,
            objects=objects,
            complete=complete,
            modules=modules,
            sources={} if sources is None else sources,
            document={} if document is None else document,
            facts={} if facts is None else facts,
            exit=exit,
            blind_spots=blind_spots,
        )

    @property
    def stale_count(self) -> int:
        return sum(m.stale_count for m in self.modules)

    @property
    def holders(self) -> tuple[Holder, ...]:
        """The root causes: stale entries grouped by what holds them, most stale objects
        first (SPEC: ``"holders"``; computed from ``modules``, see ``reloadscope.holders``)."""
        cached = self.__dict__.get("_holders")
        if cached is None:
            from .holders import group

            cached = tuple(group(self.modules))
            object.__setattr__(self, "_holders", cached)
        return cached

    def module(self, name: str) -> Module | None:
        return next((m for m in self.modules if m.name == name), None)

    def text(self) -> str:
        """The readable summary, exactly what ``reloadscope report`` prints (without colour)."""
        from .textreport import render

        return render(self)

    def __str__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's text display of a cell's value: the readable summary."""
        p.text(f"<Report pid {self.pid}>" if cycle else self.text().rstrip("\n"))

    def _repr_html_(self) -> str:
        """A notebook's display of a cell's value: the summary as an HTML table."""
        from .textreport import render_html

        return render_html(self)

    def to_json(self) -> dict[str, Any]:
        """The report document (SPEC), including any fields this version does not know."""
        import copy

        doc = copy.deepcopy(self.document)
        if self.exit is not None and "exit" not in doc:
            doc["exit"] = copy.deepcopy(self.exit)  # a post-mortem file's: how it ended
        return doc

    def ending(self) -> str | None:
        """How the process ended, for a post-mortem file: "ended by an unhandled
        RuntimeError: boom" or "ended normally"; None for a live scan."""
        info = self.exit
        if not isinstance(info, dict):
            return None
        exception = info.get("exception")
        if isinstance(exception, str) and exception:
            return f"ended by an unhandled {exception}"
        return "ended normally"

    @classmethod
    def from_json(
        cls, doc: Any, sources: dict[str, dict[int, str]] | None = None, *, own: bool = False
    ) -> Report:
        """Build from a report document, checking every field this version reads.

        ``own=True`` hands the document over (no copy is taken): the caller must not change it.
        """
        if not isinstance(doc, dict):
            raise ReportError("report: expected a JSON object")
        if doc.get("format") != FORMAT:
            raise ReportError(f"report: format is {doc.get('format')!r}, not {FORMAT!r}")
        version = _get(doc, "version", int, "report")
        if version > VERSION:
            raise ReportError(
                f"report: document version {version} is newer than this reloadscope reads "
                f"(version {VERSION}); upgrade reloadscope"
            )
        process = _get(doc, "process", dict, "report")
        scan = _get(doc, "scan", dict, "report")
        modules = _get(doc, "modules", list, "report")
        report = cls(
            pid=_get(process, "pid", int, "report.process"),
            python=_get(process, "python", str, "report.process"),
            argv=_list_of_str(process, "argv", "report.process"),
            taken_at=_get(doc, "taken_at", str, "report"),
            duration_s=float(_get(scan, "duration_s", (int, float), "report.scan")),
            objects=_get(scan, "objects", int, "report.scan"),
            complete=_get(scan, "complete", bool, "report.scan"),
            modules=tuple(
                Module.from_json(m, f"report.modules[{i}]") for i, m in enumerate(modules)
            ),
            sources=dict(sources or {}),
            document=doc if own else _copy(doc),
            blind_spots=_list_of_str(scan, "blind_spots", "report.scan")
            if "blind_spots" in scan
            else (),
        )
        # Computed here, so that documents from before holders existed get them too.
        report.document["holders"] = [h.to_json() for h in report.holders]
        return report


def _copy(doc: dict[str, Any]) -> dict[str, Any]:
    import copy

    return copy.deepcopy(doc)
