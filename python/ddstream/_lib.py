"""Loading libddstream with cffi (ABI mode) and declaring its API from the public header.

The declarations are not copied into Python: they are read, at import time, from ``ddstream.h`` —
the text between ``/* DDSTREAM_CDEF_BEGIN */`` and ``/* DDSTREAM_CDEF_END */``, with the
``DDSTREAM_API`` markers and preprocessor lines dropped. So the binding can never drift from the
header the library was built with.

Where things are looked up:

* the library: ``$DDSTREAM_LIBRARY`` (a path to a system or development copy), else the copy
  installed inside this package;
* the header: ``$DDSTREAM_HEADER``, else the copy installed inside this package, else the source
  tree's ``include/ddstream.h`` (when running from a checkout).

A library that cannot be loaded (libcurl or libdeflate missing, a broken file) raises
:class:`ddstream.errors.LibraryLoadError` naming it, not cffi's bare ``OSError``. In a wheel
repaired by auditwheel, libcurl and its dependencies sit in ``ddstream.libs/`` beside the package
and libddstream's RPATH points there: the loader finds them with no help from here.

Before trusting any struct layout, ``ddstream_version_int()`` must equal the header's
``DDSTREAM_VERSION_INT``. There is one module-level :data:`ffi` and :data:`lib`.
"""

from __future__ import annotations

import os
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import cffi

from .errors import STATUS_E_CONFIG, LibraryLoadError

__all__ = ["HEADER_PATH", "HEADER_VERSION_INT", "LIBRARY_PATH", "ffi", "lib", "read_cdef"]

_CDEF_BEGIN = "/* DDSTREAM_CDEF_BEGIN */"
_CDEF_END = "/* DDSTREAM_CDEF_END */"
_HEADER_NAME = "ddstream.h"
# Written by the build from meson.build's version; ddstream.h includes it (installed beside it).
_VERSION_HEADER_NAME = "ddstream_version.h"


def _library_names() -> tuple[str, ...]:
    if sys.platform == "darwin":
        return ("libddstream.dylib", "libddstream.so")
    if sys.platform == "win32":
        return ("ddstream.dll", "libddstream.dll")
    return ("libddstream.so",)


def _package_file(name: str) -> Path | None:
    """A file shipped inside this package, as a real path (the package is installed unzipped)."""
    try:
        candidate = resources.files(__package__ or "ddstream").joinpath(name)
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - odd import set-ups
        return None
    if not candidate.is_file():
        return None
    # A plain directory install: Traversable is a pathlib.Path. Zipped installs are not supported
    # (a shared library cannot be loaded from inside a zip file).
    path = Path(str(candidate))
    return path if path.is_file() else None


def _find_header() -> Path:
    override = os.environ.get("DDSTREAM_HEADER")
    if override:
        path = Path(override)
        if not path.is_file():
            raise ImportError(f"ddstream: DDSTREAM_HEADER={override!r} is not a file")
        return path
    packaged = _package_file(_HEADER_NAME)
    if packaged is not None:
        return packaged
    # Running from a source checkout: python/ddstream/_lib.py -> include/ddstream.h
    source = Path(__file__).resolve().parents[2] / "include" / _HEADER_NAME
    if source.is_file():
        return source
    raise ImportError(
        "ddstream: cannot find ddstream.h (not in the package, not in a source checkout); "
        "set DDSTREAM_HEADER to its path"
    )


def _find_library() -> Path:
    override = os.environ.get("DDSTREAM_LIBRARY")
    if override:
        path = Path(override)
        if not path.is_file():
            raise ImportError(f"ddstream: DDSTREAM_LIBRARY={override!r} is not a file")
        return path
    for name in _library_names():
        packaged = _package_file(name)
        if packaged is not None:
            return packaged
    raise ImportError(
        "ddstream: the compiled library libddstream is not inside the package. Install the "
        "package with pip (which builds it), or point DDSTREAM_LIBRARY at a built copy."
    )


