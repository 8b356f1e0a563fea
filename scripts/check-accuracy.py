#!/usr/bin/env python3
"""Independent check of `l1 accuracy`: re-simulates its cells with numpy and SciPy and compares
every rate with the one `l1 accuracy --json` printed.

The re-implementation shares no code with the harness. It rebuilds, from their definitions:

- the sim's noise model for a closed-loop workload: each rep's throughput is
  truth / (launch factor x rep factor x outlier factor), the launch factor exp(N(0, launch_cv))
  drawn once per engine launch, the rep factor max(1 + N(0, floor), 0.5) ("normal", as the
  "contaminated" model too) or exp(N(0, floor)) ("lognormal"), and the outlier factor 1.15 with
  probability 0.10 ("contaminated"); the candidate's throughput multiplied by 1 + effect;
  rep i of an arm on launch i mod L;
- Yuen's trimmed-mean test (trim count round(0.1 n)); the reps-only test and Welch's test on
  trimmed samples are SciPy's `ttest_ind(..., trim=g/n, equal_var=False)`, and the
  re-implemented Yuen statistic is checked against SciPy's on every comparison;
- the known launch-to-launch variance added to each arm's squared standard error,
  (cv x trimmed mean)^2 x [sum m_i^2 / n^2 - (n - sum m_i^2 / n) / (n (n - 1))] for launch sizes
  m_i (issue 20, point 1), with the degrees of freedom from the reps alone;
- the gates' one-sided tests on the log ratio (delta method), every claim at half the two-sided
  level: the frontier comparison (`pareto` against stored results, both forms: Holm over the two
  axes, the largest p over the combos and Holm across main's points; or the larger p over the
  axes, Bonferroni over the combos and every point), with each rep's latency truth x slowdown; topk5 (threshold 1 + max(margin, floor), Holm across all the candidates, the top k by
  point estimate must each clear it), both forms of the regression gate (fail on evidence of a
  regression beyond eps; pass only on evidence of none), and the group-sequential design: the
  stopper (win / loss / futility / precision on the two-sided interval at each look) and
  Pocock's constant per-look level, computed here by numerical integration of the looks' joint
  normal law (brentq on the boundary), the fixed design being its one-look case (level alpha);
  and `l1 ab`: per round each side's trimmed mean over launches of its own, the paired t-test of
  the rounds' log ratios on rounds - 1 degrees of freedom against ln(1 - eps), both forms.

Two binomial rates agree when their difference lies inside the combined interval, judged
exactly: conditional on the k1 + k2 events of both, k1 is Binomial(k1 + k2, n1 / (n1 + n2)) when
the rates are equal, and the two-sided p of that test is at least 0.05 (the 95 % interval). The
pooled z is printed beside it. Since many rates are compared at once, the check fails (exit
status 1) only when a p falls below 0.05 / (rates compared) (Bonferroni: agreeing
implementations pass with probability >= 95 %); how many fall outside the 95 % interval is
printed (about 5 % are expected to).

Usage:
  scripts/check-accuracy.py --l1 target/release/l1 --cells 'pair-normal-7x1@+0,topk*' \
      --comparisons 4000 --check-comparisons 40000
  scripts/check-accuracy.py --from accuracy.json      # compare with a saved `l1 --json accuracy`
"""

import argparse
import hashlib
import json
import math
import subprocess
import sys
import time

import numpy as np
from scipy import optimize, stats

ALPHA = 0.05
TRIM = 0.10
TOPK_MARGIN = 0.03
METRIC_TRUTH = 1000.0  # throughput truth: the tests are scale-invariant


# ---------------------------------------------------------------------------------------------
# The sim's noise model.


def arm(rng, shape, reps, launches, noise, floor, launch_cv, scale):
    """Throughput reps, shape + (reps,): reps spread over `launches` launches (rep i on i mod L)."""
    return METRIC_TRUTH * scale / slowdowns(rng, shape, reps, launches, noise, floor, launch_cv)


