"""IPython and Jupyter: ``%load_ext reloadscope`` (SPEC: "IPython and Jupyter").

Loading calls ``reloadscope.install()`` (recording, and listening for ``reloadscope attach
PID``), adds the ``%reloadscope`` line magic and a ``post_run_cell`` hook.  After a cell the
hook asks the recorder whether a module was reloaded or re-imported (its ``reloads`` count) or
patched in place (its ``code_state``: IPython 9's deduperreload and jurigged import nothing)
since the last cell; only then does it scan, and it warns on stderr, in that cell's output,
about the stale objects it has not warned about before.  Each stale object is warned about
once (``%reloadscope`` shows all of them, and counts as a warning for the ones it shows).

``%reloadscope --fix`` prints the repair plan of the kernel (``reloadscope.fix()``: nothing is
changed), ``--fix --apply`` carries it out and prints what is gone and what remains; the
rebinds are not taken for a reload by the after-cell check.

Nothing of IPython is imported here: the shell is handed in.
"""

from __future__ import annotations

import os
import sys

from .. import agent
from ..agent.recorder import patched_modules
from ..inert import inert

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

    from ..model import Report, StaleObject

MAGIC = "reloadscope"
SHOWN = 3  # stale objects a warning names; %reloadscope shows the rest
USAGE = "usage: %reloadscope [--json | --ui | --fix [--apply] [--remove-leftovers] [--json]]"
_FLAGS = ("--json", "--ui", "--fix", "--apply", "--remove-leftovers")

_extension: _Extension | None = None


def load_ipython_extension(ip: Any) -> None:
    """``%load_ext reloadscope``: install, add ``%reloadscope`` and the after-cell check.
    Loading it again changes nothing."""
    global _extension
    if _extension is not None:
        if _extension.ip is ip:
            return
        _extension.remove()
    from .. import install

    install()
    ext = _Extension(ip)
    ip.events.register("post_run_cell", ext.post_run_cell)
    ip.register_magic_function(ext.magic, magic_kind="line", magic_name=MAGIC)
    _extension = ext


def unload_ipython_extension(ip: Any) -> None:
    """``%unload_ext reloadscope``: remove the magic and the hook, then ``uninstall()``."""
    global _extension
    ext, _extension = _extension, None
    if ext is not None:
        ext.remove()
    from .. import uninstall

    uninstall()


def _ident(module: str, s: StaleObject) -> tuple[object, ...]:
    """What stays the same for one stale object from one scan to the next."""
    ids = frozenset(p.object_id for p in s.paths if p.object_id is not None)
    return (module, s.kind, s.qualname, s.generation, ids or tuple(p.text for p in s.paths))


def _line(module: str, s: StaleObject) -> str:
    count = f" x{s.count}" if s.count > 1 else ""
    held = f"held by {inert(s.paths[0].text)}" if s.paths else "held by nothing Python can see"
    return f"  {inert(s.kind)} {inert(s.qualname)}{count} ({inert(module)}), {held}"


