//! The fitted surrogates of a session (objective and constraint GPs) and what they rank and
//! propose: expected improvement, the knowledge gradient, re-measure candidates and contenders.

use crate::acquisition::{expected_improvement, expected_max_gain, prob_at_most};
use crate::gp::{Gp, Latent};

use super::{
    Constraint, ConstraintOutlook, Observation, Proposal, ProposalKind, Recommendation, Sense,
    Session,
};

pub(super) struct ConstraintModel {
    pub(super) gp: Gp,
    pub(super) log: bool,
    pub(super) constraint: Constraint,
}

impl ConstraintModel {
    fn prob(&self, combo: &[u16]) -> f64 {
        let p = self.gp.predict(combo);
        let thr = if self.log {
            self.constraint.threshold.ln()
        } else {
            self.constraint.threshold
        };
        let at_most = prob_at_most(p.mean, p.sd, thr);
        match self.constraint.sense {
            Sense::AtMost => at_most,
            Sense::AtLeast => 1.0 - at_most,
        }
    }
}

/// The fitted surrogates of a session at its current state.
pub struct Model<'a> {
    pub(super) session: &'a Session,
    pub(super) gp: Gp,
    pub(super) cons: Vec<ConstraintModel>,
    pub(super) xi: f64,
}

impl std::fmt::Debug for Model<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("hyper", self.gp.hyper())
            .finish_non_exhaustive()
    }
}

