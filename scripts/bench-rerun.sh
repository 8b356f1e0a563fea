#!/usr/bin/env bash
# The store's performance claim, measured: a re-run with nothing changed launches no engine and
# takes about as long as listing the tests. Runs one spec's trials (default: the real llama.cpp
# CPU spec) three times in a fresh target directory: cold (everything measured), again (every
# measurement a cache hit), and with L1_CACHE=off (measured again); and lists them, timing each.
# Usage: scripts/bench-rerun.sh [SPEC]
set -euo pipefail
cd "$(dirname "$0")/.."
spec=${1:-specs/cpu/llamacpp-tiny-cpu.yaml}
bin=$(cargo test --release --test kernels --no-run 2>&1 | grep -o 'target/release/deps/kernels-[0-9a-f]*' | tail -1)
[ -x "$bin" ] || { echo "bench-rerun: could not build the kernels test binary" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CARGO_TARGET_DIR=$work L1_SPECS=$spec
unset L1_STORE L1_CACHE NEXTEST_RUN_ID
t() { local s e; s=$(date +%s.%N); "$@" >"$work/out.txt" 2>&1 || { cat "$work/out.txt" >&2; exit 1; }; e=$(date +%s.%N); echo "$e - $s" | bc; }
list=$(t "$bin" --list)
cold=$(L1_RUN_ID=cold t "$bin" --test-threads 1)
hits_cold=$(grep -c "cache hit" "$work/out.txt" || true)
warm=$(L1_RUN_ID=warm t "$bin" --test-threads 1)
hits_warm=$(grep -c "cache hit: reps measured" "$work/out.txt" || true)
engines_warm=$([ -d "$work/l1/runs/warm/engines" ] && echo yes || echo no)
off=$(L1_RUN_ID=off L1_CACHE=off t "$bin" --test-threads 1)
trials=$("$bin" --list 2>/dev/null | grep -c ': test$' || true)
printf '%s (%s trials)\n\n' "$spec" "$trials"
printf '| what | seconds | cache hits | engine launched |\n|---|---:|---:|---|\n'
printf '| list the trials (`--list`) | %.2f | - | no |\n' "$list"
printf '| first run (cold cache) | %.2f | %s | yes |\n' "$cold" "$hits_cold"
printf '| re-run, nothing changed | %.2f | %s | %s |\n' "$warm" "$hits_warm" "$engines_warm"
printf '| re-run with `L1_CACHE=off` | %.2f | 0 | yes |\n' "$off"
