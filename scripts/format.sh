#!/usr/bin/env bash
# Format the project's C files with .clang-format (libddstream/vendor/ excluded: third-party code).
#   scripts/format.sh          rewrite the files in place
#   scripts/format.sh --check  change nothing; list the files that differ and fail if any does
# Installs Debian's clang-format when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: scripts/format.sh [--check]" >&2; exit 2 ;;
esac

if ! command -v clang-format >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends clang-format >/dev/null
fi

mapfile -t files < <(git ls-files '*.c' '*.h' | grep -v '^libddstream/vendor/')
if [ "$check" -eq 0 ]; then
  clang-format -i --style=file "${files[@]}"
  exit 0
fi

drift=0
for f in "${files[@]}"; do
  changed=$(clang-format --style=file "$f" | diff -U0 "$f" - | grep -c '^[-+][^-+]' || true)
  if [ "$changed" -gt 0 ]; then
    echo "format: $f: $changed lines differ from .clang-format (run scripts/format.sh)"
    drift=1
  fi
done
[ "$drift" -eq 0 ] && echo "format: ${#files[@]} C files match .clang-format"
exit "$drift"
