#!/usr/bin/env bash
# Fuzz the response parser and assembler (tests/fuzz/fuzz_response.c) with libFuzzer for a bounded
# time, under AddressSanitizer + UndefinedBehaviorSanitizer.
#
#   scripts/fuzz.sh                    60 seconds
#   scripts/fuzz.sh 600                ten minutes
#   scripts/fuzz.sh 120 fuzz_config    the config checks instead (tests/fuzz/fuzz_config.c:
#                                      base_url and the query), seeded from tests/fuzz/config_seeds
#   scripts/fuzz.sh 600 fuzz_query     the query language (tests/fuzz/fuzz_query.c: parser, rules,
#                                      rewriter), seeded from tests/fuzz/query_seeds
#   scripts/fuzz.sh 600 fuzz_number    number text against strtod (tests/fuzz/fuzz_number.c),
#                                      seeded from tests/fuzz/number_seeds
#   scripts/fuzz.sh 300 fuzz_v2        v2 answers (tests/fuzz/fuzz_v2.c: timeseries, grid, scalar),
#                                      seeded from tests/fuzz/v2_seeds
#
# Sets itself up like scripts/setup.sh (clang and its sanitizer/libFuzzer runtime, installed when
# missing), builds a separate build directory (build-fuzz/, or $FUZZ_DIR) with clang, seeds a
# scratch corpus from tests/fixtures and tests/fuzz/regressions, runs, and prints the executions,
# speed, coverage, corpus size and findings. The corpus lives in the build directory and grows
# from run to run (merged down to what adds coverage); it is never committed. Exits nonzero when the fuzzer found something: the
# input is saved under <build dir>/findings/, and belongs in tests/fuzz/regressions/ once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
target="${2:-fuzz_response}"
case "$seconds" in
  ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] [fuzz_response|fuzz_config|fuzz_query|fuzz_number|fuzz_v2]" >&2; exit 2 ;;
esac
dir="${FUZZ_DIR:-build-fuzz}"
case "$target" in
  fuzz_response) seed_dirs=(tests/fixtures tests/fuzz/regressions); dict=tests/fuzz/response.dict
                 corpus="$dir/corpus" ;;
  fuzz_config)   seed_dirs=(tests/fuzz/config_seeds); dict=tests/fuzz/config.dict
                 corpus="$dir/corpus-config" ;;
  fuzz_query)    seed_dirs=(tests/fuzz/query_seeds); dict=tests/fuzz/query.dict
                 corpus="$dir/corpus-query" ;;
  fuzz_number)   seed_dirs=(tests/fuzz/number_seeds); dict=tests/fuzz/number.dict
                 corpus="$dir/corpus-number" ;;
  fuzz_v2)       seed_dirs=(tests/fuzz/v2_seeds); dict=tests/fuzz/response.dict
                 corpus="$dir/corpus-v2" ;;
  *) echo "usage: scripts/fuzz.sh [SECONDS] [fuzz_response|fuzz_config|fuzz_query|fuzz_number|fuzz_v2]" >&2; exit 2 ;;
esac

install_missing() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "fuzz: installing system packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Links a do-nothing fuzz target the way the real one is linked: proves the runtimes are there.
probe_dir="$(mktemp -d)"
trap 'rm -rf "$probe_dir"' EXIT
can_link_fuzzer() {
  printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' \
    >"$probe_dir/probe.c"
  clang -fsanitize=fuzzer,address,undefined "$probe_dir/probe.c" -o "$probe_dir/probe" 2>/dev/null
}

scripts/setup.sh
install_missing clang
if ! can_link_fuzzer; then
  # Debian 12 and later ship libFuzzer and the sanitizer runtimes apart from clang itself.
  install_missing "libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev"
  can_link_fuzzer || { echo "fuzz: clang cannot link a libFuzzer target (-fsanitize=fuzzer)" >&2; exit 1; }
fi
export PATH="$PWD/.venv/bin:$PATH"  # meson and ninja

if [ ! -f "$dir/build.ninja" ]; then
  CC=clang meson setup "$dir" -Dfuzz=true -Dtests=false -Db_sanitize=address,undefined \
    -Db_lundef=false >/dev/null
fi
if ! out="$(meson compile -C "$dir" "$target" 2>&1)"; then
  echo "$out" | tail -30 >&2
  echo "fuzz: build failed" >&2
  exit 1
fi

# Seeds are copied afresh each run (fixtures and regressions change); the corpus is kept.
rm -rf "$dir/seeds"
mkdir -p "$dir/seeds" "$corpus" "$dir/findings"
find "${seed_dirs[@]}" -maxdepth 1 -type f ! -name 'README.md' -exec cp {} "$dir/seeds/" \;
before="$(find "$dir/findings" -type f | wc -l)"

log="$dir/fuzz.log"
cmd=("$dir/tests/fuzz/$target" -max_total_time="$seconds" -timeout=10 -max_len=16384
     -dict="$dict" -artifact_prefix="$dir/findings/" -print_final_stats=1
     "$corpus" "$dir/seeds")
echo "fuzz: ${cmd[*]}"
status=0
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
  "${cmd[@]}" >"$log" 2>&1 || status=$?

# Keep the corpus minimal for the next run: only inputs that add coverage survive.
if [ "$status" -eq 0 ]; then
  rm -rf "$corpus.merged" && mkdir "$corpus.merged"
  if "$dir/tests/fuzz/$target" -merge=1 "$corpus.merged" "$corpus" \
      >"$dir/merge.log" 2>&1; then
    rm -rf "$corpus" && mv "$corpus.merged" "$corpus"
  fi
fi

# The figures, from libFuzzer's own report.
last="$(grep -E '^#[0-9]+' "$log" | tail -1 || true)"
figure() { grep -E "^stat::$1:" "$log" | awk '{print $2}' | tail -1; }
after="$(find "$dir/findings" -type f | wc -l)"
echo "fuzz: ${seconds} s allowed: $(figure number_of_executed_units) executions," \
  "$(figure average_exec_per_sec) exec/s, peak RSS $(figure peak_rss_mb) MB"
echo "fuzz: last status line: ${last:-none}"
echo "fuzz: corpus: $(find "$corpus" -type f | wc -l) inputs," \
  "$(du -sk "$corpus" | cut -f1) KiB in $corpus"
echo "fuzz: new findings: $((after - before)) (all saved in $dir/findings/); full log: $log"
if [ "$status" -ne 0 ] || [ "$after" -gt "$before" ]; then
  grep -E 'ERROR: |contract broken|parser: |SUMMARY: ' "$log" | head -6 || true
  echo "fuzz: FOUND A PROBLEM: reproduce with $dir/tests/fuzz/$target <input>, fix it," \
    "and add the input to ${seed_dirs[-1]}/"
  exit 1
fi
echo "fuzz: no findings"
