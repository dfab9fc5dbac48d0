"""Put the licences of what a repaired wheel carries into its ``.dist-info/licenses/``.

``auditwheel repair`` copies the shared libraries the package needs (libcurl and its own
dependencies) into ``ddstream.libs/``; their licences must travel with them, and auditwheel does
not copy them (its SBOM also misses some: libcom_err and libkeyutils on Debian 12). For every
copied library this finds the system file it came from and the package owning that file, and adds
the package's licence text (Debian: ``/usr/share/doc/PKG/copyright``; RPM: the files ``rpm -qL``
names) as ``licenses/bundled/PKG/...``, plus the licences given with ``--extra NAME=FILE`` (a
library linked in statically; a bundled one no package owns, built from source or from
Homebrew), lists each in METADATA as a ``License-File`` (PEP 639), and repacks the wheel with
``wheel pack`` (which rewrites RECORD).

    python scripts/wheel_licenses.py WHEEL --out-dir dist \\
        --extra libdeflate=/usr/share/doc/libdeflate-dev/copyright

Runs where the wheel was repaired (it reads that system). Fails, naming it, when a bundled
library's package or licence cannot be found: a wheel without one must not be published.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def _ldconfig() -> str | None:
    """ldconfig, also where a user's PATH lacks the sbin directories it lives in."""
    return shutil.which("ldconfig") or next(
        (p for p in ("/sbin/ldconfig", "/usr/sbin/ldconfig") if Path(p).is_file()), None)


def _system_libraries(ldconfig: str) -> dict[str, Path]:
    """File name -> path of every shared library the loader knows (``ldconfig -p``), symlinks
    resolved: the files auditwheel copied from."""
    listed = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, check=True).stdout
    found: dict[str, Path] = {}
    for line in listed.splitlines():
        if "=>" in line:
            path = Path(line.split("=>", 1)[1].strip()).resolve()
            found.setdefault(path.name, path)
    return found


def _owner(path: Path) -> str | None:
    """The system package a file belongs to (dpkg, else rpm); tries the /lib <-> /usr/lib twin
    too, as merged-/usr systems register either."""
    twins = [path]
    text = path.as_posix()
    twins.append(Path(text[4:]) if text.startswith("/usr/") else Path("/usr" + text))
    for candidate in twins:
        for query in (["dpkg-query", "-S", str(candidate)], ["rpm", "-qf", str(candidate)]):
            if shutil.which(query[0]) is None:
                continue
            result = subprocess.run(query, capture_output=True, text=True, check=False)
            if result.returncode == 0 and result.stdout.strip():
                return result.stdout.split(":", 1)[0].strip() if query[0] == "dpkg-query" \
                    else result.stdout.split()[0]
    return None


def _licence_files(package: str) -> list[Path]:
    """A package's licence texts: Debian's copyright file, or what RPM marks as licence."""
    copyright_file = Path("/usr/share/doc") / package / "copyright"
    if copyright_file.is_file():
        return [copyright_file]
    if shutil.which("rpm") is None:
        return []
    listed = subprocess.run(["rpm", "-qL", package], capture_output=True, text=True, check=False)
    return [Path(p) for p in listed.stdout.split() if Path(p).is_file()]


def _extra_for(original: str, extra: dict[str, Path]) -> str | None:
    """The --extra NAME whose file-name prefix matches a library (libcurl: libcurl.so.4.8.0)."""
    return next((name for name in extra if re.match(rf"{re.escape(name)}[.-]", original)), None)


def _bundled_packages(libs_dir: Path, extra: dict[str, Path]) -> dict[str, list[Path]]:
    """Package (or --extra NAME) -> licence files, for every library copied into ``libs_dir``.

    auditwheel names a copy after the original with a hash inserted before the first dot
    (libcurl.so.4.8.0 -> libcurl-02fbea31.so.4.8.0); delocate (macOS) keeps the name."""
    ldconfig = _ldconfig()
    system = _system_libraries(ldconfig) if ldconfig else {}  # none on macOS
    packages: dict[str, list[Path]] = {}
    for copy in sorted(p for p in libs_dir.iterdir() if p.is_file()):
        original = re.sub(r"-[0-9a-f]{8}(?=\.)", "", copy.name, count=1)
        package = _owner(system[original]) if original in system else None
        if package is not None:
            files = _licence_files(package)
            if not files:
                sys.exit(f"wheel_licenses: no licence found for {package} (bundled {copy.name})")
            packages[package] = files
            continue
        name = _extra_for(original, extra)
        if name is None:
            sys.exit(f"wheel_licenses: bundled {copy.name}: no system package owns {original} "
                     "and no --extra NAME=FILE names its licence")
        packages[name] = [extra[name]]
    return packages


def add_licences(wheel: Path, extra: dict[str, Path], out_dir: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "wheel", "unpack", "-d", tmp, str(wheel)],
                       check=True, capture_output=True)
        (root,) = Path(tmp).iterdir()
        (dist_info,) = root.glob("*.dist-info")
        # auditwheel: <package>.libs/ beside the package; delocate: <package>/.dylibs/.
        libs_dirs = [*root.glob("*.libs"), *root.glob("*/.dylibs")]
        if not libs_dirs:
            sys.exit(f"wheel_licenses: {wheel.name} bundles nothing: repair it first")
        for name, file in extra.items():
            if not file.is_file():
                sys.exit(f"wheel_licenses: licence of {name}: {file} is not a file")
        wanted = _bundled_packages(libs_dirs[0], extra)
        wanted.update({name: [file] for name, file in extra.items() if name not in wanted})
        added = []
        for name, files in sorted(wanted.items()):
            for file in files:
                relative = Path("bundled") / name / file.name
                target = dist_info / "licenses" / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, target)
                added.append(relative.as_posix())
        metadata = dist_info / "METADATA"
        head, sep, body = metadata.read_text(encoding="utf-8").partition("\n\n")
        head += "".join(f"\nLicense-File: {name}" for name in added)
        metadata.write_text(head + sep + body, encoding="utf-8")
        out_dir.mkdir(parents=True, exist_ok=True)
        target_wheel = out_dir / wheel.name
        target_wheel.unlink(missing_ok=True)
        subprocess.run([sys.executable, "-m", "wheel", "pack", "-d", str(out_dir), str(root)],
                       check=True, capture_output=True)
        print(f"wheel_licenses: {len(added)} licence files of {len(wanted)} bundled or static "
              f"components added to {target_wheel}", file=sys.stderr)
        return target_wheel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path)
    parser.add_argument("--extra", action="append", default=[], metavar="NAME=FILE",
                        help="the licence of a component no system package owns: a library "
                        "linked in statically, or a bundled one built from source (matched by "
                        "file-name prefix NAME)")
    parser.add_argument("--out-dir", type=Path, required=True)
    args = parser.parse_args()
    extra = {}
    for item in args.extra:
        name, sep, file = item.partition("=")
        if not sep or not name or not file:
            parser.error(f"--extra wants NAME=FILE, not {item!r}")
        extra[name] = Path(file)
    print(add_licences(args.wheel, extra, args.out_dir))


if __name__ == "__main__":
    main()
