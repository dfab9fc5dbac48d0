#!/usr/bin/env bash
# The main job: stream a day of a metric and print each batch and the progress. Against real
# Datadog when DD_API_KEY and DD_APP_KEY are set (DD_SITE for other sites), otherwise against the
# built-in fake Datadog server. Extra arguments go to `python -m ddstream.demo` (see --help).
# Sets up only what the demo needs (scripts/setup.sh --demo); scripts/test.sh adds the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --demo
exec .venv/bin/python -m ddstream.demo "$@"
