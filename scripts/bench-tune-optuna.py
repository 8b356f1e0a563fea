#!/usr/bin/env python3
"""Optuna's TPE on the landscapes exported by `cargo bench -p l1-harness --bench tuning`.

Reads target/l1/tune-bench/<name>.json (dimensions, legal combos, true values, noise model) and
writes <name>.optuna.json: for each seed, the combo Optuna reports (its best observed value)
after each of k evaluations. The next run of the Rust bench puts TPE beside our optimiser and
random search, scored identically by the reported combo's true value.

Same problem as ours: one categorical parameter per dimension; an illegal combo is told as a
failed trial and does not count as an evaluation; a combo proposed again is a cache hit (its
first value, free), as in l1 where every evaluation goes through the result cache; a run that
has asked 10x its budget without reaching it (TPE collapsed onto seen or illegal combos) stops
and keeps reporting its last point. Noise is the
landscape's model (the same distributions as l1_tune::landscape::Landscape::evaluate, not the same
random stream; per-rep values, then the trimmed mean the harness uses). TPESampler defaults (n_startup_trials=10, multivariate off) unless --multivariate.

Setup:  python3 -m venv ~/.cache/l1/venv-optuna && ~/.cache/l1/venv-optuna/bin/pip install optuna
Usage:  ~/.cache/l1/venv-optuna/bin/python scripts/bench-tune-optuna.py [--seeds 20] [--quick]
            [--multivariate] [target/l1/tune-bench/*.json]
"""

import argparse
import glob
import json
import math
import os
import random
import sys

import optuna


def evaluate(land, i, rng):
    noise = land["noise"]
    truth = land["truth"][i]
    if noise["kind"] == "multiplicative":
        launch = math.exp(noise["launch_cv"] * rng.gauss(0.0, 1.0))
        n = max(1, noise["reps"])
        values = []
        for _ in range(n):
            f = math.exp(noise["rep_cv"] * rng.gauss(0.0, 1.0))
            if rng.random() < noise["outlier_p"]:
                f *= noise["outlier_slowdown"]
            slow = launch * f
            values.append(truth / slow if noise["throughput_like"] else truth * slow)
        # The harness's estimator: cut round(trim * n) from each end (Python's round is the
        # banker's; trim * n never lands on .5 here), never all of them.
        values.sort()
        cut = min(int(math.floor(min(max(noise.get("trim", 0.0), 0.0), 0.5) * n + 0.5)), (n - 1) // 2)
        kept = values[cut:n - cut]
        return sum(kept) / len(kept)
    samples = noise["samples"][i]
    if not samples:
        return truth
    n = max(1, noise["reps"])
    return sum(rng.choice(samples) for _ in range(n)) / n


def run(land, budget, seed, multivariate):
    dims = land["dims"]
    legal = {tuple(c): i for i, c in enumerate(land["combos"])}
    maximize = land["direction"] == "maximize"
    sampler = optuna.samplers.TPESampler(seed=seed, multivariate=multivariate)
    study = optuna.create_study(direction="maximize" if maximize else "minimize", sampler=sampler)
    rng = random.Random(seed * 7919 + 17)
    cache = {}
    best = None  # (value, index)
    reported = []
    asks = 0
    while len(reported) < budget and asks < budget * 10:
        asks += 1
        trial = study.ask()
        key = tuple(
            d["values"].index(trial.suggest_categorical(d["name"], d["values"])) for d in dims
        )
        i = legal.get(key)
        if i is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        if i in cache:
            study.tell(trial, cache[i])
            continue
        v = evaluate(land, i, rng)
        cache[i] = v
        study.tell(trial, v)
        if best is None or (v > best[0] if maximize else v < best[0]):
            best = (v, i)
        reported.append(best[1])
    return reported


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--multivariate", action="store_true")
    a = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    files = a.files or sorted(
        f for f in glob.glob("target/l1/tune-bench/*.json") if not f.endswith(".optuna.json")
    )
    if not files:
        sys.exit("no landscapes: run `cargo bench -p l1-harness --bench tuning` first")
    seeds = 3 if a.quick else a.seeds
    for f in files:
        land = json.load(open(f))
        n = len(land["truth"])
        at = max(1, math.ceil(n * 0.05))
        budget = n if n <= 100 else min(max(n // 10, at), 150)
        out = {"method": "optuna-tpe", "optuna": optuna.__version__,
               "multivariate": a.multivariate, "budget": budget,
               "reported": [run(land, budget, s, a.multivariate) for s in range(seeds)]}
        dst = f[: -len(".json")] + ".optuna.json"
        with open(dst, "w") as fh:
            json.dump(out, fh)
        print(f"{os.path.basename(f)}: {n} combos, budget {budget}, {seeds} seeds -> {dst}",
              file=sys.stderr)


if __name__ == "__main__":
    main()
