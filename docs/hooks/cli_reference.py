"""MkDocs hook: the CLI reference page is the ``--help`` of every ``mmdigits`` command, taken
from the argument parser itself, so the page cannot drift from the code."""

import argparse

from mmdigits_keras.cli import build_parser

MARKER = "<!-- cli-reference -->"


def _commands(parser, prefix):
    """(command line, parser) for `parser` and every subcommand below it, depth first."""
    yield prefix, parser
    for action in parser._actions:  # argparse keeps subparsers here; it has no public accessor
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{prefix} {name}")


def on_page_markdown(markdown, page, **kwargs):
    if MARKER not in markdown:
        return markdown
    sections = []
    for command, parser in _commands(build_parser(), "mmdigits"):
        parser.prog = command
        sections.append(f"## `{command}`\n\n```text\n{parser.format_help().rstrip()}\n```\n")
    return markdown.replace(MARKER, "\n".join(sections))
