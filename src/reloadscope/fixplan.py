"""Repair plans and their results, host side (SPEC: ``"reloadscope-fix-plan"``).

The agent makes the plan (``agent/repair.py``: it holds the objects); these are its documents
as value objects, printable (``text()``, ``str()``) and JSON (``to_json()``), shared by the
command line, the UI, IPython and the API.  A snapshot file holds no objects: its plan
(``from_report``) names what a live repair would rebind, from the paths it recorded, and can
never be applied.
"""

from __future__ import annotations

from .model import ReportError, _set, _Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .model import Report

FORMAT = "reloadscope-fix-plan"
RESULT_FORMAT = FORMAT + "-result"
ACTIONS = ("set-bases", "set-class", "rebind", "rebind-method", "remove-leftover")
_SECTIONS = (
    (("set-bases", "set-class"), "Classes and instances"),
    (("rebind", "rebind-method"), "References"),
    (("remove-leftover",), "Leftover names"),
)


def _gen(g: int | None) -> str:
    return "generation ?" if g is None else f"generation {g}"


class Change(_Value):
    """One change: ``code`` is what it does, as Python would say it."""

    _FIELDS = __match_args__ = (
        "key",
        "action",
        "where",
        "code",
        "module",
        "qualname",
        "kind",
        "generation",
        "count",
    )
    key: str
    action: str
    where: str
    code: str
    module: str
    qualname: str
    kind: str
    generation: int | None
    count: int

    def __init__(self, **fields: Any) -> None:
        _set(self, **{f: fields[f] for f in self._FIELDS})

    @classmethod
    def from_json(cls, d: Any, where: str = "change") -> Change:
        if not isinstance(d, dict):
            raise ReportError(f"{where}: expected an object")
        try:
            return cls(**{f: d[f] for f in cls._FIELDS})
        except KeyError as e:
            raise ReportError(f"{where}: missing field {e.args[0]!r}") from None

    def to_json(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self._FIELDS}

    @property
    def stale(self) -> str:
        return f"{self.module}.{self.qualname} ({self.kind}, {_gen(self.generation)})"


class Cannot(_Value):
    """A stale object, or a holder of one, that no safe write can repair, and ``why``."""

    _FIELDS = __match_args__ = ("where", "module", "qualname", "kind", "generation", "count", "why")
    where: str
    module: str
    qualname: str
    kind: str
    generation: int | None
    count: int
    why: str

    def __init__(self, **fields: Any) -> None:
        _set(self, **{f: fields[f] for f in self._FIELDS})

    @classmethod
    def from_json(cls, d: Any, where: str = "cannot") -> Cannot:
        if not isinstance(d, dict):
            raise ReportError(f"{where}: expected an object")
        try:
            return cls(**{f: d[f] for f in cls._FIELDS})
        except KeyError as e:
            raise ReportError(f"{where}: missing field {e.args[0]!r}") from None

    def to_json(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self._FIELDS}


