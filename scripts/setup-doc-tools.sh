#!/usr/bin/env bash
# Installs the tools that build and check the book and the spec schema, cached under ~/.cache/l1
# and rebuilt when missing (idempotent; CI calls it from .ci/run):
#   mdbook            (crates.io, pinned; ~/.cache/l1/mdbook/bin/mdbook; about 2 minutes to build)
#   linkchecker       (Debian package; checks the built book's links and anchors offline)
#   check-jsonschema  (PyPI, pinned; venv ~/.cache/l1/pyvenv-docs; validates specs against the schema)
set -euo pipefail
cache="${XDG_CACHE_HOME:-$HOME/.cache}/l1"

mdbook_version=0.5.4
mdbook="$cache/mdbook/bin/mdbook"
if ! "$mdbook" --version 2>/dev/null | grep -qx "mdbook v$mdbook_version"; then
  rm -rf "$cache/mdbook"
  cargo install mdbook --version "$mdbook_version" --locked --no-default-features --features search \
    --root "$cache/mdbook"
fi

if ! command -v linkchecker >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "linkchecker missing: install Debian's linkchecker (needs root)" >&2; exit 1; }
  apt-get update -qq && apt-get install -y -qq --no-install-recommends linkchecker
fi

check_jsonschema_version=0.35.0
venv="$cache/pyvenv-docs"
if ! "$venv/bin/check-jsonschema" --version 2>/dev/null | grep -q "$check_jsonschema_version"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "check-jsonschema==$check_jsonschema_version"
fi
