#!/usr/bin/env bash
# Build the documentation site from docs/ (mkdocs.yml) into site/, in strict mode: a broken link,
# a page missing from the navigation or a docstring that cannot be rendered fails the build.
# Installs its own tools (requirements-docs.txt) into .venv; run scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=.venv/.docs-requirements-installed
if [ ! -f "$stamp" ] || ! cmp -s requirements-docs.txt "$stamp"; then
  echo "docs: installing the site generator into .venv"
  .venv/bin/python -m pip install -q -r requirements-docs.txt
  cp requirements-docs.txt "$stamp"
fi

export NO_MKDOCS_2_WARNING=1  # a notice about MkDocs' future, not about these docs
# Not --quiet: it hides the warnings from strict mode's count, and the build would pass.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! .venv/bin/mkdocs build --strict --clean >"$log" 2>&1; then
  grep -v -e '^INFO' -e '^  - ' "$log" >&2 || true
  echo "docs: the site did not build (strict mode: every warning is an error)" >&2
  exit 1
fi

# The Python API page is rendered from the docstrings: each public name must be on it.
api=site/python-api/index.html
for name in DDStream DDStreamConfig Batch ArrowBatch StreamOptions RequestGate DDStreamError \
            ConfigError AuthError library_version FakeDatadog next_batch to_arrow; do
  grep -qE "id=\"ddstream(\.[A-Za-z_]+)*\.${name}\"" "$api" || {
    echo "docs: ${name} is missing from the Python API page ($api)" >&2
    exit 1
  }
done
echo "docs: site/ built ($(find site -name '*.html' | wc -l) pages)"
