#!/usr/bin/env bash
# Builds the book (docs/) with mdbook into OUT_DIR and checks every internal link and anchor of the
# built HTML offline with linkchecker; exits non-zero on a build error, a dead link or a missing
# anchor. Tools: scripts/setup-doc-tools.sh. Usage: scripts/check-book.sh [OUT_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/target/book}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/l1"
mdbook="${MDBOOK:-$(command -v mdbook || echo "$cache/mdbook/bin/mdbook")}"
"$mdbook" build "$root/docs" --dest-dir "$out"
# Run as root, linkchecker drops its privileges to `nobody`: the built pages must be readable by
# everyone, and the directories above them passable.
if [ "$(id -u)" = 0 ]; then
  chmod -R a+rX "$out"
  d="$out"; while [ "$d" != / ]; do chmod a+x "$d" 2>/dev/null || true; d="$(dirname "$d")"; done
fi
linkchecker --config "$root/docs/linkcheckerrc" --no-status "$out/index.html"
