"""Every public C function has its own page in docs/c-api/ and a link from docs/c-api.md.

The function list is read from include/ddstream.h, so a function added to the header without a
page (a synopsis naming it) and a link in the overview table fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEADER = ROOT / "include" / "ddstream.h"
DOCS = ROOT / "docs"
PAGES = DOCS / "c-api"

# A declaration: DDSTREAM_API, the return type, then the function name and its "(".
_DECL = re.compile(r"^DDSTREAM_API\s+[^;(]*?\b(ddstream_\w+)\s*\(", re.MULTILINE)
_SYNOPSIS = re.compile(r"^## Synopsis\s*\n+```c\n(.*?)\n```", re.MULTILINE | re.DOTALL)


def header_functions() -> list[str]:
    names = _DECL.findall(HEADER.read_text(encoding="utf-8"))
    assert len(names) == len(set(names)), "a function is declared twice"
    return names


FUNCTIONS = header_functions()


def test_header_parse_finds_the_api() -> None:
    # Guards the parser itself: these exist since the first release and must be found.
    for name in ("ddstream_version", "ddstream_open", "ddstream_next", "ddstream_close"):
        assert name in FUNCTIONS
    assert len(FUNCTIONS) >= 25


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_has_a_page_with_its_synopsis(name: str) -> None:
    page = PAGES / f"{name}.md"
    assert page.is_file(), f"{name} is in include/ddstream.h but docs/c-api/{name}.md is missing"
    text = page.read_text(encoding="utf-8")
    assert text.startswith(f"# {name}\n"), f"{page.name} must start with the heading '# {name}'"
    synopsis = _SYNOPSIS.search(text)
    assert synopsis, f"{page.name} has no '## Synopsis' section with a ```c code block"
    assert re.search(rf"\b{name}\s*\(", synopsis.group(1)), (
        f"the synopsis of {page.name} does not declare {name}(...)"
    )


@pytest.mark.parametrize("name", FUNCTIONS)
def test_overview_and_index_link_the_page(name: str) -> None:
    overview = (DOCS / "c-api.md").read_text(encoding="utf-8")
    assert f"](c-api/{name}.md)" in overview, f"docs/c-api.md does not link c-api/{name}.md"
    index = (PAGES / "README.md").read_text(encoding="utf-8")
    assert f"]({name}.md)" in index, f"docs/c-api/README.md does not list {name}.md"


def test_no_page_for_a_function_the_header_lacks() -> None:
    pages = {p.stem for p in PAGES.glob("ddstream_*.md")}
    stale = sorted(pages - set(FUNCTIONS))
    assert not stale, f"pages for functions not in include/ddstream.h: {stale}"


def test_see_also_links_resolve() -> None:
    broken = []
    for page in sorted(PAGES.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", text):
            if not (page.parent / target).resolve().is_file():
                broken.append(f"{page.name} -> {target}")
    assert not broken, f"broken links: {broken}"


def test_abi_promise_is_kept_once() -> None:
    docs = [DOCS / "c-api.md", *sorted(PAGES.glob("*.md"))]
    promise = "status values are append-only"
    holders = [p.name for p in docs if promise in p.read_text(encoding="utf-8")]
    assert holders == ["README.md"], f"the ABI promise must live only in c-api/README.md: {holders}"


def test_every_top_level_page_is_in_the_site_navigation() -> None:
    # The site (mkdocs.yml, built strict by scripts/docs.sh) fails on a nav entry with no page;
    # this is the other way round: a page under docs/ that the navigation forgot. The
    # per-function C pages are reached through c-api/README.md (checked above).
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8").split("\nnav:\n", 1)[1]
    listed = set(re.findall(r":\s*([\w/.-]+\.md)\s*$", nav, re.MULTILINE))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.glob("*.md")} | {"c-api/README.md"}
    assert listed, "mkdocs.yml has no nav"
    assert not pages - listed, f"docs pages missing from mkdocs.yml nav: {sorted(pages - listed)}"
    assert not listed - pages, f"mkdocs.yml nav names missing pages: {sorted(listed - pages)}"
