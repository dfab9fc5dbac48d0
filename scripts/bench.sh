#!/usr/bin/env bash
# The benchmark suite: ddstream against the official Datadog clients (datadog-api-client and
# datadogpy) on the same local fake Datadog. Does its own set-up (scripts/install.sh: system
# packages, .venv, the package built and installed), installs the pinned peers from
# bench/requirements.txt, then runs `python -m bench`: prints the tables, writes
# bench/results/latest.json. docs/benchmarks.md explains the method and the figures.
#
#   scripts/bench.sh                  # everything, full size (about 6 minutes on 2 cores)
#   scripts/bench.sh --quick          # small scenarios, one run each (under a minute)
#   scripts/bench.sh --scenarios s1,s3 --repeat 5
#   scripts/bench.sh --compare bench/results/baseline.json
#   scripts/bench.sh --help           # every option
set -euo pipefail
cd "$(dirname "$0")/.."
for arg in "$@"; do
  if [ "$arg" = "-h" ] || [ "$arg" = "--help" ] || [ "$arg" = "--list" ]; then
    [ -x .venv/bin/python ] && exec .venv/bin/python -m bench "$@"
  fi
done
scripts/install.sh
stamp=.venv/.bench-requirements-installed
if [ ! -f "$stamp" ] || ! cmp -s bench/requirements.txt "$stamp"; then
  echo "bench: installing the peers (bench/requirements.txt) into .venv"
  .venv/bin/python -m pip install -q -r bench/requirements.txt
  cp bench/requirements.txt "$stamp"
fi
export BENCH_COMMAND="scripts/bench.sh${*:+ $*}"
exec .venv/bin/python -m bench "$@"
