"""Issue 14's table of query shapes, streamed end to end: each row of ``query_shapes.SHAPES``
through ``ddstream.DDStream`` against FakeDatadog, over four chunks, every cell compared with a
truth composed from the independent references (``reference_query``, ``reference``), the
sub-queries checked in ``ddstream.explain`` and at the server, and each refused query checked for
a ConfigError whose caret sits under the offending character.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from ddstream.testing import FakeDatadog
from query_shapes import SHAPES, Shape, fake_server, markdown_table, run_shape


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeDatadog]:
    with fake_server() as server:
        yield server


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_query_shape(fake: FakeDatadog, shape: Shape) -> None:
    outcome = run_shape(fake, shape)
    if shape.queries:
        assert outcome.result == "exact against the fake"
        assert outcome.requests >= 4  # four chunks, at least one request each
    elif shape.error_at:
        assert outcome.result.startswith(f"at character {shape.error_at}: ")
    else:
        assert shape.error_says in outcome.result


def test_the_table_covers_the_issue() -> None:
    """The shapes the issue names are all rows (a row dropped would drop its check)."""
    texts = " ".join(q.text for s in SHAPES for q in s.queries) + " ".join(
        s.error_query for s in SHAPES
    )
    needed = ("by {", "!host", "h0*", " / ", "(avg", "1000 - ", "-avg", "per_second(", "abs(",
              "log10(", "timeshift(", "top(", "clamp_min(", "default_zero(", ".as_count()",
              ".as_rate()", ".fill(", ".rollup(max, 60)", ".rollup(sum)", ".rollup(sum, 300)",
              "p50:", "p99:", "p99.9:", "count:req", "max:req")  # fmt: skip
    for shape_text in needed:
        assert shape_text in texts, shape_text
    assert any(len(s.queries) > 4 for s in SHAPES)
    assert any(s.statistics != ("avg", "min", "max", "sum") for s in SHAPES)


def test_markdown_table_has_a_row_per_shape(fake: FakeDatadog) -> None:
    rows = [(s, run_shape(fake, s)) for s in SHAPES if s.name in ("plain", "error: top() N")]
    table = markdown_table(rows).splitlines()
    assert len(table) == 2 + 2
    first, last = (
        "`avg:system.cpu.user{*}.rollup(avg,60)`",
        "`avg:system.cpu.user{*}.rollup(sum,60)`",
    )
    assert f"{first} … {last}" in table[2]
    assert table[2].endswith("| exact against the fake |")
    assert "ConfigError: `at character 25: " in table[3]
