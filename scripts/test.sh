#!/usr/bin/env bash
# The whole test suite: C tests (plain, then under AddressSanitizer + UndefinedBehaviorSanitizer,
# ThreadSanitizer and valgrind memcheck), lint and types, then the Python tests against the
# installed package. Does its own set-up.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
status=0
step() { echo; echo "=== $*"; }

step "C build and tests"
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null
meson test -C build --print-errorlogs --no-suite valgrind || status=1

step "C tests under AddressSanitizer + UndefinedBehaviorSanitizer"
[ -f build-asan/build.ninja ] || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
meson compile -C build-asan >/dev/null
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
  meson test -C build-asan --print-errorlogs || status=1

step "C tests under ThreadSanitizer"
[ -f build-tsan/build.ninja ] || meson setup build-tsan -Db_sanitize=thread -Db_lundef=false >/dev/null
meson compile -C build-tsan >/dev/null
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  meson test -C build-tsan --print-errorlogs || status=1

step "C tests under valgrind memcheck"
# The plain build's binaries, unchanged (tests/c/meson.build, suite 'valgrind').
meson test -C build --no-rebuild --print-errorlogs --suite valgrind || status=1

step "Python package build and install"
scripts/install.sh

step "C formatting (scripts/format.sh --check, .clang-format)"
scripts/format.sh --check || status=1

step "ruff and mypy"
ruff check . || status=1
mypy || status=1

step "Documentation site, strict (scripts/docs.sh)"
scripts/docs.sh || status=1

step "Python tests"
python -m pytest tests/python -q -p no:cacheprovider || status=1

echo
if [ $status -eq 0 ]; then echo "test.sh: all suites passed"; else echo "test.sh: FAILED"; fi
exit $status