def slowdowns(rng, shape, reps, launches, noise, floor, launch_cv):
    """Each rep's slowdown factor (launch x rep x outlier), shape + (reps,). A closed-loop rep's
    throughput is truth / slowdown and its latency truth x slowdown (every iteration time is
    multiplied by it)."""
    lf = np.exp(rng.normal(0.0, launch_cv, size=shape + (launches,))) if launch_cv > 0 else np.ones(shape + (launches,))
    per_rep_launch = lf[..., np.arange(reps) % launches]
    if noise == "lognormal":
        rf = np.exp(rng.normal(0.0, floor, size=shape + (reps,)))
    else:
        rf = np.maximum(rng.normal(1.0, floor, size=shape + (reps,)), 0.5)
    slow = per_rep_launch * rf
    if noise == "contaminated":
        slow = slow * np.where(rng.random(size=shape + (reps,)) < 0.10, 1.15, 1.0)
    return slow


# ---------------------------------------------------------------------------------------------
# Statistics.


def trim_count(n):
    return int(math.floor(TRIM * n + 0.5))


def scipy_trim(n):
    """The `trim` that makes SciPy (which trims int(trim * n)) cut round(0.1 n) per side."""
    return (trim_count(n) + 1e-9) / n


def yuen_parts(x):
    """Trimmed mean, squared standard error d and h, along the last axis."""
    n = x.shape[-1]
    g = trim_count(n)
    h = n - 2 * g
    v = np.sort(x, axis=-1)
    tm = v[..., g:n - g].mean(axis=-1)
    w = np.clip(v, v[..., g:g + 1], v[..., n - 1 - g:n - g])
    sw2 = w.var(axis=-1, ddof=1)
    return tm, (n - 1) * sw2 / (h * (h - 1)), h


def launch_sizes(n, launches):
    return [len(range(i, n, launches)) for i in range(launches)]


def launch_term(n, launches, legacy=False):
    """The factor multiplying (cv x mean)^2 for n reps in `launches` launches."""
    if legacy:
        return max(1.0 / launches - 1.0 / n, 0.0)
    s2 = sum(m * m for m in launch_sizes(n, launches))
    return s2 / n**2 - (n - s2 / n) / (n * (n - 1))


class Comparison:
    """Yuen's comparison of candidate x with baseline y (arrays, reps on the last axis)."""

    def __init__(self, x, y, cv, lx, ly, legacy=False):
        mx, dx, hx = yuen_parts(x)
        my, dy, hy = yuen_parts(y)
        ex = (cv * mx) ** 2 * launch_term(x.shape[-1], lx, legacy)
        ey = (cv * my) ** 2 * launch_term(y.shape[-1], ly, legacy)
        self.diff = mx - my
        self.se = np.sqrt(dx + dy + ex + ey)
        self.df = (dx + dy + ex + ey) ** 2 / (dx**2 / (hx - 1) + dy**2 / (hy - 1))
        self.t = self.diff / self.se
        self.ratio = mx / my
        self.se_log = np.sqrt((dx + ex) / mx**2 + (dy + ey) / my**2)

    def one_sided_p(self, threshold):
        """P-value of H0: ratio <= threshold (a claim that the ratio exceeds it)."""
        return stats.t.sf((np.log(self.ratio) - math.log(threshold)) / self.se_log, self.df)

    def ratio_ci(self, level):
        q = stats.t.ppf(1 - level / 2, self.df)
        lr = np.log(self.ratio)
        return np.exp(lr - q * self.se_log), np.exp(lr + q * self.se_log)


def scipy_yuen(x, y):
    n = x.shape[-1]
    assert y.shape[-1] == n
    return stats.ttest_ind(x, y, axis=-1, trim=scipy_trim(n), equal_var=False)


def holm(p):
    """Holm-adjusted p-values along the last axis."""
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    ps = np.take_along_axis(p, order, axis=-1)
    adj = np.minimum(np.maximum.accumulate(ps * (m - np.arange(m)), axis=-1), 1.0)
    out = np.empty_like(adj)
    np.put_along_axis(out, order, adj, axis=-1)
    return out


def pocock_overall(c, looks, m=801):
    """P(|S_k| >= c sqrt(k) at some look k <= looks) for a random walk with N(0, 1) steps."""
    phi = lambda x: np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    x = np.linspace(-c, c, m)
    f = phi(x)  # density of S_1 on the continuation region
    for k in range(2, looks + 1):
        b = c * math.sqrt(k)
        xk = np.linspace(-b, b, m)
        f = np.trapezoid(f[None, :] * phi(xk[:, None] - x[None, :]), x, axis=1)
        x = xk
    return 1.0 - np.trapezoid(f, x)


_LEVELS = {}


