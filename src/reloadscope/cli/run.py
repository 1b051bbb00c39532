"""``reloadscope run [-m MODULE | -c CODE | SCRIPT] [ARGS...]``: recording from line one."""

from __future__ import annotations

import argparse
import importlib.util
import os
import runpy
import sys
import types

from .errors import UserError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def add_parser(sub: Any, summary: str) -> None:
    p = sub.add_parser(
        "run",
        help=summary,
        description=(
            "Runs SCRIPT (or -m MODULE, or -c CODE) like python would, with every generation "
            "recorded and an agent listening, so 'reloadscope attach/report/snapshot PID' work "
            "later without injection. Everything after SCRIPT, -m MODULE or -c CODE goes to the "
            "program untouched. RELOADSCOPE_SNAPSHOT_ON_EXIT=FILE writes a post-mortem snapshot."
        ),
        epilog="Examples: reloadscope run serve.py --port 8000; reloadscope run -m mybot",
    )
    p.add_argument("-m", dest="module", metavar="MODULE", help="run a library module as a script")
    p.add_argument("-c", dest="code", metavar="CODE", help="run a string of code, as python -c")
    p.add_argument(
        "args",
        nargs=argparse.REMAINDER,
        metavar="[SCRIPT] ARGS",
        help="the script and its arguments",
    )


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """``run``'s own options, and the program's command line (``-m MODULE ...``, ``-c CODE
    ...`` or ``SCRIPT ...``), which starts at the first argument that is not an option."""
    for i, a in enumerate(argv):
        if a in ("-m", "-c"):
            if i + 1 == len(argv):
                return argv, []  # argparse says that the option needs a value
            return argv[:i], argv[i:]
        if a[:2] in ("-m", "-c"):  # -mjson.tool, as python accepts
            return argv[:i], [a[:2], a[2:], *argv[i + 1 :]]
        if a == "--":
            return argv[:i], argv[i + 1 :]
        if not a.startswith("-") or a == "-":
            return argv[:i], argv[i:]
    return argv, []


def _cwd_first() -> None:
    """The current directory first on sys.path, as ``python -m`` and ``python -c`` have it."""
    if getattr(sys.flags, "safe_path", False):
        return
    try:
        cwd = os.getcwd()
    except OSError:
        return
    if sys.path[:1] not in ([cwd], [""]):
        sys.path.insert(0, cwd)


def _check_module(name: str) -> None:
    """Refuse, as one line, a MODULE that ``python -m`` could not run either (this imports its
    parent packages, as running it would)."""
    if not name or name.startswith("."):
        raise UserError(f"cannot run -m {name!r}: give a module's full, absolute name")
    try:
        spec = importlib.util.find_spec(name)
        package = spec is not None and spec.submodule_search_locations is not None
        if package and importlib.util.find_spec(f"{name}.__main__") is None:
            raise UserError(
                f"{name} is a package without a __main__ module, so it cannot be run; "
                f"run one of its modules with -m {name}.MODULE"
            )
    except ModuleNotFoundError as e:
        # Only the module asked for or a parent of it: a dependency the program lacks is the
        # program's own error, shown as python shows it.
        if not e.name or not (name == e.name or name.startswith(e.name + ".")):
            raise
        spec = None
    except ValueError as e:  # e.g. a module already imported whose __spec__ is None
        raise UserError(f"cannot run -m {name}: {e}") from None
    if spec is None:
        raise UserError(
            f"no module named {name} (is it installed for this Python, {sys.executable}?)"
        )
    if spec.origin == "built-in":
        raise UserError(f"{name} is built into the interpreter and has no code to run")


def _check_script(path: str) -> None:
    """Refuse, as one line, a SCRIPT that is missing, unreadable or a directory python could
    not run.  Pipes stay allowed (``reloadscope run <(...)``), as python allows them."""
    if not os.path.exists(path):
        raise UserError(f"no such script: {path}")
    if os.path.isdir(path):
        if not os.path.exists(os.path.join(path, "__main__.py")):
            raise UserError(f"{path} is a directory without a __main__.py, so it cannot be run")
    elif os.path.isfile(path):
        try:
            with open(path, "rb"):
                pass
        except OSError as e:
            raise UserError(f"cannot read script {path}: {e.strerror or e}") from None


def _run_code(code: str) -> None:
    main = types.ModuleType("__main__")
    sys.modules["__main__"] = main
    exec(compile(code, "<string>", "exec"), main.__dict__)


def run(args: argparse.Namespace) -> int:
    import reloadscope

    program: list[str] | None = getattr(args, "program", None)
    if program is None:  # parsed without split_argv: rebuild the command line
        own = ["-m", args.module] if args.module else ["-c", args.code] if args.code else []
        program = [*own, *args.args]
    if not program:
        raise UserError("give a SCRIPT, -m MODULE or -c CODE to run")
    first, rest = program[0], program[1:]
    if first not in ("-m", "-c"):
        _check_script(first)
    reloadscope.install()
    if first == "-m":
        try:
            _cwd_first()
            _check_module(rest[0])
        except UserError:
            reloadscope.uninstall()
            raise
        sys.argv = [rest[0], *rest[1:]]
        runpy.run_module(rest[0], run_name="__main__", alter_sys=True)
    elif first == "-c":
        _cwd_first()
        sys.argv = ["-c", *rest[1:]]
        _run_code(rest[0])
    else:
        sys.argv = program
        sys.path.insert(0, os.path.dirname(os.path.abspath(first)))
        runpy.run_path(first, run_name="__main__")
    return 0
