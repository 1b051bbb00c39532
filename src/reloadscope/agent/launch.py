"""Running a program as ``python`` would: ``reloadscope run``'s part that runs in the program's
interpreter (this one, or another given by ``run --python``, which loads the agent from text).

``run(program)`` takes ``-m MODULE ARGS``, ``-c CODE ARGS`` or ``SCRIPT ARGS``; sets
``sys.argv`` and ``sys.path[0]`` as ``python`` does; and shows the program's uncaught
exception as ``python`` would, without this module's or runpy's frames.  A program that cannot
run raises ``LaunchError`` with one line saying why.
"""

from __future__ import annotations

import builtins
import importlib.machinery
import importlib.util
import os
import runpy
import sys
import types

# Frames of these files open every traceback of the program: they are not the program's.
_RUNPY = {os.path.normcase(os.path.abspath(getattr(runpy, "__file__", "") or "")), "<frozen runpy>"}
LAUNCHER_PREFIX = "/proc/self/fd/"  # ``run --python``: the launcher script, from a memfd


class LaunchError(Exception):
    """The program cannot run (what ``python`` would refuse too); the message is one line."""


def _ours(filename: str) -> bool:
    if filename == __file__ or filename.startswith(LAUNCHER_PREFIX) or filename in _RUNPY:
        return True
    return os.path.normcase(os.path.abspath(filename)) in _RUNPY


def _set_path0(entry: str) -> None:
    """``sys.path[0]`` as ``python`` sets it for the program (it held the launcher's own)."""
    if getattr(sys.flags, "safe_path", False):
        return  # -P / PYTHONSAFEPATH: python prepends nothing
    if sys.path:
        sys.path[0] = entry
    else:
        sys.path.append(entry)


def check_module(name: str) -> None:
    """Refuse a MODULE that ``python -m`` could not run either (this imports its parent
    packages, as running it would)."""
    if not name or name.startswith("."):
        raise LaunchError(f"cannot run -m {name!r}: give a module's full, absolute name")
    try:
        spec = importlib.util.find_spec(name)
        package = spec is not None and spec.submodule_search_locations is not None
        if package and importlib.util.find_spec(f"{name}.__main__") is None:
            raise LaunchError(
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
        raise LaunchError(f"cannot run -m {name}: {e}") from None
    if spec is None:
        raise LaunchError(
            f"no module named {name} (is it installed for this Python, {sys.executable}?)"
        )
    if spec.origin == "built-in":
        raise LaunchError(f"{name} is built into the interpreter and has no code to run")


def check_script(path: str) -> None:
    """Refuse a SCRIPT that is missing, unreadable or a directory python could not run.
    Pipes stay allowed (``reloadscope run <(...)``), as python allows them."""
    if not os.path.exists(path):
        raise LaunchError(f"no such script: {path}")
    if os.path.isdir(path):
        if not os.path.exists(os.path.join(path, "__main__.py")):
            raise LaunchError(f"{path} is a directory without a __main__.py, so it cannot be run")
    elif os.path.isfile(path):
        try:
            with open(path, "rb"):
                pass
        except OSError as e:
            raise LaunchError(f"cannot read script {path}: {e.strerror or e}") from None


def _fresh_main(loader: object, file: str | None = None) -> dict[str, object]:
    """A new ``__main__`` with what python's own holds when it starts the program."""
    main = types.ModuleType("__main__")
    ns = main.__dict__
    ns["__builtins__"] = builtins
    if sys.version_info < (3, 14):
        ns["__annotations__"] = {}
    ns["__loader__"] = loader
    if file is not None:
        ns["__file__"] = file
        if sys.version_info < (3, 15):
            ns["__cached__"] = None
    sys.modules["__main__"] = main
    return ns


def _run_code(code: str) -> None:
    ns = _fresh_main(importlib.machinery.BuiltinImporter)
    compiled = compile(code, "<string>", "exec", dont_inherit=True)
    if sys.version_info >= (3, 13):
        # As python -c does from 3.13 on: its tracebacks show the lines of the string (3.13
        # keeps them under the file name, 3.14+ under each code object's key).
        import linecache

        if sys.version_info < (3, 14):
            lines = [line + "\n" for line in code.splitlines()]
            linecache.cache["<string>"] = (len(code), None, lines, "<string>")
        else:
            register = getattr(linecache, "_register_code", None)
            if register is not None:
                register(compiled, code, "<string>")
    exec(compiled, ns)


def _run_script(path: str) -> None:
    """A script file as python runs one: in a new ``__main__``, under its absolute name (a
    directory or zip file goes through runpy, as python's own run does)."""
    full = os.path.abspath(path)
    if os.path.isdir(path):
        runpy.run_path(path, run_name="__main__")
        return
    with open(path, "rb") as fh:
        source = fh.read()
    if b"\0" in source:  # no source text: a zip application?
        import zipfile

        if zipfile.is_zipfile(path):
            runpy.run_path(path, run_name="__main__")
            return
    ns = _fresh_main(importlib.machinery.SourceFileLoader("__main__", full), full)
    exec(compile(source, full, "exec", dont_inherit=True), ns)


def _show(exc: BaseException) -> None:
    """What the interpreter prints for an uncaught exception, from the program's first frame."""
    tb = exc.__traceback__
    while tb is not None and _ours(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    exc.__traceback__ = tb  # the interpreter's hook prints the exception's own traceback
    try:
        sys.excepthook(type(exc), exc, tb)
    except BaseException:  # as the interpreter: a broken hook still shows something
        sys.__excepthook__(type(exc), exc, tb)


def run(program: list[str]) -> int:
    """Run ``program`` (``-m MODULE ...``, ``-c CODE ...`` or ``SCRIPT ...``) in ``__main__``.

    Returns the exit status for an uncaught exception (1; 130 for KeyboardInterrupt) after
    showing it, or 0; ``SystemExit`` from the program passes through unchanged."""
    if not program:
        raise LaunchError("give a SCRIPT, -m MODULE or -c CODE to run")
    first, rest = program[0], program[1:]
    if first in ("-m", "-c") and not rest:
        raise LaunchError(f"argument {first} needs a value")
    if first == "-m":
        _set_path0(os.getcwd())
        check_module(rest[0])
    elif first != "-c":
        check_script(first)
    try:
        if first == "-m":
            sys.argv = [rest[0], *rest[1:]]  # runpy sets argv[0] to the module's file
            runpy.run_module(rest[0], run_name="__main__", alter_sys=True)
        elif first == "-c":
            _set_path0("")
            sys.argv = ["-c", *rest[1:]]
            _run_code(rest[0])
        else:
            _set_path0(os.path.dirname(os.path.realpath(first)))
            sys.argv = list(program)
            _run_script(first)
    except SystemExit:
        raise
    except KeyboardInterrupt as e:
        _show(e)
        return 130
    except BaseException as e:
        _show(e)
        return 1
    return 0
