"""MkDocs hooks for the documentation site (mkdocs.yml ``hooks:``).

``<!-- ddstream-help COMMAND -->`` in a page becomes the ``--help`` text of that command of the
``ddstream`` CLI (or of ``ddstream`` itself for ``-``), taken from the source tree's
``ddstream.cli.build_parser()``: the CLI page cannot drift from the CLI. Importing ``ddstream.cli``
loads neither numpy nor the C library, so the docs build without a compiled package.

The package's docstrings use Sphinx roles (``:class:`~ddstream.DDStream```), which read well in
``help()`` and IDEs; rendered as Markdown they would show the role itself. This turns each role
into plain code (``DDStream``; with ``~``, the last component only, as Sphinx does).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

_HELP_MARKER = re.compile(r"^<!-- ddstream-help (\S+) -->$", re.MULTILINE)

_ROLE = re.compile(r":(?:class|meth|func|attr|data|mod|exc|obj):<code>(~?)([^<]+)</code>")


def _plain(match: re.Match[str]) -> str:
    tilde, target = match.group(1), match.group(2)
    return f"<code>{target.rsplit('.', 1)[-1] if tilde else target}</code>"


def on_page_content(html: str, **_: Any) -> str:
    return _ROLE.sub(_plain, html)


def _command_help(command: str) -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: make the text stable
    source = str(Path(__file__).resolve().parents[1] / "python")
    if source not in sys.path:
        sys.path.insert(0, source)
    from ddstream.cli import build_parser

    parser = build_parser()
    if command == "-":
        return parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return str(action.choices[command].format_help())
    raise ValueError(f"<!-- ddstream-help {command} -->: ddstream has no command {command!r}")


def on_page_markdown(markdown: str, **_: Any) -> str:
    return _HELP_MARKER.sub(lambda m: f"```text\n{_command_help(m.group(1)).rstrip()}\n```",
                            markdown)
