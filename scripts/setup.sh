#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine for ddstream, idempotently, in one of two profiles:
#
#   scripts/setup.sh          everything the test suite needs (scripts/test.sh)
#   scripts/setup.sh --demo   only what building and running the package needs (scripts/demo.sh)
#
# System packages first (missing ones only), then a virtual environment in .venv with the Python
# tools of requirements.txt (demo) or requirements-dev.txt (full, which includes requirements.txt).
# Safe to run again; does nothing that is already done. Needs nothing activated: every tool is
# called by its path.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=full
case "${1:-}" in
  "" | --full) ;;
  --demo) profile=demo ;;
  *) echo "usage: scripts/setup.sh [--demo | --full]" >&2; exit 2 ;;
esac

# Building libddstream and the package: a C compiler, pkg-config, libcurl's and libdeflate's
# development files.
system_packages=(gcc libc6-dev pkg-config libcurl4-openssl-dev libdeflate-dev)
if [ "$profile" = full ]; then
  # The test suite: valgrind (memcheck step), Go (the cgo example), openssl (TLS test
  # certificates).
  system_packages+=(valgrind golang-go openssl)
fi
# Debian splits venv out of its python3; a Python built from source has it built in.
python3 -c "import ensurepip, venv" 2>/dev/null || system_packages+=(python3-venv)

missing=()
for pkg in "${system_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi

# A stamp holds the requirements last installed; pip runs only when they changed.
install_requirements() {  # $1: the requirements file; $2..: every file its contents depend on
  local file="$1" stamp=".venv/.installed-$1"
  shift
  if [ -f "$stamp" ] && cat "$@" | cmp -s - "$stamp"; then return 0; fi
  echo "setup: installing the Python tools of $file into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$file"
  cat "$@" >"$stamp"
}
install_requirements requirements.txt requirements.txt
if [ "$profile" = full ]; then
  install_requirements requirements-dev.txt requirements.txt requirements-dev.txt
fi
