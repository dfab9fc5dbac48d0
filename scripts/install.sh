#!/usr/bin/env bash
# Build the wheel (libddstream inside the package) and install it into .venv, as a user's
# `pip install .` would. Reuses the build tools already in .venv (no isolated build env) and
# build-python/ as meson's build directory, so a second run only recompiles what changed.
#
#   scripts/install.sh          after the full set-up (scripts/setup.sh)
#   scripts/install.sh --demo   after the demo's smaller one (scripts/setup.sh --demo)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh "$@"
# meson-python runs meson and ninja by name: they must be found without an activated venv.
export PATH="$PWD/.venv/bin:$PATH"
.venv/bin/python -m pip install -q --disable-pip-version-check --no-build-isolation --force-reinstall --no-deps \
  --config-settings=build-dir=build-python .
