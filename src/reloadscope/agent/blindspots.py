"""Sentences for ``scan.blind_spots``: what a scan could not see, one function per kind.

Each returns one sentence, or None when there is nothing to say.  They only look: nothing is
imported into the process that it had not imported, nothing it holds is changed.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing is not imported at run time: loading must stay cheap
if TYPE_CHECKING:
    from collections.abc import Mapping

# The modules through which Python code makes subinterpreters: 3.12's private
# ``_xxsubinterpreters``, 3.13+'s ``_interpreters`` (which 3.14's
# ``concurrent.interpreters`` and the ``interpreters`` backport use).
SUBINTERPRETER_MODULES = ("_interpreters", "_xxsubinterpreters")


def frozen(total: int, found: int) -> str | None:
    """``total`` objects frozen by ``gc.freeze()``, of which the scan reached ``found``.

    Nothing when it reached none: ``gc.freeze()`` did not run then (it freezes the modules
    and classes, which the scan reaches), and the count is CPython 3.12's own: it moves the
    interpreter's immortal objects to the same permanent generation (375 on 3.12.1, with or
    without imports), where nothing Python sees refers to them."""
    missed = total - found
    if total <= 0 or found <= 0 or missed <= 0:
        return None
    return (
        f"{missed:,} of the {total:,} objects frozen by gc.freeze() were not scanned: nothing "
        "the scan can see refers to them (C code or reference counts alone hold them), so "
        "stale objects among them are not reported"
    )


def _count(module: object) -> int | None:
    """How many interpreters ``module.list_all()`` knows (None if it cannot say)."""
    list_all = getattr(module, "list_all", None)
    if list_all is None:
        return None
    try:
        everything = list_all()
    except Exception:
        return None
    return len(everything) if type(everything) in (list, tuple) else None


def subinterpreters(modules: Mapping[str, object] | None = None) -> str | None:
    """The subinterpreters of this process, whose heaps and modules the scan never sees.

    Python code makes them only through one of ``SUBINTERPRETER_MODULES``: when none is
    loaded (``modules``: ``sys.modules`` by default), there are none that Python made and
    nothing is imported to ask.  C code (an embedding application, a test extension) can
    make some without them; those are not counted."""
    loaded: Mapping[str, object] = sys.modules if modules is None else modules
    counts = []
    for name in SUBINTERPRETER_MODULES:
        # dict.get: a sys.modules replaced by a dict subclass runs no method of its own.
        module = dict.get(loaded, name) if type(loaded) is dict else loaded.get(name)
        if module is not None:
            n = _count(module)
            if n is not None:
                counts.append(n)
    if not counts:
        return None
    others = max(counts) - 1  # the main interpreter is listed too
    if others <= 0:
        return None
    which = "a subinterpreter" if others == 1 else f"{others} subinterpreters"
    return (
        f"this process runs {which} (concurrent.interpreters or _interpreters): each has its "
        "own heap and modules, which the scan did not see; stale objects there are not "
        "reported"
    )
