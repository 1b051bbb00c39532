"""Repair plans and their results, host side (SPEC: "The fix plan document").

The agent makes the plan (``agent/repair.py``: it holds the objects) and sends it in its own
protocol document (``"reloadscope-fix-plan"``, and ``"-result"`` after ``apply``); these value
objects read either that or the public document (``"reloadscope-fix"``), and write the public
one (``to_json()``), printable (``text()``, ``str()``), shared by the command line, the UI,
IPython and the API.  A snapshot file holds no objects: its plan
(``from_report``) names what a live repair would rebind, from the paths it recorded, and can
never be applied.
"""

from __future__ import annotations

from .model import ReportError, _set, _Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .model import Report

FORMAT = "reloadscope-fix"  # the public document (SPEC)
AGENT_FORMAT = "reloadscope-fix-plan"  # the agent's answer
RESULT_FORMAT = AGENT_FORMAT + "-result"
ACTIONS = ("set-bases", "set-class", "rebind", "rebind-method", "remove-leftover")
# The agent's actions as the public document names them.
PUBLIC_ACTION = {
    "set-bases": "rebase",
    "set-class": "migrate",
    "rebind": "rebind",
    "rebind-method": "rebind",
    "remove-leftover": "remove",
}
_AGENT_ACTION = {"rebase": "set-bases", "migrate": "set-class", "remove": "remove-leftover"}
_SECTIONS = (
    (("set-bases", "set-class"), "Classes and instances"),
    (("rebind", "rebind-method"), "References"),
    (("remove-leftover",), "Leftover names"),
)


