"""Root causes: the report's stale entries grouped by what holds them (SPEC: ``"holders"``).

A plugin host that appends its callback to a list on every reload leaves one stale entry per
reload, each with its own path (``__main__.SUBSCRIBERS[0]``, ``[1]``, ...) and the same advice.
The holder is what those paths have in common: the container or attribute the entry's shortest
path ends in.  The rules, applied to the text of each entry's first (shortest) path:

- The holder's path is that text with its last step taken off: ``__main__.SUBSCRIBERS[3]`` ->
  ``__main__.SUBSCRIBERS``, ``__main__.HANDLERS['greet'][0]`` -> ``__main__.HANDLERS['greet']``,
  ``consumer.greet`` -> ``consumer`` (the module's namespace).
- A bound method is only a wrapper: ``X[0].__func__``, ``X[0].__self__`` and
  ``X[0].__self__.__class__`` have the holder ``X`` (the list of callbacks).
- A step that only looks inside its holder goes with it: ``x.__closure__[0].cell_contents``,
  ``x.__bases__[0]``, ``x.__dict__['k']``, ``x.values()...[i]`` and ``x.f_locals['k']`` all
  have the holder ``x``; ``<unnamed reference of x>`` and ``gc.get_referents(x)[i]`` too.
- A thread path's holder keeps its frame and local: ``... > local 'h'.__func__`` ->
  ``... > local 'h'``; a local itself (no steps) is held by its frame (``... > f() a.py:3``).
- A path with no steps to take off (``"steps": 0``: prose such as "not reachable from any
  module ...", a probed holder such as ``sys.gettrace()``) is its own holder.
- Entries are grouped by (root, holder path).  ``count`` and ``bytes`` sum the entries'
  ``count`` and ``size``; ``generations`` lists the distinct known generations in order, then
  ``null`` once if any entry's generation is unknown.
- ``growing``: within one module, the holder keeps objects of at least two consecutive
  generations (``g`` and ``g + 1``): it gained stale objects reload after reload, a
  registration that is not idempotent.  Unknown generations (a late agent) never make it
  growing.
- ``hint``: for a growing container (its entries are its items: a list, a dict), that it
  grows on every reload and how to stop it; otherwise the hint most of its entries' paths give
  (ties: the first; a module growing leftover names keeps the leftover-name advice).

Pure functions over the host-side value objects: a snapshot file written before holders
existed gets them when it is read (``Report.from_json``).  Nothing here imports anything, so
reading a report stays cheap.
"""

from __future__ import annotations

from .model import _set, _Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .model import Module, StaleObject

# Steps that only look inside the object before them: a holder never ends in one of these.
_VIEWS = (".__closure__", ".__bases__", ".__mro__", ".__dict__", ".f_locals", ".values()")
_METHOD_PARTS = (".__func__", ".__self__")
_NTH = ".__iter__().__reduce__()[1][0]"  # the agent's n-th item of a set or a dict view
_QUOTES = "'\""
_UNNAMED = "<unnamed reference of "
_REFERENTS = "__import__('gc').get_referents("

GROWING_HINT = "registration is not idempotent: key it by name or clear it when the module reloads"


class Holder(_Value):
    """One root cause: ``path`` holds ``count`` stale objects (``entries``: (module name,
    index in that module's ``stale``) of each entry it holds)."""

    _FIELDS = __match_args__ = (
        "path",
        "root",
        "count",
        "generations",
        "growing",
        "bytes",
        "hint",
        "entries",
    )
    path: str
    root: str
    count: int
    generations: tuple[int | None, ...]
    growing: bool
    bytes: int
    hint: str
    entries: tuple[tuple[str, int], ...]

    def __init__(
        self,
        path: str,
        root: str,
        count: int,
        generations: tuple[int | None, ...],
        growing: bool,
        bytes: int,
        hint: str,
        entries: tuple[tuple[str, int], ...] = (),
    ) -> None:
        _set(
            self,
            path=path,
            root=root,
            count=count,
            generations=generations,
            growing=growing,
            bytes=bytes,
            hint=hint,
            entries=entries,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "root": self.root,
            "count": self.count,
            "generations": list(self.generations),
            "growing": self.growing,
            "bytes": self.bytes,
            "hint": self.hint,
            "entries": [{"module": m, "index": i} for m, i in self.entries],
        }


def _steps(text: str, start: int = 0) -> list[int]:
    """Where each top-level step of ``text`` (from ``start``) begins: a ``.`` or a ``[``
    outside brackets, parentheses and string literals.  A call's ``(...)`` belongs to the
    step before it."""
    out: list[int] = []
    depth = 0
    quote = ""
    i = start
    n = len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in _QUOTES:
            quote = c
        elif c in "([{<":
            if c == "[" and depth == 0:
                out.append(i)
            depth += 1
        elif c in ")]}>":
            depth = max(depth - 1, 0)
        elif c == "." and depth == 0:
            out.append(i)
        i += 1
    return out


