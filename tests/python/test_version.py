"""One version everywhere: meson.build's project(version:) is what the generated header declares,
what the library reports, what the package says (``__version__``) and what pip installed (the
distribution's metadata, from the wheel)."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import ddstream as dd
from ddstream import _lib

ROOT = Path(__file__).resolve().parents[2]


def _meson_version() -> str:
    text = (ROOT / "meson.build").read_text(encoding="utf-8")
    match = re.search(r"project\([^)]*?version:\s*'([^']+)'", text, re.DOTALL)
    assert match, "meson.build has no project(version: '...')"
    return match.group(1)


def _defines(path: Path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8")
    return dict(re.findall(r"^#define (DDSTREAM_VERSION_\w+) (.+)$", text, re.MULTILINE))


def test_every_version_is_meson_builds() -> None:
    version = _meson_version()
    assert dd.__version__ == version
    assert dd.library_version() == version
    assert metadata.version("ddstream") == version


def test_the_header_declares_the_library_version() -> None:
    defines = _defines(_lib.HEADER_PATH.with_name("ddstream_version.h"))
    major, minor, patch = (int(defines[f"DDSTREAM_VERSION_{part}"])
                           for part in ("MAJOR", "MINOR", "PATCH"))
    assert f"{major}.{minor}.{patch}" == _meson_version()
    assert defines["DDSTREAM_VERSION_STRING"] == f'"{_meson_version()}"'
    expected = (major << 16) | (minor << 8) | patch
    assert int(defines["DDSTREAM_VERSION_INT"]) == expected == _lib.HEADER_VERSION_INT
    assert int(_lib.lib.ddstream_version_int()) == expected


def test_the_packaged_header_includes_its_version_header() -> None:
    text = _lib.HEADER_PATH.read_text(encoding="utf-8")
    assert '#include "ddstream_version.h"' in text
    assert "#define DDSTREAM_VERSION_HEX" in text
    # The literals live in the generated header only: one place to change.
    literal = re.compile(r"^#define DDSTREAM_VERSION_(MAJOR|MINOR|PATCH|INT) \d", re.MULTILINE)
    assert not literal.search(text)
