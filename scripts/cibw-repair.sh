#!/usr/bin/env bash
# cibuildwheel's repair-wheel-command (pyproject.toml), Linux and macOS: the same steps as
# scripts/build-wheel.sh, with the platform's repair tool.
#
#   scripts/cibw-repair.sh WHEEL DEST_DIR [DELOCATE_ARCHS]
#
# 1. retag py3-none (cffi ABI mode: one wheel serves every Python 3);
# 2. Linux: auditwheel repair (bundles libcurl, OpenSSL, nghttp2 into ddstream.libs/);
#    macOS: delocate-wheel (bundles Homebrew's curl and its dependencies into ddstream/.dylibs/);
# 3. scripts/wheel_licenses.py adds every bundled or static component's licence.
set -euo pipefail
wheel="$1" dest="$2" archs="${3:-}"
here="$(cd "$(dirname "$0")" && pwd)"
python -m pip install -q wheel
retagged="$(dirname "$wheel")/$(python -m wheel tags --python-tag py3 --abi-tag none --remove "$wheel")"
work="$(mktemp -d)"
extra=()
case "$(uname -s)" in
  Linux)
    auditwheel repair -w "$work" "$retagged"
    # Built from source by scripts/cibw-before-all-linux.sh: no package owns them.
    extra=(--extra libcurl=/usr/local/share/licenses/libcurl/COPYING
           --extra libdeflate=/usr/local/share/licenses/libdeflate/COPYING)
    ;;
  Darwin)
    python -m pip install -q delocate
    delocate-wheel ${archs:+--require-archs "$archs"} -w "$work" -v "$retagged"
    brew="$(brew --prefix)"
    # Each bundled dylib's licence: the files of the Homebrew formula it came from.
    for name in $(python -m zipfile -l "$work"/*.whl | awk '{print $1}' | grep '/\.dylibs/' | xargs -n1 basename); do
      formula="$(basename "$(dirname "$(dirname "$(ls "$brew"/opt/*/lib/"$name" | head -1)")")")"
      licence="$(ls "$brew/opt/$formula"/{LICENSE,LICENCE,COPYING}* 2>/dev/null | head -1)"
      extra+=(--extra "${name%%.*}=$licence")
    done
    extra+=(--extra "libdeflate=$(ls "$(brew --prefix libdeflate)"/{LICENSE,COPYING}* | head -1)")
    ;;
  *) echo "cibw-repair: no repair step for $(uname -s)" >&2; exit 1 ;;
esac
python "$here/wheel_licenses.py" "$work"/*.whl --out-dir "$dest" "${extra[@]}"