def _strip(text: str, start: int) -> str | None:
    """``text`` without its last step (after ``start``), and without the view steps that
    only led into it; None when no step follows ``start``."""
    if start == 0 and text.startswith(_UNNAMED) and text.endswith(">"):
        return text[len(_UNNAMED) : -1]
    steps = _steps(text, start)
    if not steps:
        return None
    head = text[: steps[-1]]
    if start == 0 and head.startswith(_REFERENTS) and head.endswith(")"):
        return head[len(_REFERENTS) : -1]
    while True:
        if head.endswith(_NTH) and len(head) > len(_NTH) + start:
            head = head[: -len(_NTH)]
            continue
        view = next((v for v in _VIEWS if head.endswith(v)), None)
        if view is None or len(head) == len(view) + start:
            return head
        head = head[: -len(view)]


def holder_path(root: str, text: str, steps: int | None = None) -> str:
    """The holder's own path text for a path ``text`` with root ``root`` (module docstring)."""
    if steps == 0:
        return text
    if root == "thread":
        local = text.rfind(" > local ")
        if local == -1:
            return text
        name_at = local + len(" > local ")
        end = _end_of_literal(text, name_at)
        if end >= len(text):  # the local itself: its frame holds it
            return text[:local]
        stripped = _strip(text, end)
        return text if stripped is None else stripped
    if root != "module" and (steps is None or steps <= 1):
        return text  # prose, or a probed holder with nothing after it
    stripped = _strip(text, 0)
    if stripped is None:
        return text
    # A bound method only wraps its function and object: what holds it holds them.
    method = text[len(stripped) :] in _METHOD_PARTS or stripped.endswith(".__self__")
    if root == "module" and method:
        base = stripped[: -len(".__self__")] if stripped.endswith(".__self__") else stripped
        again = _strip(base, 0)
        if again is not None and text.startswith(again):
            return again
    if text.endswith(".cell_contents") and stripped.endswith("]"):
        # ``f.__closure__[0].cell_contents``: the cell is f's
        again = _strip(stripped, 0)
        if again is not None and text.startswith(again):
            return again
    return stripped


def _end_of_literal(text: str, i: int) -> int:
    """The index just after the string literal starting at ``text[i]``."""
    if i >= len(text) or text[i] not in _QUOTES:
        return i
    quote = text[i]
    i += 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i + 1
        i += 1
    return i


def _contained(text: str, holder: str) -> bool:
    """Does the path ``text`` go from ``holder`` into one of its items (a list, a dict, a
    set), rather than an attribute?"""
    rest = text[len(holder) :] if text.startswith(holder) else ""
    return rest.startswith(("[", ".values()", _NTH))


def _growing(known: dict[str, set[int]]) -> bool:
    return any(g + 1 in gens for gens in known.values() for g in gens)


def _per_reload(entries: list[StaleObject]) -> int | None:
    """How many stale objects each generation added, when every generation added the same."""
    per: dict[int, int] = {}
    for s in entries:
        if s.generation is not None:
            per[s.generation] = per.get(s.generation, 0) + s.count
    amounts = set(per.values())
    return amounts.pop() if len(amounts) == 1 else None


def _common_hint(entries: list[StaleObject]) -> str:
    votes: dict[str, int] = {}
    for s in entries:
        if s.paths and s.paths[0].hint:
            votes[s.paths[0].hint] = votes.get(s.paths[0].hint, 0) + 1
    best = ""
    for h, n in votes.items():  # in order: the first wins a tie
        if not best or n > votes[best]:
            best = h
    return best


_NUMBERS = {1: "one", 2: "two", 3: "three"}


def _growing_hint(entries: list[StaleObject]) -> str:
    n = _per_reload(entries)
    grows = "grows on every reload" if n is None else f"grows by {_NUMBERS.get(n, n)} per reload"
    return f"{grows}; {GROWING_HINT}"


def group(modules: tuple[Module, ...] | list[Module]) -> list[Holder]:
    """The holders of the modules' stale entries, most stale objects first (then most bytes,
    then in the order of their first entries in the document)."""
    groups: dict[tuple[str, str], list[tuple[str, int, StaleObject]]] = {}
    items: set[tuple[str, str]] = set()  # holders that hold their entries as items
    for m in modules:
        for i, s in enumerate(m.stale):
            if s.paths:
                p = s.paths[0]
                key = (p.root, holder_path(p.root, p.text, p.steps))
                if _contained(p.text, key[1]):
                    items.add(key)
            else:
                key = ("other", "no path found")
            groups.setdefault(key, []).append((m.name, i, s))
    out = []
    for (root, path), members in groups.items():
        entries = [s for _, _, s in members]
        known: dict[str, set[int]] = {}
        unknown = False
        for name, _, s in members:
            if s.generation is None:
                unknown = True
            else:
                known.setdefault(name, set()).add(s.generation)
        gens: list[int | None] = list(sorted({g for gs in known.values() for g in gs}))
        if unknown:
            gens.append(None)
        growing = _growing(known)
        out.append(
            Holder(
                path,
                root,
                sum(s.count for s in entries),
                tuple(gens),
                growing,
                sum(s.size for s in entries),
                _growing_hint(entries)
                if growing and (root, path) in items
                else _common_hint(entries),
                tuple((name, i) for name, i, _ in members),
            )
        )
    out.sort(key=lambda h: (-h.count, -h.bytes))  # stable: ties keep the document's order
    return out
