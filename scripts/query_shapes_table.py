"""Print issue 14's table of query shapes as markdown: shape | query | sub-queries sent | result.

Runs every row of tests/python/query_shapes.py (the table test_query_shapes.py checks) against a
FakeDatadog of its own: each shape streamed and compared cell by cell with the independent truth,
so a row reads "exact against the fake" only when it was, or the ConfigError a refused query gets.
A failing row stops the script with its assertion. Usage (with ddstream installed):

    python scripts/query_shapes_table.py > table.md
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "python"))

from query_shapes import SHAPES, fake_server, markdown_table, run_shape


def main() -> int:
    with fake_server() as fake:
        outcomes = [(shape, run_shape(fake, shape)) for shape in SHAPES]
    print(markdown_table(outcomes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
