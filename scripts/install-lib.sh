#!/usr/bin/env bash
# Install the C library for C and Go programs: libddstream.so, ddstream.h and ddstream.pc under
# PREFIX (libraries in PREFIX/lib, so ddstream.pc is in PREFIX/lib/pkgconfig on every
# architecture). ddstream.pc's Libs carry an rpath to PREFIX/lib, so a program linked with
# `pkg-config --libs ddstream` (cgo's `#cgo pkg-config: ddstream` included) finds the library at
# run time without LD_LIBRARY_PATH.
#
#   scripts/install-lib.sh "$HOME/.local"
#   PKG_CONFIG_PATH="$HOME/.local/lib/pkgconfig" go run ./examples/go 'avg:system.cpu.user{*}'
#
# Does the demo's set-up (a C compiler, libcurl and libdeflate, meson and ninja in .venv) and
# builds in build-lib/. Writing into a system prefix needs the rights to it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: scripts/install-lib.sh PREFIX    (for example \"\$HOME/.local\")" >&2
  exit 2
fi
prefix="$(realpath -m -- "$1")"
scripts/setup.sh --demo
export PATH="$PWD/.venv/bin:$PATH"  # meson runs ninja by name
dir=build-lib
if [ -f "$dir/build.ninja" ]; then
  meson configure "$dir" -Dprefix="$prefix" >/dev/null
else
  meson setup "$dir" -Dprefix="$prefix" -Dlibdir=lib -Dtests=false >/dev/null
fi
meson compile -C "$dir" >/dev/null
meson install -C "$dir" --quiet >/dev/null  # (its ninja step prints to stdout; errors go to stderr)
echo "install-lib: libddstream in $prefix/lib, ddstream.h in $prefix/include;" \
  "PKG_CONFIG_PATH=$prefix/lib/pkgconfig finds it"