def per_look_level(alpha, looks):
    """Pocock's constant two-sided per-look level for `looks` equally spaced looks at overall
    two-sided level alpha (one look: alpha)."""
    if looks <= 1:
        return alpha
    if (alpha, looks) not in _LEVELS:
        c = optimize.brentq(lambda c: pocock_overall(c, looks) - alpha, stats.norm.isf(alpha / 2), 6.0, xtol=1e-10)
        _LEVELS[(alpha, looks)] = 2 * stats.norm.sf(c)
    return _LEVELS[(alpha, looks)]


LEGACY_POCOCK = {2: 0.0294, 3: 0.0221, 4: 0.0182}


def planned_looks(lo, hi):
    if hi <= lo:
        return [max(hi, lo)]
    k = min(hi - lo + 1, 5)
    looks = []
    for i in range(k):
        v = lo + int(math.floor((hi - lo) * i / (k - 1) + 0.5))
        if not looks or looks[-1] != v:
            looks.append(v)
    return looks


# ---------------------------------------------------------------------------------------------
# The designs.


def simulate(cell, n, floor, cv_assumed, cv_true, rng, opts):
    """Counts of every rate of `cell` over n comparisons (same names as `l1 accuracy`)."""
    d = cell["design"]
    eff = 1.0 + cell["effect"]
    noise = cell["noise"]
    legacy_term, legacy_family, legacy_level = opts.legacy_rules
    threshold = 1.0 + max(TOPK_MARGIN, floor)
    # One-sided claims at half the two-sided level (issue 20); before it, at the full level.
    one_sided = (lambda level: level) if legacy_level else (lambda level: level / 2)
    counts = {}
    if d["kind"] == "pair":
        reps, launches = d["reps"], d["launches"]
        base = arm(rng, (n,), reps, launches, noise, floor, cv_true, 1.0)
        cand = arm(rng, (n,), reps, launches, noise, floor, cv_true, eff)
        sp = scipy_yuen(cand, base)
        plain = Comparison(cand, base, 0.0, launches, launches, legacy_term)
        # The re-implemented statistic is SciPy's.
        assert np.allclose(plain.t, sp.statistic, rtol=1e-9, atol=1e-9), "Yuen t differs from SciPy"
        counts["yuen_reps_only"] = int(np.sum((sp.pvalue < ALPHA) & (sp.statistic > 0)))
        c = Comparison(cand, base, cv_assumed, launches, launches, legacy_term)
        p2 = 2 * stats.t.sf(np.abs(c.t), c.df)
        counts["yuen"] = int(np.sum((p2 < ALPHA) & (c.diff > 0)))
        g = trim_count(reps)
        cut = lambda v: np.sort(v, axis=-1)[..., g:reps - g]
        w = stats.ttest_ind(cut(cand), cut(base), axis=-1, equal_var=False)
        counts["welch_trimmed"] = int(np.sum((w.pvalue < ALPHA) & (w.statistic > 0)))
        counts["topk5_passes"] = int(np.sum(c.one_sided_p(threshold) < one_sided(ALPHA)))
    elif d["kind"] == "topk":
        combos, k, reps = d["combos"], d["k"], d["reps"]
        base = arm(rng, (n,), reps, 1, noise, floor, cv_true, 1.0)
        cand = arm(rng, (n, combos), reps, 1, noise, floor, cv_true, eff)
        c = Comparison(cand, base[:, None, :], cv_assumed, 1, 1, legacy_term)
        p = c.one_sided_p(threshold)
        k = min(k, combos)
        lvl = one_sided(ALPHA)
        top = np.argsort(-c.ratio, axis=-1, kind="stable")[:, :k]
        if not legacy_family:  # Holm across all the candidates: the top k are chosen from them
            adj = holm(p)
            passed = np.all(np.take_along_axis(adj, top, axis=-1) < lvl, axis=-1)
            claimed = np.any(adj < lvl, axis=-1)
        else:  # Holm across the top k only (the gate before issue 20)
            adj = holm(np.take_along_axis(p, top, axis=-1))
            passed = np.all(adj < lvl, axis=-1)
            claimed = np.any(adj < lvl, axis=-1)
        counts["topk5_passes"] = int(passed.sum())
        counts["any_claim"] = int(claimed.sum())
    elif d["kind"] == "regression":
        reps = d["reps"]
        eps = max(d["epsilon"], floor)
        base = arm(rng, (n,), reps, 1, noise, floor, cv_true, 1.0)
        cand = arm(rng, (n,), reps, 1, noise, floor, cv_true, eff)
        c = Comparison(cand, base, cv_assumed, 1, 1, legacy_term)
        z = (np.log(c.ratio) - math.log(1 - eps)) / c.se_log
        counts["fail_on_regression_fails"] = int(np.sum(stats.t.sf(-z, c.df) < one_sided(ALPHA)))
        counts["non_inferiority_passes"] = int(np.sum(stats.t.sf(z, c.df) < one_sided(ALPHA)))
    elif d["kind"] == "sequential":
        lo, hi = d["min_reps"], d["max_reps"]
        looks = planned_looks(lo, hi)
        level = LEGACY_POCOCK.get(len(looks), 0.0158) if legacy_level and len(looks) > 1 else per_look_level(ALPHA, len(looks))
        base = arm(rng, (n,), hi, 1, noise, floor, cv_true, 1.0)
        cand = arm(rng, (n,), hi, 1, noise, floor, cv_true, eff)
        used = np.full(n, looks[-1])
        open_ = np.ones(n, dtype=bool)
        for look in looks[:-1]:
            c = Comparison(cand[:, :look], base, cv_assumed, 1, 1, legacy_term)
            l, h = c.ratio_ci(level)
            stop = (l > threshold) | (h < threshold) | ((l > 1 - floor) & (h < 1 + floor)) | (h - l < floor)
            stop &= np.isfinite(l) & np.isfinite(h)
            used[open_ & stop] = look
            open_ &= ~stop
        passed = np.zeros(n, dtype=bool)
        for look in looks:
            sel = used == look
            if sel.any():
                c = Comparison(cand[sel, :look], base[sel], cv_assumed, 1, 1, legacy_term)
                passed[sel] = c.one_sided_p(threshold) < one_sided(level)
        counts["topk5_passes"] = int(passed.sum())
        counts["_mean_reps"] = float(used.mean())
    elif d["kind"] == "frontier":
        fail, passes = frontier(d, cell["effect"], n, noise, floor, cv_assumed, cv_true, rng, one_sided(ALPHA))
        counts["fail_on_regression_fails"] = int(fail.sum())
        counts["non_inferiority_passes"] = int(passes.sum())
    elif d["kind"] == "ab":
        # `l1 ab`: per round, each side's trimmed mean over its own launch(es); the paired
        # t-test of the rounds' log ratios (rounds - 1 df) against ln(1 - eps), both forms.
        rounds, reps, launches, eps = d["rounds"], d["reps"], d["launches"], d["epsilon"]
        base = arm(rng, (n, rounds), reps, launches, noise, floor, cv_true, 1.0)
        head = arm(rng, (n, rounds), reps, launches, noise, floor, cv_true, eff)
        logs = np.log(yuen_parts(head)[0] / yuen_parts(base)[0])
        se = logs.std(axis=-1, ddof=1) / math.sqrt(rounds)
        z = (logs.mean(axis=-1) - math.log(1 - eps)) / se
        counts["fail_on_regression_fails"] = int(np.sum(stats.t.sf(-z, rounds - 1) < one_sided(ALPHA)))
        counts["non_inferiority_passes"] = int(np.sum(stats.t.sf(z, rounds - 1) < one_sided(ALPHA)))
    else:
        raise SystemExit(f"unknown design kind {d['kind']!r}")
    return counts