class FixPlan(_Value):
    """What ``reloadscope fix`` would change (nothing is changed by making it)."""

    _FIELDS = __match_args__ = (
        "pid",
        "changes",
        "cannot",
        "stale",
        "freed_with_others",
        "blind_spots",
        "applicable",
    )
    pid: int | None
    changes: tuple[Change, ...]
    cannot: tuple[Cannot, ...]
    stale: int
    freed_with_others: int
    blind_spots: tuple[str, ...]
    applicable: bool

    def __init__(
        self,
        pid: int | None,
        changes: tuple[Change, ...],
        cannot: tuple[Cannot, ...],
        stale: int,
        freed_with_others: int = 0,
        blind_spots: tuple[str, ...] = (),
        applicable: bool = True,
    ) -> None:
        _set(
            self,
            pid=pid,
            changes=changes,
            cannot=cannot,
            stale=stale,
            freed_with_others=freed_with_others,
            blind_spots=blind_spots,
            applicable=applicable,
        )

    @classmethod
    def from_json(cls, d: Any) -> FixPlan:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ReportError(f"not a {FORMAT} document")
        process = d.get("process")
        pid = process.get("pid") if isinstance(process, dict) else None
        return cls(
            pid=pid if type(pid) is int else None,
            changes=tuple(
                Change.from_json(c, f"changes[{i}]") for i, c in enumerate(d.get("changes", []))
            ),
            cannot=tuple(
                Cannot.from_json(c, f"cannot[{i}]") for i, c in enumerate(d.get("cannot", []))
            ),
            stale=int(d.get("stale", 0)),
            freed_with_others=int(d.get("freed_with_others", 0)),
            blind_spots=tuple(str(b) for b in d.get("blind_spots", [])),
            applicable=bool(d.get("applicable", True)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": 1,
            "process": {"pid": self.pid},
            "changes": [c.to_json() for c in self.changes],
            "cannot": [c.to_json() for c in self.cannot],
            "stale": self.stale,
            "freed_with_others": self.freed_with_others,
            "blind_spots": list(self.blind_spots),
            "applicable": self.applicable,
        }

    def text(self) -> str:
        who = f"process {self.pid}" if self.pid is not None else "this process"
        lines = [
            f"Fix plan for {who}: {_n(len(self.changes), 'change')}, "
            f"{_n(len(self.cannot), 'holder')} it cannot change ({_n(self.stale, 'stale object')})."
        ]
        if not self.applicable:
            lines.append(
                "From a snapshot: the paths it recorded, not checked again; a snapshot is never "
                "fixed (fix the live process: reloadscope fix PID --apply)."
            )
        elif self.changes:
            lines.append(
                "Nothing has been changed. Each change makes a holder point at the current "
                "object of the same name; --apply carries them out and scans again."
            )
        for actions, title in _SECTIONS:
            mine = [c for c in self.changes if c.action in actions]
            if not mine:
                continue
            lines += ["", f"{title}:"]
            for c in mine:
                lines.append(f"  {c.code}")
                many = f", {c.count} objects" if c.count > 1 else ""
                lines.append(f"      # was {c.stale}{many}")
        if self.cannot:
            lines += ["", "Cannot be changed safely (what to do instead):"]
            for k in self.cannot:
                many = f" x{k.count}" if k.count > 1 else ""
                lines.append(f"  {k.where}{many}")
                lines.append(f"      {k.module}.{k.qualname} ({_gen(k.generation)}): {k.why}")
        if self.freed_with_others:
            lines += [
                "",
                f"{_n(self.freed_with_others, 'stale object')} held only by other stale "
                "objects: freed with them.",
            ]
        if self.blind_spots:
            lines += ["", "The scan could not see everything:"]
            lines += [f"  - {b}" for b in self.blind_spots]
        if not self.changes and not self.cannot:
            lines += ["", "Nothing to fix."]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()


class FixResult(_Value):
    """What ``fix --apply`` did: the changes carried out, those skipped (and why), and the
    stale entries before and after (the scan run again)."""

    _FIELDS = __match_args__ = ("plan", "applied", "skipped", "gone", "remains", "report")
    plan: FixPlan
    applied: tuple[Change, ...]
    skipped: tuple[tuple[str, str], ...]  # (the change's code or key, why)
    gone: tuple[str, ...]
    remains: tuple[str, ...]
    report: Report | None

    def __init__(self, **fields: Any) -> None:
        _set(self, **{f: fields[f] for f in self._FIELDS})

    @classmethod
    def from_json(cls, d: Any, sources: dict | None = None) -> FixResult:
        if not isinstance(d, dict) or d.get("format") != RESULT_FORMAT:
            raise ReportError(f"not a {RESULT_FORMAT} document")
        from .model import Report

        before = [_entry(e) for e in d.get("before", [])]
        after = [_entry(e) for e in d.get("after", [])]
        report = d.get("report")
        return cls(
            plan=FixPlan.from_json(d["plan"]),
            applied=tuple(Change.from_json(c) for c in d.get("applied", [])),
            skipped=tuple(
                (str(s.get("code") or s.get("key")), str(s.get("why")))
                for s in d.get("skipped", [])
            ),
            gone=tuple(e for e in before if e not in after),
            remains=tuple(after),
            report=Report.from_json(report, sources or {}, own=True) if report else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": RESULT_FORMAT,
            "version": 1,
            "plan": self.plan.to_json(),
            "applied": [c.to_json() for c in self.applied],
            "skipped": [{"code": c, "why": w} for c, w in self.skipped],
            "gone": list(self.gone),
            "remains": list(self.remains),
        }

    def text(self) -> str:
        who = f"process {self.plan.pid}" if self.plan.pid is not None else "this process"
        lines = [
            f"Applied {_n(len(self.applied), 'change')} in {who}"
            + (f", skipped {len(self.skipped)}" if self.skipped else "")
            + "."
        ]
        for c in self.applied:
            lines.append(f"  {c.code}")
        if self.skipped:
            lines += ["", "Skipped:"]
            for code, why in self.skipped:
                lines.append(f"  {code}")
                lines.append(f"      {why}")
        lines += ["", f"Scanned again: {_n(len(self.gone), 'stale entry', 'stale entries')} gone"]
        lines += [f"  - {e}" for e in self.gone]
        if self.remains:
            lines.append(f"{_n(len(self.remains), 'entry', 'entries')} remain:")
            lines += [f"  - {e}" for e in self.remains]
            if self.plan.cannot:
                lines.append("(the plan says why each cannot be rebound: reloadscope fix PID)")
        else:
            lines.append("Nothing stale remains.")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()


def _entry(e: Any) -> str:
    if not isinstance(e, dict):
        return "?"
    n = e.get("count", 1)
    many = f" x{n}" if isinstance(n, int) and n > 1 else ""
    what = f"{e.get('kind')}, {_gen(e.get('generation'))}"
    return f"{e.get('module')}.{e.get('qualname')} ({what}){many}"


def _n(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def from_report(report: Report) -> FixPlan:
    """The plan a snapshot file can give: for each stale function, class or module held
    through a module path, that path rebound to the current object of the same name (not
    checked again: the objects are gone); the rest as the report says.  Never applicable."""
    changes: list[Change] = []
    cannot: list[Cannot] = []
    for m in report.modules:
        for s in m.stale:
            path = next((p for p in s.paths if p.root == "module" and (p.steps or 0) > 0), None)
            if s.kind in ("function", "class", "module") and path is not None:
                action = "rebind"
                code = f"{path.text} = {m.name}.{s.qualname}"
                if s.kind == "class" and path.text.endswith("__class__"):
                    action = "set-class"
                    code = f"{path.text} = {m.name}.{s.qualname}"
                changes.append(
                    Change(
                        key=f"{action} {path.text} {m.name}.{s.qualname}@{s.generation}",
                        action=action,
                        where=path.text,
                        code=code,
                        module=m.name,
                        qualname=s.qualname,
                        kind=s.kind,
                        generation=s.generation,
                        count=s.count,
                    )
                )
            else:
                first = s.paths[0] if s.paths else None
                cannot.append(
                    Cannot(
                        where=first.text if first is not None else "?",
                        module=m.name,
                        qualname=s.qualname,
                        kind=s.kind,
                        generation=s.generation,
                        count=s.count,
                        why=first.hint if first is not None else "no path recorded",
                    )
                )
    return FixPlan(
        pid=report.pid,
        changes=tuple(changes),
        cannot=tuple(cannot),
        stale=report.stale_count,
        applicable=False,
    )
