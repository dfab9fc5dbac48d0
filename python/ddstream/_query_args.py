"""The queries of a command line: ``NAME=QUERY`` arguments, queries files, and the usage error.

``ddstream query``, ``explain``, ``scalar`` and ``export`` read queries the same way, so that a
file or a set of arguments written for one works for the others: a queries file has one query a
line (blank lines and ``#`` comments skipped), and with ``--formula`` every query, given as an
argument or as a line, is ``NAME=QUERY``. ``export`` takes queries files and ``NAME=QUERY``
arguments side by side (:func:`export_queries`): an argument of that form is a query, any other
the path of a file (write ``./a=b.txt`` for a file of that name).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["ExportQueries", "UsageError", "export_queries", "is_named", "named_queries",
           "read_queries_file"]


class UsageError(Exception):
    """A bad argument: reported on one line, exit code 2."""


# A named query's name (v2): a letter or '_', then letters, digits, '_'.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _split(argument: str) -> tuple[str, str] | None:
    """``(name, query)`` of a ``NAME=QUERY`` text, else ``None``. Split at the first ``=``: a
    name never holds one, and no metric query starts with ``name=``."""
    name, sep, query = argument.partition("=")
    name = name.strip()
    if not sep or not _NAME.fullmatch(name) or not query.strip():
        return None
    return name, query.strip()


def is_named(argument: str) -> bool:
    """Whether ``argument`` is a ``NAME=QUERY`` (rather than a plain query or a path)."""
    return _split(argument) is not None


def named_queries(arguments: list[str]) -> dict[str, str]:
    """``NAME=QUERY`` arguments (with ``--formula``) as the named queries formulas refer to; the
    library checks the names and queries themselves."""
    named: dict[str, str] = {}
    for argument in arguments:
        parts = _split(argument)
        if parts is None:
            raise UsageError(f"with --formula, each query is NAME=QUERY (e.g. "
                             f"'a=avg:system.cpu.user{{*}}'), not {argument!r}")
        name, query = parts
        if name in named:
            raise UsageError(f"the query name {name!r} is given twice")
        named[name] = query
    return named


def read_queries_file(path: str) -> list[str]:
    """The queries of a file: one per line; blank lines and lines starting with ``#`` skipped."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot read {path}: not UTF-8 text (byte {exc.start})") from None
    queries = [line.strip() for line in text.splitlines()]
    queries = [q for q in queries if q and not q.startswith("#")]
    if not queries:
        raise UsageError(f"{path} holds no query (one per line; # starts a comment)")
    return queries


@dataclass(frozen=True)
class ExportQueries:
    """What ``ddstream export`` reads: plain queries (v1, or v2 each its own formula) or named
    ones (``{name: query}``), the formulas over them (``None``: none), the endpoint asked for."""

    queries: list[str] | dict[str, str]
    formulas: list[str] | None
    api: str | None

    def options(self) -> dict[str, Any]:
        """The stream options naming the endpoint and the formulas (those given only)."""
        return {name: value for name, value in (("formulas", self.formulas), ("api", self.api))
                if value is not None}


def export_queries(arguments: list[str], formulas: list[str] | None,
                   api: str | None) -> ExportQueries:
    """``ddstream export``'s positional arguments (queries files, ``NAME=QUERY``), ``--formula``
    and ``--api`` as what the export reads. Named queries go with formulas (or ``--api v2``,
    where each is its own formula); plain queries without them, each once."""
    if not arguments:
        raise UsageError("no query: give a QUERIES_FILE, or NAME=QUERY arguments with --formula")
    entries: list[str] = []
    for argument in arguments:
        if is_named(argument):
            entries.append(argument)
        elif not os.path.exists(argument):
            # Most likely a query meant as NAME=QUERY: say both readings.
            raise UsageError(f"{argument!r} is neither NAME=QUERY (e.g. "
                             "'a=avg:system.cpu.user{*}') nor a queries file that exists")
        else:
            entries += read_queries_file(argument)
    if formulas is not None or (api == "v2" and any(is_named(e) for e in entries)):
        return ExportQueries(named_queries(entries), formulas, api)
    stray = next((e for e in entries if is_named(e)), None)
    if stray is not None:
        raise UsageError(f"{stray!r} is a named query: NAME=QUERY goes with --formula "
                         "(or --api v2)")
    duplicates = sorted({q for q in entries if entries.count(q) > 1})
    if duplicates:
        raise UsageError(f"query listed more than once: {duplicates[0]}")
    return ExportQueries(entries, None, api)
