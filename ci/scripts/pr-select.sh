#!/usr/bin/env bash
# The pull-request selection of the CI templates (ci/github/pull-request.yml, ci/gitlab/): which
# trials a change affects (`l1 affected`), capped by a per-PR budget of trials.
#
#   ci/scripts/pr-select.sh L1 BASE_REV OUT_DIR MAX_TRIALS
#
# Writes OUT_DIR/affected.json (`l1 affected --json`), OUT_DIR/filterset (for
# `cargo nextest run -E "$(cat OUT_DIR/filterset)"`), OUT_DIR/selection.md (what runs, why, and
# what the budget left out, for the pull-request comment), OUT_DIR/budget.json (the budget's
# decision, which the other outputs are made from) and prints `trials=N` and
# `left_out=N` (GITHUB_OUTPUT / dotenv lines).
#
# `l1 affected` has no budget option, so the cap is here: when the selection has more than
# MAX_TRIALS trials, whole targets are kept in `l1 affected`'s order while they fit, and the
# rest are listed as left out (never silently dropped). A target is the unit because a gate
# needs its combos and baseline. The trial count stands in for GPU time; the job's
# timeout-minutes is the hard cap.
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 L1 BASE_REV OUT_DIR MAX_TRIALS" >&2; exit 2; }
l1=$1 base=$2 out=$3 max=$4
case "$max" in '' | *[!0-9]*) echo "MAX_TRIALS must be a whole number, got '$max'" >&2; exit 2 ;; esac
mkdir -p "$out"
"$l1" affected --base "$base" --head HEAD --json > "$out/affected.json"

# The budget decision, made once: whole targets in `l1 affected`'s order while they fit.
jq --argjson max "$max" '
  (reduce .targets[] as $t ({n: 0, keep: [], drop: []};
     ($t.trials | length) as $k
     | if .n + $k <= $max then .n += $k | .keep += [$t] else .drop += [$t] end))
  + {total: ([.targets[].trials | length] | add // 0), max: $max}' \
  "$out/affected.json" > "$out/budget.json"

jq -r --slurpfile b "$out/budget.json" '
  def esc: gsub("(?<c>[.+*?()|\\[\\]{}^$\\\\/])"; "\\\(.c)");
  def sel($t): if $t.whole then "test(/^\($t.target | esc)::/)"
               else [$t.trials | keys[] | "test(/^\(esc)$/)"] | join(" | ") end;
  $b[0] as $s
  | if ($s.drop | length) == 0 then .nextest_filterset
    elif ($s.keep | length) == 0 then "none()"
    else [$s.keep[] as $t | sel($t)] | join(" | ") end' "$out/affected.json" > "$out/filterset"

jq -r --slurpfile b "$out/budget.json" '
  $b[0] as $s
  | "### What this pull request runs\n",
    "`l1 affected` (\(.base[0:12])..\(.head[0:12])): \($s.total) trial(s) in \(.targets | length) target(s)"
      + (if .everything then ", everything (a change l1 cannot classify)" else "" end)
      + "; budget \($s.max) trial(s).\n",
    ($s.keep[] | "- `\(.target)`: \(.trials | length) trial(s) (\([.reasons[].kind] | unique | join(", ")))"),
    (if ($s.drop | length) > 0 then
       "\n**Left out by the budget** (\([$s.drop[].trials | length] | add) trial(s), not run; raise `L1_PR_MAX_TRIALS` or run them by hand):\n",
       ($s.drop[] | "- `\(.target)`: \(.trials | length) trial(s)")
     else empty end),
    (if (.removed | length) > 0 then "\nRemoved by this change (not run): \(.removed | length) target(s)." else empty end)
' "$out/affected.json" > "$out/selection.md"

jq -r '"trials=\(.n)", "left_out=\([.drop[].trials | length] | add // 0)"' "$out/budget.json"
