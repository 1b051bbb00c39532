"""``reloadscope`` command line: one module per subcommand, ``main(argv) -> int``.

Starting must stay quick (``benchmarks/cli_start.py``): a subcommand's module is imported only
when that subcommand is parsed or runs, and each module imports what it needs (the model, the
attach machinery, the UI) inside its ``run``.  ``tests/test_cli_start.py`` checks what
``--version`` loads.
"""

from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from .errors import UserError, fail
from .output import tolerant_streams

TYPE_CHECKING = False  # typing is not imported at run time: starting must stay cheap
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from types import ModuleType
    from typing import Any

# The commands, in the order 'reloadscope --help' lists them, with the line it shows for each.
# Each has a module cli/<name>.py with ``add_parser(sub, summary)`` and
# ``run(args) -> int``.
COMMANDS: dict[str, str] = {
    "attach": "terminal UI on a live process (injects an agent when none runs)",
    "open": "terminal UI on a snapshot file",
    "report": "summarise a live process or a snapshot file (stale objects, paths, fixes)",
    "fix": "plan (and with --apply make) the changes that point old references at new code",
    "snapshot": "write a snapshot file of a live process (no UI)",
    "ps": "list the Python processes you can attach to",
    "run": "run a program with reload recording on from its first line",
    "demo": "reload a small example app and show what the reload left behind",
}


def command_module(name: str) -> ModuleType:
    """The module of command ``name`` (imported now, if it was not yet)."""
    import importlib

    return importlib.import_module(f"{__name__}.{name}")


def _columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size().columns`` gives it."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    stdout = sys.__stdout__
    try:
        return os.get_terminal_size(stdout.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):  # no stdout, or not a terminal
        return 80


class _NoColors:
    """argparse's colour theme without colours: every field is "" (as 3.15's stand-in)."""

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        return ""


_NO_COLORS = _NoColors()


def _same(text: str) -> str:
    return text


class _Formatter(argparse.HelpFormatter):
    """argparse's, with the same width: argparse makes one for every argument added, and
    imports shutil (and with it bz2, lzma, zlib) for the terminal's width."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
        **more: Any,
    ) -> None:
        if width is None:
            width = _columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width, **more)

    if sys.version_info[:2] == (3, 14):
        # 3.14's argparse imports _colorize, and with it dataclasses (10-16 ms), for every
        # formatter, also those that only check the arguments as they are added.  As 3.15's
        # does, this one looks for colours only when it writes something that may have them.
        def _set_color(self, color: bool) -> None:
            self._color_wanted = color
            self._chosen: tuple[Any, Any] | None = None

        def _choose(self) -> tuple[Any, Any]:
            if self._chosen is None:
                if not self._color_wanted:
                    self._chosen = (_NO_COLORS, _same)
                else:
                    from _colorize import can_colorize, decolor, get_theme

                    if can_colorize():
                        self._chosen = (get_theme(force_color=True).argparse, decolor)
                    else:
                        self._chosen = (get_theme(force_no_color=True).argparse, _same)
            return self._chosen

        @property
        def _theme(self) -> Any:
            return self._choose()[0]

        @property
        def _decolor(self) -> Any:
            return self._choose()[1]


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        """Bad arguments: one line, exit 2 (argparse would print the usage first)."""
        raise UserError(f"{message} (see 'reloadscope --help')")


def build_parser(
    commands: Iterable[str] | None = None, *, stand_ins: bool = True
) -> argparse.ArgumentParser:
    """The parser, with the full parsers of ``commands`` (all when None).  The other commands
    get a stand-in with the same name and help line (none without ``stand_ins``): the top
    level's help and its list of choices in an error read the same, and argparse never hands
    arguments to a stand-in as long as ``commands`` holds the one the command line names
    (``_named_command``)."""
    wanted = set(COMMANDS if commands is None else commands)
    parser = _Parser(
        prog="reloadscope",
        description=(
            "Find what importlib.reload left behind: old functions, classes, instances and "
            "modules that something still holds, the path from a root to each, and how to "
            "fix it."
        ),
        epilog="Start with 'reloadscope demo' to see a report of a real reload.",
    )
    parser.add_argument("--version", action="version", version=f"reloadscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, summary in COMMANDS.items():
        if name in wanted:
            command_module(name).add_parser(sub, summary)
        elif stand_ins:
            sub.add_parser(name, help=summary, add_help=False)
    return parser


def _named_command(args: Sequence[str]) -> str | None:
    """The command argparse will run for ``args``, when it is one of ours: the first argument
    that does not start with '-'.  (The top level's options take no values, so argparse picks
    that argument as well, or else an earlier one that starts with '-', which is no command:
    then it reports an invalid choice without running any command.)"""
    for a in args:
        if not a.startswith("-"):
            return a if a in COMMANDS else None
    return None


def _parser_for(args: Sequence[str]) -> argparse.ArgumentParser:
    """A parser that treats ``args`` as the full one would, built with no more than they need:
    the parser of the command they name, and the others' stand-ins only when the top level
    may show its help or its choices, that is unless the first argument settles it alone (a
    command, whose parser gets all the rest, or --version, which prints and exits)."""
    named = _named_command(args)
    alone = bool(args) and args[0] in (named, "--version")
    return build_parser([named] if named else [], stand_ins=not alone)


def _version_alone(args: Sequence[str]) -> bool:
    """'reloadscope --version' alone: print what argparse would, without building a parser
    (on 3.14+ argparse imports _colorize, and with it dataclasses, to write it).  Only when
    argparse would not wrap the line (a terminal narrower than it)."""
    text = f"reloadscope {__version__}"
    if list(args) != ["--version"] or max(_columns() - 2, 11) < len(text):
        return False
    try:
        sys.stdout.write(text + "\n")
    except (AttributeError, OSError):  # as argparse: no stdout, or it cannot be written
        pass
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    program = None
    if args_list[:1] == ["run"]:
        # The program's arguments never reach argparse: 'run -m json.tool --help' is its help.
        own, program = command_module("run").split_argv(args_list[1:])
        args_list = ["run", *own]
    else:
        tolerant_streams()  # not for 'run': the program keeps the streams python gave it
    try:
        if _version_alone(args_list):
            raise SystemExit(0)  # as argparse's --version
        parser = _parser_for(args_list)
        args = parser.parse_args(args_list)
        if program is not None:
            args.program = program
        if args.command is None:
            parser.print_help()
            return 2
        return int(command_module(args.command).run(args))
    except UserError as e:
        return fail(str(e))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, like other command-line tools.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