class _Extension:
    """One loaded extension: the shell, the recorder's marks after the last cell, and the
    stale objects already warned about."""

    def __init__(self, ip: Any) -> None:
        self.ip = ip
        self.warned: set[tuple[object, ...]] = set()
        self.mark = self._mark()

    def _mark(self) -> tuple[int, int, dict[str, int]]:
        rec = agent.recorder()
        if rec is None:
            return (0, -1, {})
        return (id(rec), rec.reloads, rec.code_state())

    def remove(self) -> None:
        events = self.ip.events
        if self.post_run_cell in events.callbacks.get("post_run_cell", []):
            events.unregister("post_run_cell", self.post_run_cell)
        magics = self.ip.magics_manager
        if magics.magics["line"].get(MAGIC) == self.magic:
            del magics.magics["line"][MAGIC]
            if getattr(magics.user_magics, MAGIC, None) == self.magic:
                delattr(magics.user_magics, MAGIC)

    # -- after each cell ----------------------------------------------------------------------
    def post_run_cell(self, result: object = None) -> None:
        try:
            warning = self._after_cell()
        except Exception as e:  # never break the user's cell
            warning = f"reloadscope: could not check this cell's reload: {inert(repr(e))}"
        if warning:
            print(warning, file=sys.stderr, flush=True)

    def reloaded(self) -> bool:
        """Was a module reloaded, re-imported or patched in place since the last call?"""
        before, self.mark = self.mark, self._mark()
        rec_id, reloads, state = self.mark
        if rec_id != before[0]:
            return False  # recording began (again) in between: nothing to compare with
        return reloads != before[1] or bool(patched_modules(before[2], state))

    def _after_cell(self) -> str | None:
        if not self.reloaded():
            return None
        from .. import scan

        report = scan()
        self.mark = self._mark()  # (the scan changed nothing, but be exact)
        return self.warning(report)

    def warning(self, report: Report) -> str | None:
        """The short warning about stale objects not warned about before (None: there are
        none); they count as warned about from now on."""
        new = [
            (m.name, s)
            for m in report.modules
            for s in m.stale
            if _ident(m.name, s) not in self.warned
        ]
        if not new:
            return None
        self.seen(report)
        count = sum(s.count for _, s in new)
        total = report.stale_count
        plural = "s" if count != 1 else ""
        fresh = "new " if total > count else ""
        head = f"reloadscope: {count} {fresh}stale object{plural} after this cell's reload"
        if total > count:
            head += f" ({total} in all)"
        lines = [head + ":", *(_line(m, s) for m, s in new[:SHOWN])]
        if len(new) > SHOWN:
            lines.append(f"  ... and {len(new) - SHOWN} more")
        if len(new) > SHOWN or total > count:  # only when there is more to see
            lines.append(f"%{MAGIC} for the rest")
        return "\n".join(lines)

    def seen(self, report: Report) -> None:
        self.warned.update(_ident(m.name, s) for m in report.modules for s in m.stale)

    # -- %reloadscope ---------------------------------------------------------------------------
    def magic(self, line: str) -> dict[str, Any] | None:
        """%reloadscope [--json | --ui | --fix [--apply] [--remove-leftovers] [--json]]: the
        readable report of this kernel now; with --json the report document alone; with --ui
        the terminal UI; with --fix the repair plan (nothing is changed), and with --fix
        --apply the plan carried out and what it left (--json: their documents)."""
        args = line.split()
        if args in (["-h"], ["--help"]):
            print(USAGE)
            return None
        flags = set(args)
        if (
            len(flags) != len(args)
            or not flags <= set(_FLAGS)
            or ("--ui" in flags and len(flags) > 1)
            or (flags & {"--apply", "--remove-leftovers"} and "--fix" not in flags)
        ):
            print(
                f"reloadscope: error: unknown arguments {inert(line.strip())!r}; {USAGE}",
                file=sys.stderr,
            )
            return None
        if "--ui" in flags:
            self.ui()
            return None
        if "--fix" in flags:
            return self.fix(
                apply="--apply" in flags,
                remove_leftovers="--remove-leftovers" in flags,
                as_json="--json" in flags,
            )
        from .. import scan

        report = scan()
        self.seen(report)
        if "--json" in flags:
            return _print_document(report.to_json())  # d = %reloadscope --json
        print(report.text(), end="")
        return None

    def fix(self, *, apply: bool, remove_leftovers: bool, as_json: bool) -> dict[str, Any] | None:
        """%reloadscope --fix [--apply]: ``reloadscope.fix`` in this kernel, printed."""
        from .. import fix
        from ..fixplan import FixResult

        done = fix(dry_run=not apply, remove_leftovers=remove_leftovers)
        if isinstance(done, FixResult):
            # The rebinds are no reload: the cell's check must not take them for one.
            self.mark = self._mark()
            if done.report is not None:
                self.seen(done.report)
        if as_json:
            return _print_document(done.to_json())
        # The texts name the command line's options; here they are the magic's.
        text = done.text().replace(
            "; --apply carries them out", "; %reloadscope --fix --apply carries them out"
        )
        print(text.replace(": reloadscope fix PID)", ": %reloadscope --fix)"))
        return None

    def ui(self) -> None:
        if not (_isatty(sys.stdin) and _isatty(sys.stdout)):
            print(
                f"reloadscope: no terminal in this kernel; run `reloadscope attach {os.getpid()}` "
                "from a terminal"
            )
            return
        from .. import breakpoint

        breakpoint()


def _print_document(doc: dict[str, Any]) -> _Document:
    import json

    printed = _Document(doc)
    print(json.dumps(printed, indent=2))
    return printed


class _Document(dict):
    """The document ``%reloadscope --json`` (or ``--fix [--apply] --json``) returns: a dict,
    which the cell does not display again (the magic printed it already)."""

    def _ipython_display_(self) -> None:
        pass


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except Exception:
        return False