impl Model<'_> {
    /// The objective GP's hyperparameters.
    pub fn hyper(&self) -> &crate::gp::Hyper {
        self.gp.hyper()
    }

    fn prob_feasible(&self, combo: &[u16]) -> f64 {
        self.cons.iter().map(|c| c.prob(combo)).product()
    }

    /// Distinct observed combos with their posterior mean (model units) and observed
    /// feasibility, in combo order.
    fn observed(&self) -> Vec<(usize, f64, bool)> {
        let s = self.session;
        let mut seen: Vec<usize> = s.state.observations.iter().map(|o| o.combo).collect();
        seen.sort_unstable();
        seen.dedup();
        // A combo that failed after it was measured (a re-measurement crashed) is not
        // recommended.
        seen.retain(|i| !s.state.failures.iter().any(|f| f.combo == *i));
        seen.into_iter()
            .map(|i| {
                let mean = self.gp.predict(&s.space.combos()[i]).mean;
                let obs: Vec<&Observation> = s
                    .state
                    .observations
                    .iter()
                    .filter(|o| o.combo == i)
                    .collect();
                let nc = s.state.config.constraints.len();
                let avg: Vec<f64> = (0..nc)
                    .map(|c| obs.iter().map(|o| o.constraints[c]).sum::<f64>() / obs.len() as f64)
                    .collect();
                (i, mean, s.feasible_values(&avg))
            })
            .collect()
    }

    pub(super) fn propose(&self, done: &[bool]) -> Option<Proposal> {
        let s = self.session;
        let observed = self.observed();
        let incumbent = observed
            .iter()
            .filter(|o| o.2)
            .map(|o| o.1)
            .fold(f64::NEG_INFINITY, f64::max);
        let has_feasible = incumbent.is_finite();
        let has_cons = !self.cons.is_empty();
        let mut best: Option<(f64, f64, usize, f64, f64)> = None; // score, tiebreak, idx, ei, pof
        for (i, c) in s.space.combos().iter().enumerate() {
            if done[i] {
                continue;
            }
            let p = self.gp.predict(c);
            let pof = if has_cons { self.prob_feasible(c) } else { 1.0 };
            let ei = if has_feasible {
                expected_improvement(p.mean, p.sd, incumbent, self.xi)
            } else {
                0.0
            };
            let score = if has_feasible { ei * pof } else { pof };
            // Secondary key when EI underflows everywhere: an optimistic bound.
            let tie = (p.mean + 2.0 * p.sd) * pof.max(1e-300);
            let score = if score.is_finite() { score } else { 0.0 };
            let tie = if tie.is_finite() {
                tie
            } else {
                f64::NEG_INFINITY
            };
            if best.is_none_or(|b| score > b.0 || (score == b.0 && tie > b.1)) {
                best = Some((score, tie, i, ei, pof));
            }
        }
        best.map(|(_, _, i, ei, pof)| Proposal {
            combo: i,
            kind: ProposalKind::Acquisition,
            acquisition_value: Some(ei),
            prob_feasible: has_cons.then_some(pof),
            predicted: Some(s.untransform(self.gp.predict(&s.space.combos()[i]).mean)),
        })
    }

    /// The combos a report can name (observed, not failed; the feasible ones when any is) as
    /// joint posteriors, and the best posterior mean among them.
    fn reportable(&self) -> (Vec<(usize, Latent)>, f64) {
        let s = self.session;
        let observed = self.observed();
        let any_feasible = observed.iter().any(|o| o.2);
        let set: Vec<(usize, Latent)> = observed
            .iter()
            .filter(|o| o.2 || !any_feasible)
            .map(|o| (o.0, self.gp.latent(&s.space.combos()[o.0])))
            .collect();
        let best = set
            .iter()
            .map(|(_, l)| l.mean)
            .fold(f64::NEG_INFINITY, f64::max);
        (set, best)
    }

    /// Knowledge gradient of measuring combo `x` once: the expected rise of the best posterior
    /// mean among the reportable combos (plus `x`, which a measurement makes reportable), from
    /// the joint posterior and the fitted noise. Unlike expected improvement it values a
    /// replicate of a measured combo and a first look at a new one on one scale, which is what
    /// picking the best of a flat, noisy top needs.
    fn knowledge_gradient(&self, x: usize, reportable: &[(usize, Latent)], best: f64) -> f64 {
        let s = self.session;
        let lx = self.gp.latent(&s.space.combos()[x]);
        let noise = self.gp.noise_sd().powi(2);
        let sd = (lx.var + noise).sqrt();
        if sd.is_nan() || sd <= 0.0 {
            return 0.0;
        }
        let mut a = Vec::with_capacity(reportable.len() + 1);
        let mut b = Vec::with_capacity(reportable.len() + 1);
        for (i, l) in reportable {
            a.push(l.mean);
            b.push(if *i == x { lx.var } else { self.gp.cov(l, &lx) } / sd);
        }
        if !reportable.iter().any(|(i, _)| *i == x) {
            a.push(lx.mean);
            b.push(lx.var / sd);
        }
        // What `x` adds by its current mean alone (when nothing is reportable yet, e.g. every
        // measured combo failed a re-measurement, only the expected gain counts).
        let top = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lift = if best.is_finite() {
            (top - best).max(0.0)
        } else {
            0.0
        };
        expected_max_gain(&a, &b) + lift
    }

    /// The combo (measured or not, never a failed one) with the largest knowledge gradient
    /// times the probability that the constraints hold; a measured one is a re-measurement.
    pub(super) fn propose_kg(&self) -> Option<Proposal> {
        let s = self.session;
        let done = s.done();
        let failed: Vec<usize> = s.state.failures.iter().map(|f| f.combo).collect();
        let (reportable, best) = self.reportable();
        let has_cons = !self.cons.is_empty();
        let mut pick: Option<(f64, usize, f64)> = None;
        for (i, c) in s.space.combos().iter().enumerate() {
            if failed.contains(&i) {
                continue;
            }
            let pof = if has_cons { self.prob_feasible(c) } else { 1.0 };
            let score = self.knowledge_gradient(i, &reportable, best) * pof;
            if pick.is_none_or(|p| score > p.0) {
                pick = Some((score, i, pof));
            }
        }
        pick.map(|(score, i, pof)| Proposal {
            combo: i,
            kind: if done[i] {
                ProposalKind::Remeasure
            } else {
                ProposalKind::Acquisition
            },
            acquisition_value: Some(score),
            prob_feasible: has_cons.then_some(pof),
            predicted: Some(s.untransform(self.gp.predict(&s.space.combos()[i]).mean)),
        })
    }

    /// The evaluated combos ranked by posterior mean, feasible ones first.
    pub fn ranked(&self) -> Vec<Recommendation> {
        let s = self.session;
        let mut obs = self.observed();
        obs.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.total_cmp(&a.1)).then(a.0.cmp(&b.0)));
        obs.into_iter()
            .map(|(i, _, feasible)| {
                let p = self.gp.predict(&s.space.combos()[i]);
                let lo = s.untransform(p.mean - 1.96 * p.sd);
                let hi = s.untransform(p.mean + 1.96 * p.sd);
                Recommendation {
                    combo: i,
                    label: s.space.label(i),
                    predicted: s.untransform(p.mean),
                    interval: (lo.min(hi), lo.max(hi)),
                    observed: s
                        .state
                        .observations
                        .iter()
                        .filter(|o| o.combo == i)
                        .map(|o| o.value)
                        .collect(),
                    feasible,
                }
            })
            .collect()
    }

    /// The best-so-far: the top of [`Model::ranked`].
    pub fn recommend(&self) -> Option<Recommendation> {
        self.ranked().into_iter().next()
    }

    /// The top `k` candidates to re-measure at the end (feasible first, by posterior mean).
    pub fn remeasure_candidates(&self, k: usize) -> Vec<Recommendation> {
        self.ranked().into_iter().take(k).collect()
    }

    /// Of the top `k` candidates, those still in contention: the first, and every other with at
    /// least `p_min` posterior probability of being truly better than it (treating the two
    /// posteriors as independent, which overstates the chance a little: a conservative choice
    /// for re-measuring). Fewer than two means the best is clear.
    pub fn contenders(&self, k: usize, p_min: f64) -> Vec<Recommendation> {
        let s = self.session;
        let top = self.remeasure_candidates(k);
        let Some(first) = top.first() else {
            return top;
        };
        let p1 = self.gp.predict(&s.space.combos()[first.combo]);
        let feasible = first.feasible;
        top.into_iter()
            .enumerate()
            .filter(|(rank, r)| {
                if *rank == 0 {
                    return true;
                }
                if r.feasible != feasible {
                    return false;
                }
                let p = self.gp.predict(&s.space.combos()[r.combo]);
                let sd = (p1.sd * p1.sd + p.sd * p.sd).sqrt();
                1.0 - prob_at_most(p.mean, sd, p1.mean) >= p_min
            })
            .map(|(_, r)| r)
            .collect()
    }

    /// Per constraint: how many observed combos met it and the best chance an unevaluated
    /// combo has. A constraint no observation met and whose best chance is tiny cannot be
    /// met by any legal point as far as the model can tell.
    pub fn constraint_outlook(&self) -> Vec<ConstraintOutlook> {
        let s = self.session;
        let done = s.done();
        self.cons
            .iter()
            .enumerate()
            .map(|(ci, cm)| {
                let mut seen: Vec<usize> = s.state.observations.iter().map(|o| o.combo).collect();
                seen.sort_unstable();
                seen.dedup();
                let feasible_observed = seen
                    .iter()
                    .filter(|&&i| {
                        let v: Vec<f64> = s
                            .state
                            .observations
                            .iter()
                            .filter(|o| o.combo == i)
                            .map(|o| o.constraints[ci])
                            .collect();
                        cm.constraint.holds(v.iter().sum::<f64>() / v.len() as f64)
                    })
                    .count();
                let max_prob_unevaluated = s
                    .space
                    .combos()
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !done[*i])
                    .map(|(_, c)| cm.prob(c))
                    .fold(0.0, f64::max);
                ConstraintOutlook {
                    metric: cm.constraint.metric.clone(),
                    feasible_observed,
                    observed: seen.len(),
                    max_prob_unevaluated,
                }
            })
            .collect()
    }
}
