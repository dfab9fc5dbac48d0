"""docs/design-notes.md's "Module map" matches libddstream/: every C module has its one line,
and every line names a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "libddstream"


def _map_section() -> str:
    text = (REPO / "docs" / "design-notes.md").read_text(encoding="utf-8")
    match = re.search(r"^## Module map\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, 'docs/design-notes.md has no "## Module map" section'
    return match.group(1)


def _mapped() -> dict[str, str]:
    entries: dict[str, str] = {}
    for line in _map_section().splitlines():
        m = re.match(r"- `libddstream/([^`]+)` — (.+)$", line)
        if m:
            assert m.group(1) not in entries, f"{m.group(1)} is mapped twice"
            entries[m.group(1)] = m.group(2)
    return entries


def _modules() -> set[str]:
    sources = {p.name for p in LIB.glob("*.c")}
    stems = {Path(name).stem for name in sources}
    lone_headers = {p.name for p in LIB.glob("*.h") if p.stem not in stems}
    return sources | lone_headers


def test_every_module_has_one_line() -> None:
    missing = sorted(_modules() - _mapped().keys())
    assert not missing, f"not in the module map: {missing}"


def test_every_line_names_a_module() -> None:
    stale = sorted(_mapped().keys() - _modules())
    assert not stale, f"the module map names files that are not modules of libddstream/: {stale}"


def test_each_entry_says_what_it_owns() -> None:
    for name, owns in _mapped().items():
        assert len(owns.split()) >= 3, f"{name}: say what it owns, not just a word"
