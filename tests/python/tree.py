"""Helpers for tests that act as a new user: a snapshot of the repository as a fresh clone has it,
and an environment with nothing activated.

The snapshot is a throwaway git repository holding every file git would see (tracked, plus
untracked but not ignored), committed: what a fresh clone of the tree, once committed, looks like.
meson-python makes an sdist with ``meson dist``, which archives the last *commit*, so building from
the developer's tree directly would test yesterday's sdist against today's wheel; commands run in
the snapshot also cannot write into the developer's tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Variables that would make a child process use another ddstream, another Python or Datadog.
_DROPPED = ("PYTHONPATH", "PYTHONHOME", "DDSTREAM_LIBRARY", "DDSTREAM_HEADER",
            "DDSTREAM_BASE_URL", "DD_API_KEY", "DD_APP_KEY", "DD_SITE", "VIRTUAL_ENV",
            "LD_LIBRARY_PATH", "PKG_CONFIG_PATH")


def path_without_venvs(path: str) -> str:
    """PATH without any virtualenv's bin directory (one whose parent holds pyvenv.cfg)."""
    kept = [d for d in path.split(os.pathsep)
            if d and not (Path(d).parent / "pyvenv.cfg").is_file()]
    return os.pathsep.join(kept)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment as a shell with nothing activated has it, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    env["PATH"] = path_without_venvs(env.get("PATH", os.defpath))
    env.update(extra)
    return env


def run(args: Sequence[str | Path], cwd: Path, env: Mapping[str, str] | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a command; fail the test with its output unless it exits 0."""
    result = subprocess.run([str(a) for a in args], cwd=cwd,
                            env=dict(env) if env is not None else clean_env(),
                            capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, (
        f"{args} exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}"
        f"\n--- stderr\n{result.stderr[-4000:]}"
    )
    return result


def git(args: Sequence[str], cwd: Path) -> str:
    return run(["git", "-c", "user.name=ddstream tests", "-c", "user.email=tests@invalid",
                "-c", "commit.gpgsign=false", *args], cwd=cwd).stdout


def snapshot(dest: Path, *, with_venv: bool = False) -> Path:
    """The working tree as a fresh clone would have it once committed (see the module doc).

    ``with_venv``: link ``.venv`` to this interpreter's virtual environment, as if the clone's
    set-up (scripts/setup.sh) had already run, so the scripts there find their tools installed.
    """
    listed = git(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO)
    for name in sorted(set(filter(None, listed.split("\0")))):
        source = REPO / name
        if source.is_file():  # tracked files deleted in the tree are gone from the snapshot too
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    git(["init", "-q"], cwd=dest)
    git(["add", "-A"], cwd=dest)
    git(["commit", "-q", "-m", "snapshot"], cwd=dest)
    if with_venv:
        venv = Path(sys.prefix)
        assert (venv / "pyvenv.cfg").is_file(), f"the tests run outside a virtualenv ({venv})"
        (dest / ".venv").symlink_to(venv, target_is_directory=True)
    return dest


def _loader_cache() -> list[tuple[str, Path]]:
    """(soname, file) for every library in the loader's cache (``ldconfig -p``)."""
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"  # also where PATH lacks sbin
    listed = run([ldconfig, "-p"], cwd=Path("/")).stdout
    entries = []
    for line in listed.splitlines():
        name, _, path = line.partition("=>")
        if name.split() and path.strip():
            entries.append((name.split()[0], Path(path.strip())))
    return entries


def system_library(soname: str) -> Path:
    """The file the loader maps for ``soname``, symlinks resolved."""
    for name, path in _loader_cache():
        if name == soname:
            return path.resolve()
    raise AssertionError(f"{soname} is not installed; the set-up installs it (scripts/setup.sh)")


def system_libraries_by_file_name() -> dict[str, Path]:
    """File name -> file, for every library in the loader's cache, symlinks resolved."""
    found: dict[str, Path] = {}
    for _, path in _loader_cache():
        found.setdefault(path.resolve().name, path.resolve())
    return found


def without_system_libraries(sonames: Sequence[str], empty_file: Path) -> list[str]:
    """A command prefix that runs a command where these system libraries cannot be loaded: in a
    private mount namespace, an empty file is bind-mounted over each (the loader then fails with
    "file too short"), for that process alone. Needs root, or user namespaces for --map-root-user.
    """
    empty_file.write_bytes(b"")
    mounts = " && ".join(f"mount --bind {empty_file} {system_library(name)}" for name in sonames)
    userns = [] if os.geteuid() == 0 else ["--map-root-user"]
    return ["unshare", *userns, "--mount", "--propagation", "private", "--",
            "sh", "-c", f'{mounts} && exec "$@"', "sh"]


def build_env(**extra: str) -> dict[str, str]:
    """``clean_env`` plus this interpreter's bin directory first on PATH: a build without
    isolation runs meson and ninja by name, from the set-up's venv like scripts/install.sh."""
    env = clean_env(**extra)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    return env
