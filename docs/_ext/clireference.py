"""The command-line reference, generated from the parsers ``reloadscope`` itself runs.

``{reloadscope-cli}`` (a directive) writes one section per command of
``reloadscope.cli.build_parser()``: its one-line summary, usage, description, every argument
and option with its help, and its epilog.  Nothing is written twice: the text is argparse's.
"""

from __future__ import annotations

import argparse
import os

from docutils import nodes
from docutils.parsers.rst import Directive

WIDTH = "100"


def _parser() -> argparse.ArgumentParser:
    from reloadscope.cli import COMMANDS, build_parser

    assert COMMANDS  # every command gets its full parser (no stand-ins)
    return build_parser()


def _subcommands(parser: argparse.ArgumentParser) -> tuple[argparse._SubParsersAction, dict]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            return action, helps
    raise LookupError("the parser has no commands")


def _invocation(action: argparse.Action) -> str:
    if not action.option_strings:
        return action.metavar or action.dest  # type: ignore[return-value]
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    metavar = action.metavar or action.dest.upper()
    if isinstance(metavar, tuple):
        metavar = " ".join(metavar)
    return ", ".join(f"{o} {metavar}" for o in action.option_strings)


def _arguments(parser: argparse.ArgumentParser) -> nodes.definition_list:
    formatter = parser._get_formatter()
    items = nodes.definition_list()
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        term = nodes.term()
        term += nodes.literal(text=_invocation(action))
        body = nodes.definition()
        body += nodes.paragraph(text=formatter._expand_help(action) if action.help else "")
        item = nodes.definition_list_item()
        item += term
        item += body
        items += item
    return items


def _section(document: nodes.document, title: str, key: str) -> nodes.section:
    section = nodes.section()
    section["ids"].append(nodes.make_id(key))
    section["names"].append(nodes.fully_normalize_name(key))
    section += nodes.title(text=title)
    document.note_implicit_target(section)
    return section


class CommandLineReference(Directive):
    has_content = False

    def run(self) -> list[nodes.Node]:
        before = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = WIDTH  # the usage lines wrap as on a 100-column terminal
        try:
            return self._sections()
        finally:
            if before is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = before

    def _sections(self) -> list[nodes.Node]:
        document = self.state.document
        top = _parser()
        out: list[nodes.Node] = []
        usage = top.format_usage().removeprefix("usage: ").strip()
        out.append(nodes.literal_block(usage, usage))
        if top.description:
            out.append(nodes.paragraph(text=top.description))
        out.append(_arguments(top))
        sub, helps = _subcommands(top)
        for name, parser in sub.choices.items():
            section = _section(document, f"reloadscope {name}", f"cli-{name}")
            if helps.get(name):
                section += nodes.paragraph(text=helps[name][:1].upper() + helps[name][1:] + ".")
            usage = parser.format_usage().removeprefix("usage: ").strip()
            section += nodes.literal_block(usage, usage)
            if parser.description:
                section += nodes.paragraph(text=parser.description)
            section += _arguments(parser)
            if parser.epilog:
                section += nodes.paragraph(text=parser.epilog)
            out.append(section)
        return out


def setup(app: object) -> dict[str, object]:
    app.add_directive("reloadscope-cli", CommandLineReference)  # type: ignore[attr-defined]
    return {"parallel_read_safe": True, "parallel_write_safe": True}