def read_cdef(header_text: str) -> str:
    """The cffi declarations contained in the text of ``ddstream.h``."""
    begin = header_text.find(_CDEF_BEGIN)
    end = header_text.find(_CDEF_END)
    if begin < 0 or end < 0 or end < begin:
        raise ImportError("ddstream: ddstream.h has no DDSTREAM_CDEF_BEGIN/END section")
    body = header_text[begin + len(_CDEF_BEGIN) : end]
    lines = [line for line in body.splitlines() if not line.lstrip().startswith("#")]
    return re.sub(r"\bDDSTREAM_(?:API|NODISCARD)\b", "", "\n".join(lines))


def _header_version_int(header: Path) -> int:
    """DDSTREAM_VERSION_INT of the ddstream_version.h beside header."""
    path = header.with_name(_VERSION_HEADER_NAME)
    if not path.is_file():
        raise ImportError(f"ddstream: {path} is missing: {header} takes its version from it "
                          "(both are installed by the build; set DDSTREAM_HEADER to such a copy)")
    text = path.read_text(encoding="utf-8")
    match = re.search(r"^\s*#\s*define\s+DDSTREAM_VERSION_INT\s+(\d+)", text, re.MULTILINE)
    if match is None:
        raise ImportError(f"ddstream: {path} does not define DDSTREAM_VERSION_INT")
    return int(match.group(1))


# What provides the libraries libddstream links to, for the message when one is missing. The
# manylinux wheels bundle them (docs/packaging.md); a build from source needs them installed.
_PROVIDERS = {
    "libcurl.so.4": "libcurl4 on Debian/Ubuntu, libcurl on Fedora/RHEL",
    "libdeflate.so.0": "libdeflate0 on Debian/Ubuntu, libdeflate on Fedora/RHEL",
}


def _load_error(library: Path, error: OSError) -> LibraryLoadError:
    """The loader's complaint about ``library``, as an error that says what to do."""
    # cffi: "cannot load library '<path>': <loader message>.  Additionally, ctypes.util..."
    reason = str(error)
    match = re.search(r"^cannot load library '.*?': (.*?)(?:\.  Additionally, .*)?$", reason, re.S)
    if match:
        reason = match.group(1)
    advice = "or install ddstream from a manylinux wheel, which carries its own copy"
    missing = re.match(r"^([^:/\s]+): cannot open shared object file", reason)
    if missing:
        name = missing.group(1)
        provider = _PROVIDERS.get(name, "the system package that provides it")
        return LibraryLoadError(
            f"ddstream: cannot load {library}: it needs {name}, which is not installed (or not "
            f"where the loader looks). Install {provider}, {advice}.",
            status=STATUS_E_CONFIG,
        )
    broken = re.match(r"^(/[^:]+): (.*)$", reason, re.S)
    if broken and Path(broken.group(1)).name != library.name:
        dependency = Path(broken.group(1))
        provider = next((p for n, p in _PROVIDERS.items() if dependency.name.startswith(n)),
                        "the system package that provides it")
        return LibraryLoadError(
            f"ddstream: cannot load {library}: the library it needs, {dependency}, is unusable "
            f"({broken.group(2)}). Reinstall {provider}, {advice}.",
            status=STATUS_E_CONFIG,
        )
    return LibraryLoadError(f"ddstream: cannot load {library}: {reason}", status=STATUS_E_CONFIG)


def _load() -> tuple[Any, Any, Path, Path, int]:
    header = _find_header()
    text = header.read_text(encoding="utf-8")
    version_int = _header_version_int(header)
    the_ffi = cffi.FFI()
    the_ffi.cdef(read_cdef(text))
    library = _find_library()
    try:
        the_lib = the_ffi.dlopen(str(library))
    except OSError as error:
        raise _load_error(library, error) from None
    found = int(the_lib.ddstream_version_int())
    if found != version_int:
        raise ImportError(
            f"ddstream: library {library} has ABI version {found:#x}, but header {header} "
            f"declares {version_int:#x}; they must come from the same build"
        )
    return the_ffi, the_lib, header, library, version_int


ffi: Any
lib: Any
ffi, lib, HEADER_PATH, LIBRARY_PATH, HEADER_VERSION_INT = _load()