FRONTIER_STEP = 0.15  # main's point j: throughput and latency both 1 - 0.15 j times point 0's
LATENCY_TRUTH = 100.0


def frontier(d, effect, n, noise, floor, cv_assumed, cv_true, rng, lvl):
    """The `pareto` gate against stored results, both forms, over n comparisons: (fails under
    fail_on_regression, passes under non_inferiority), boolean arrays of n.

    Main's P points and the P combos measured now (combo k covers point k; the effect multiplies
    the improvement ratio of the shifted covers on the shifted axes: throughput x (1 + effect),
    latency / (1 + effect)). Per (point, combo) and axis: the one-sided Yuen test of
    log(ratio) = log(1 - eps) with the launch term. fail_on_regression: pair p = 2 min over the
    axes of p(worse beyond eps); point p = max over the combos; Holm across the points; the gate
    fails when some adjusted p < lvl. non_inferiority: pair p = max over the axes of p(within
    eps); point p = P x min over the combos (Bonferroni); the gate passes when every point's p < lvl."""
    P, reps, L = d["points"], d["reps"], d["launches"]
    eps = max(d["epsilon"], floor)
    on_t, on_l = {"throughput": (True, False), "latency": (False, True), "both": (True, True)}[d["axes"]]
    s = 1.0 - FRONTIER_STEP * np.arange(P)
    hit = np.ones(P, dtype=bool) if d["shifted"] == "all" else (np.arange(P) == 0)
    t_scale = s * np.where(hit & on_t, 1.0 + effect, 1.0)
    l_scale = s / np.where(hit & on_l, 1.0 + effect, 1.0)
    # Draws in the order the harness makes them: main's P arms, then the P arms measured now.
    ms = slowdowns(rng, (n, P), reps, L, noise, floor, cv_true)
    cs = slowdowns(rng, (n, P), reps, L, noise, floor, cv_true)
    main_t, main_l = METRIC_TRUTH * s[None, :, None] / ms, LATENCY_TRUTH * s[None, :, None] * ms
    now_t = METRIC_TRUTH * t_scale[None, :, None] / cs
    now_l = LATENCY_TRUTH * l_scale[None, :, None] * cs
    # Main's frontier (trimmed means; throughput up, latency down) must hold every point.
    mt, ml = yuen_parts(main_t)[0], yuen_parts(main_l)[0]
    dominated = ((mt[:, None, :] >= mt[:, :, None]) & (ml[:, None, :] <= ml[:, :, None])
                 & ((mt[:, None, :] > mt[:, :, None]) | (ml[:, None, :] < ml[:, :, None]))).any(axis=-1)
    if dominated.any():
        raise SystemExit("check-accuracy: a frontier cell's main run lost a point of its frontier")
    # (n, point j, combo k): the combos on axis 2, the points on axis 1.
    ct = Comparison(now_t[:, None, :, :], main_t[:, :, None, :], cv_assumed, L, L)
    cl = Comparison(now_l[:, None, :, :], main_l[:, :, None, :], cv_assumed, L, L)
    zt = (np.log(ct.ratio) - math.log(1 - eps)) / ct.se_log
    zl = (np.log(1.0 / cl.ratio) - math.log(1 - eps)) / cl.se_log
    nan1 = lambda p: np.where(np.isnan(p), 1.0, p)
    worse = np.minimum(2 * np.minimum(nan1(stats.t.sf(-zt, ct.df)), nan1(stats.t.sf(-zl, cl.df))), 1.0)
    point_p = worse.max(axis=-1)  # intersection-union over the combos
    fails = (holm(point_p) < lvl).any(axis=-1)
    within = np.maximum(nan1(stats.t.sf(zt, ct.df)), nan1(stats.t.sf(zl, cl.df)))
    covered = np.minimum(within.min(axis=-1) * P, 1.0) < lvl
    passes = covered.all(axis=-1)
    return fails, passes


