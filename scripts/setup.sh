#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine for ddstream, idempotently: system packages (libcurl's and libdeflate's
# development files, a C compiler, pkg-config, valgrind for the tests' memcheck step), then a
# virtual environment in .venv with the Python build and test tools. Safe to run again; does
# nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

system_packages=(libcurl4-openssl-dev libdeflate-dev pkg-config gcc libc6-dev valgrind golang-go openssl)
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
stamp=.venv/.requirements-installed
if [ ! -f "$stamp" ] || ! cmp -s requirements-dev.txt "$stamp"; then
  echo "setup: installing Python tools into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements-dev.txt
  cp requirements-dev.txt "$stamp"
fi
