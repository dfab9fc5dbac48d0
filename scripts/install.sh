#!/usr/bin/env bash
# Build the wheel (libddstream inside the package) and install it into .venv, as a user's
# `pip install .` would. Reuses the build tools already in .venv (no isolated build env).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/python -m pip install -q --no-build-isolation --force-reinstall --no-deps .