def _public_fields(d: dict[str, Any]) -> dict[str, Any]:
    """The fields a public change or ``not_fixable`` entry shares: its path and stale object."""
    st = d["stale"]
    return {
        "where": d["path"],
        "module": st["module"],
        "qualname": st["qualname"],
        "kind": st["kind"],
        "generation": st.get("generation"),
        "count": d.get("count", 1),
    }


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
        "applied",
        "reason",
    )
    key: str
    action: str  # the agent's (ACTIONS); the document says PUBLIC_ACTION[action]
    where: str
    code: str
    module: str
    qualname: str
    kind: str
    generation: int | None
    count: int
    applied: bool | None  # None: not tried (a plan only)
    reason: str | None  # why it was not applied

    def __init__(self, **fields: Any) -> None:
        fields.setdefault("applied", None)
        fields.setdefault("reason", None)
        _set(self, **{f: fields[f] for f in self._FIELDS})

    @classmethod
    def from_json(cls, d: Any, where: str = "change") -> Change:
        """From the agent's document or the public one."""
        if not isinstance(d, dict):
            raise ReportError(f"{where}: expected an object")
        try:
            if "path" in d and isinstance(d.get("stale"), dict):  # the public document
                action = d.get("how") or _AGENT_ACTION.get(d["action"], d["action"])
                return cls(
                    key=d["key"],
                    action=action,
                    code=d["code"],
                    applied=d.get("applied"),
                    reason=d.get("reason"),
                    **_public_fields(d),
                )
            return cls(**{f: d[f] for f in cls._FIELDS if f not in ("applied", "reason")})
        except KeyError as e:
            raise ReportError(f"{where}: missing field {e.args[0]!r}") from None

    def to_fields(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self._FIELDS}

    @property
    def path(self) -> str:
        return self.where

    @property
    def replacement(self) -> str | None:
        """The current object's dotted name (None: a name removed)."""
        return None if self.action == "remove-leftover" else f"{self.module}.{self.qualname}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.where,
            "action": PUBLIC_ACTION.get(self.action, self.action),
            "stale": {
                "module": self.module,
                "qualname": self.qualname,
                "kind": self.kind,
                "generation": self.generation,
            },
            "replacement": self.replacement,
            "code": self.code,
            "count": self.count,
            "how": self.action,
            "key": self.key,
        }
        if self.applied is not None:
            out["applied"] = self.applied
            if not self.applied:
                out["reason"] = self.reason
        return out

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
        """From the agent's document or the public one (``not_fixable``)."""
        if not isinstance(d, dict):
            raise ReportError(f"{where}: expected an object")
        try:
            if "path" in d and isinstance(d.get("stale"), dict):
                return cls(why=d["reason"], **_public_fields(d))
            return cls(**{f: d[f] for f in cls._FIELDS})
        except KeyError as e:
            raise ReportError(f"{where}: missing field {e.args[0]!r}") from None

    @property
    def path(self) -> str:
        return self.where

    @property
    def reason(self) -> str:
        return self.why

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.where,
            "reason": self.why,
            "stale": {
                "module": self.module,
                "qualname": self.qualname,
                "kind": self.kind,
                "generation": self.generation,
            },
            "count": self.count,
        }


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
        """From the agent's plan or the public document (a result document gives its plan)."""
        if isinstance(d, dict) and d.get("format") == RESULT_FORMAT:
            return FixResult.from_json(d)
        if not isinstance(d, dict) or d.get("format") not in (FORMAT, AGENT_FORMAT):
            raise ReportError(f"not a {FORMAT} document")
        if d.get("format") == FORMAT and "result" in d:
            return FixResult.from_public(d)
        process = d.get("process")
        pid = process.get("pid") if isinstance(process, dict) else None
        return cls(
            pid=pid if type(pid) is int else None,
            changes=tuple(
                Change.from_json(c, f"changes[{i}]") for i, c in enumerate(d.get("changes", []))
            ),
            cannot=tuple(
                Cannot.from_json(c, f"cannot[{i}]")
                for i, c in enumerate(d.get("cannot") or d.get("not_fixable") or [])
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
            "not_fixable": [c.to_json() for c in self.cannot],
            "stale": self.stale,
            "freed_with_others": self.freed_with_others,
            "blind_spots": list(self.blind_spots),
            "applicable": self.applicable,
        }

    def text(
        self,
        *,
        subject: str | None = None,
        review: str | None = None,
        not_applicable: str | None = None,
        nothing: str = "Nothing to fix.",
    ) -> str:
        """The plan for people.  ``subject`` names what it is about (default: the process);
        ``review``, ``not_applicable`` and ``nothing`` replace the line that says what to do
        next (the UI's keys instead of the command line's options)."""
        who = f"process {self.pid}" if self.pid is not None else "this process"
        lines = [
            f"Fix plan for {subject + ' in ' if subject else ''}{who}: "
            f"{_n(len(self.changes), 'change')}, {_n(len(self.cannot), 'holder')} it cannot "
            f"change ({_n(self.stale, 'stale object')})."
        ]
        if not self.applicable:
            lines.append(
                not_applicable
                or "From a snapshot: the paths it recorded, not checked again; a snapshot is "
                "never fixed (fix the live process: reloadscope fix PID --apply)."
            )
        elif self.changes:
            lines.append(
                review
                or "Nothing has been changed. Each change makes a holder point at the current "
                "object of the same name; --apply carries them out and scans again."
            )
        for actions, title in _SECTIONS:
            mine = [c for c in self.changes if c.action in actions]
            if not mine:
                continue
            lines += ["", f"{title}:"]
            for c in mine:
                lines.append(f"  {c.code}")
                if not c.code.startswith(c.where):  # obj.__class__ = ...: which objects
                    lines.append(f"      # obj: {c.where}")
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
            lines += ["", nothing]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()


class FixResult(FixPlan):
    """A plan carried out (``fix --apply``): its changes say whether each was ``applied`` and,
    when not, the ``reason``; ``gone`` and ``remains`` are the stale entries the scan run
    again no longer finds and still finds; ``report`` is that scan's report."""

    _FIELDS = (*FixPlan._FIELDS, "skipped", "gone", "remains", "freed")  # type: ignore[assignment]
    __match_args__ = _FIELDS  # type: ignore[literal-required]
    skipped: tuple[tuple[str, str], ...]  # (the change's code, or a key no longer planned; why)
    gone: tuple[str, ...]
    remains: tuple[str, ...]
    freed: int  # old objects the changes dropped the last reference to (Python freed them)
    report: Report | None

    def __init__(
        self,
        plan: FixPlan,
        skipped: tuple[tuple[str, str], ...],
        gone: tuple[str, ...],
        remains: tuple[str, ...],
        report: Report | None = None,
        freed: int = 0,
    ) -> None:
        super().__init__(
            plan.pid,
            plan.changes,
            plan.cannot,
            plan.stale,
            plan.freed_with_others,
            plan.blind_spots,
            plan.applicable,
        )
        _set(self, skipped=skipped, gone=gone, remains=remains, report=report, freed=freed)

    @property
    def plan(self) -> FixPlan:
        return self

    @property
    def applied(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.applied)

    @classmethod
    def from_json(cls, d: Any, sources: dict | None = None) -> FixResult:
        """From the agent's result document."""
        if not isinstance(d, dict) or d.get("format") != RESULT_FORMAT:
            raise ReportError(f"not a {RESULT_FORMAT} document")
        from .model import Report

        plan = FixPlan.from_json(d["plan"])
        done = {c.get("key"): c for c in d.get("applied", []) if isinstance(c, dict)}
        why = {c.get("key"): str(c.get("why")) for c in d.get("skipped", []) if isinstance(c, dict)}
        changes = []
        for c in plan.changes:
            if c.key in done:
                n = done[c.key].get("count", c.count)
                changes.append(Change(**dict(c.to_fields(), applied=True, count=n)))
            else:
                reason = why.get(c.key, "not carried out")
                changes.append(Change(**dict(c.to_fields(), applied=False, reason=reason)))
        planned = {c.key for c in plan.changes}
        skipped = tuple((c.code, c.reason or "") for c in changes if c.applied is False) + tuple(
            (str(k), w) for k, w in why.items() if k not in planned
        )
        before = [_entry(e) for e in d.get("before", [])]
        after = [_entry(e) for e in d.get("after", [])]
        report = d.get("report")
        _set(plan, changes=tuple(changes))
        return cls(
            plan,
            skipped,
            gone=tuple(e for e in before if e not in after),
            remains=tuple(after),
            report=Report.from_json(report, sources or {}, own=True) if report else None,
            freed=int(d.get("freed") or 0),
        )

    @classmethod
    def from_public(cls, d: dict[str, Any]) -> FixResult:
        """From this class's own ``to_json()``."""
        got = d.get("result")
        result: dict[str, Any] = got if isinstance(got, dict) else {}
        plan = FixPlan.from_json(_plain(d))
        skipped = tuple((c.code, c.reason or "") for c in plan.changes if c.applied is False)
        return cls(
            plan,
            skipped,
            gone=tuple(str(x) for x in result.get("gone", [])),
            remains=tuple(str(x) for x in result.get("remains", [])),
            freed=int(result.get("freed") or 0),
        )

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out["result"] = {
            "applied": len(self.applied),
            "not_applied": len(self.skipped),
            "gone": list(self.gone),
            "remains": list(self.remains),
            "freed": self.freed,
        }
        return out

    def text(self, **_: Any) -> str:
        who = f"process {self.pid}" if self.pid is not None else "this process"
        lines = [
            f"Applied {_n(len(self.applied), 'change')} in {who}"
            + (f", {len(self.skipped)} not applied" if self.skipped else "")
            + "."
        ]
        for c in self.applied:
            lines.append(f"  {c.code}")
        if self.skipped:
            lines += ["", "Not applied:"]
            for code, why in self.skipped:
                lines.append(f"  {code}")
                lines.append(f"      {why}")
        lines += ["", f"Scanned again: {_n(len(self.gone), 'stale entry', 'stale entries')} gone"]
        lines += [f"  - {e}" for e in self.gone]
        if self.freed:
            lines.append(
                f"(Python freed {_n(self.freed, 'old object')} that only the changed holders kept "
                "alive, as a restart would.)"
            )
        if self.remains:
            lines.append(f"{_n(len(self.remains), 'entry', 'entries')} remain:")
            lines += [f"  - {e}" for e in self.remains]
            if self.cannot:
                lines.append("Why they could not be changed:")
                for k in self.cannot:
                    lines.append(f"  {k.where}: {k.why}")
        else:
            lines.append("Nothing stale remains.")
        return "\n".join(lines)


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    out = dict(d)
    out.pop("result", None)
    return out


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
            # Files from before paths had "steps" (None) still name module paths.
            path = next(
                (p for p in s.paths if p.root == "module" and (p.steps is None or p.steps > 0)),
                None,
            )
            current = f"{m.name}.{s.qualname}"
            if path is not None and path.text == current:
                cannot.append(
                    Cannot(
                        where=path.text,
                        module=m.name,
                        qualname=s.qualname,
                        kind=s.kind,
                        generation=s.generation,
                        count=s.count,
                        why="a leftover name: the module no longer defines it (a live fix "
                        "with --remove-leftovers deletes it)",
                    )
                )
            elif (
                s.kind in ("function", "class", "module")
                and path is not None
                and not (".__closure__" in path.text or ".__defaults__" in path.text)
            ):
                action, where = "rebind", path.text
                code = f"{path.text} = {current}"
                if path.text.endswith(".__func__"):  # a bound method: rebuilt
                    action, where = "rebind-method", path.text[: -len(".__func__")]
                    code = f"{where} = MethodType({current}, {where}.__self__)"
                elif s.kind == "class" and path.text.endswith(".__class__"):
                    action = "set-class"
                elif s.kind == "class" and ".__bases__[" in path.text:
                    action = "set-bases"
                    where = path.text[: path.text.rindex(".__bases__[")] + ".__bases__"
                    code = f"{where} = (..., {current}, ...)"
                changes.append(
                    Change(
                        key=f"{action} {where} {current}@{s.generation}",
                        action=action,
                        where=where,
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
