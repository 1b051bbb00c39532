"""``reloadscope`` command line: one module per subcommand, ``main(argv) -> int``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from . import attach, demo, ps, report, run, snapshot
from . import open as open_cmd
from .errors import UserError, fail
from .output import tolerant_streams

COMMANDS = {
    "attach": attach,
    "open": open_cmd,
    "report": report,
    "snapshot": snapshot,
    "ps": ps,
    "run": run,
    "demo": demo,
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        """Bad arguments: one line, exit 2 (argparse would print the usage first)."""
        raise UserError(f"{message} (see 'reloadscope --help')")


def build_parser() -> argparse.ArgumentParser:
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
    for module in COMMANDS.values():
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args_list = list(sys.argv[1:] if argv is None else argv)
    program = None
    if args_list[:1] == ["run"]:
        # The program's arguments never reach argparse: 'run -m json.tool --help' is its help.
        own, program = run.split_argv(args_list[1:])
        args_list = ["run", *own]
    else:
        tolerant_streams()  # not for 'run': the program keeps the streams python gave it
    try:
        args = parser.parse_args(args_list)
        if program is not None:
            args.program = program
        if args.command is None:
            parser.print_help()
            return 2
        return int(COMMANDS[args.command].run(args))
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