# ---------------------------------------------------------------------------------------------
# Comparison of rates.


def wilson(k, n, z=1.959963984540054):
    p = k / n
    den = 1 + z * z / n
    c = (p + z * z / (2 * n)) / den
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(c - h, 0.0), min(c + h, 1.0)


def z_of_difference(k1, n1, k2, n2):
    """The two-proportion z statistic (pooled), for display."""
    p = (k1 + k2) / (n1 + n2)
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return (k1 / n1 - k2 / n2) / math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))


def p_of_difference(k1, n1, k2, n2):
    """Exact two-sided p-value of "both rates are equal": conditional on the k1 + k2 events,
    k1 is Binomial(k1 + k2, n1 / (n1 + n2)) (exact for small counts, where z is not)."""
    if k1 + k2 == 0:
        return 1.0
    return stats.binomtest(k1, k1 + k2, n1 / (n1 + n2)).pvalue


def cell_rng(cell_id, base):
    h = hashlib.sha256(f"check-accuracy:{base}:{cell_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--l1", default="target/release/l1", help="the l1 binary to run (ignored with --from)")
    ap.add_argument("--from", dest="from_file", help="a saved `l1 --json accuracy` output instead of running l1")
    ap.add_argument("--cells", help="cells to run/check (as `l1 accuracy --cells`)")
    ap.add_argument("--comparisons", type=int, default=4000, help="comparisons per cell for l1")
    ap.add_argument("--check-comparisons", type=int, default=40000, help="comparisons per cell here")
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--legacy", action="store_true",
                    help="the rules of builds before issue 20: launch term σ_b²(1/L − 1/n), Holm over "
                    "the top k only, one-sided claims at the full level, Pocock's 4-digit table")
    opts = ap.parse_args()
    opts.legacy_rules = (opts.legacy,) * 3

    if opts.from_file:
        with open(opts.from_file) as f:
            data = json.load(f)
    else:
        cmd = [opts.l1, "--json", "accuracy", "--comparisons", str(opts.comparisons)]
        if opts.cells:
            cmd += ["--cells", opts.cells]
        t0 = time.time()
        res = subprocess.run(cmd, check=False, capture_output=True, text=True)
        if res.returncode != 0:
            sys.stderr.write(res.stderr)
            raise SystemExit(f"check-accuracy: `{' '.join(cmd)}` exited with {res.returncode}")
        data = json.loads(res.stdout)
        print(f"l1 accuracy: {len(data['cells'])} cells in {time.time() - t0:.1f} s")

    cells = data["cells"]
    if opts.from_file and opts.cells:
        wanted = [c.strip() for c in opts.cells.split(",") if c.strip()]
        keep = lambda i: any(i == w or (w.endswith("*") and i.startswith(w[:-1])) for w in wanted)
        cells = [c for c in cells if keep(c["cell"]["id"])]
    if not cells:
        raise SystemExit("check-accuracy: no cells to check")
    if abs(data["alpha"] - ALPHA) > 1e-12 or abs(data["trim"] - TRIM) > 1e-12:
        raise SystemExit(f"check-accuracy: expected α {ALPHA} and trim {TRIM}, got {data['alpha']} and {data['trim']}")

    rows = []
    t0 = time.time()
    for o in cells:
        cell = o["cell"]
        counts = simulate(cell, opts.check_comparisons, o["noise_floor"], o["launch_cv_assumed"],
                          o["launch_cv_true"], cell_rng(cell["id"], opts.seed), opts)
        if cell["design"]["kind"] == "sequential":
            rows.append((cell["id"], "mean candidate reps", None, None, o["mean_candidate_reps"], counts["_mean_reps"]))
        for r in o["rates"]:
            if r["name"] not in counts:
                raise SystemExit(f"check-accuracy: {cell['id']}: no independent check for rate {r['name']!r}")
            rows.append((cell["id"], r["name"], (r["count"], r["n"]), (counts[r["name"]], opts.check_comparisons), None, None))
    print(f"independent check: {len(cells)} cells x {opts.check_comparisons} comparisons in {time.time() - t0:.1f} s")

    m = sum(1 for r in rows if r[2] is not None)
    family = 0.05 / m
    outside95, failed = 0, []
    print(f"{'cell':<28} {'rate':<24} {'l1 accuracy':>24} {'independent':>24} {'z':>6} {'p':>7}  agreement")
    for cid, name, a, b, ma, mb in rows:
        if a is None:
            print(f"{cid:<28} {name:<24} {ma:>24.2f} {mb:>24.2f}")
            continue
        (k1, n1), (k2, n2) = a, b
        z = z_of_difference(k1, n1, k2, n2)
        p = p_of_difference(k1, n1, k2, n2)
        w1, w2 = wilson(k1, n1), wilson(k2, n2)
        fmt = lambda k, n, w: f"{100 * k / n:6.2f} % [{100 * w[0]:5.2f}, {100 * w[1]:5.2f}]"
        verdict = "within 95 %"
        if p < 0.05:
            outside95 += 1
            verdict = "outside 95 %"
        if p < family:
            verdict = f"DISAGREES (p < {family:.5f}: outside the family-wise 95 % interval)"
            failed.append(f"{cid} {name}")
        print(f"{cid:<28} {name:<24} {fmt(k1, n1, w1):>24} {fmt(k2, n2, w2):>24} {z:>6.2f} {p:>7.4f}  {verdict}")
    print(f"{m} rates compared: {m - outside95} agree within the combined 95 % interval, {outside95} outside it "
          f"(about {0.05 * m:.1f} expected by chance); the check fails below p = {family:.5f} (Bonferroni over {m})")
    if failed:
        print("check-accuracy: FAILED: " + "; ".join(failed))
        return 1
    print("check-accuracy: every rate agrees with the independent simulation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
