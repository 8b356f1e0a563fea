//! The combos of a target's space: every combination of its axes ([`cartesian`]) and a
//! pairwise covering subset of the legal ones ([`covering`], the `quick` mode).

use std::collections::{BTreeSet, HashSet};

use l1_engines::Combo;

/// Every combination of the axes, in a stable order: the first axis varies slowest. Each combo
/// is built once (an odometer over value indices), not cloned layer by layer.
pub(super) fn cartesian(axes: &[(String, Vec<String>, bool)]) -> Vec<Combo> {
    let total: usize = axes.iter().map(|(_, values, _)| values.len()).product();
    let mut out = Vec::with_capacity(total);
    let mut at = vec![0usize; axes.len()];
    for _ in 0..total {
        let mut c = Combo::default();
        for ((name, values, is_knob), &i) in axes.iter().zip(&at) {
            let map = if *is_knob { &mut c.knobs } else { &mut c.dims };
            map.insert(name.clone(), values[i].clone());
        }
        out.push(c);
        for k in (0..axes.len()).rev() {
            at[k] += 1;
            if at[k] < axes[k].1.len() {
                break;
            }
            at[k] = 0;
        }
    }
    out
}

/// A pairwise covering subset of `legal` (indices, in their original order): greedily take the
/// combo covering the most uncovered value pairs, the first one on ties, until every pair that
/// appears in some legal combo is covered. Deterministic, so every process agrees on it.
pub fn covering(legal: &[Combo]) -> Vec<usize> {
    if legal.is_empty() {
        return Vec::new();
    }
    // Encode each combo as a vector of (axis, value) ids over the axes that vary.
    let axes: Vec<String> = legal[0]
        .dims
        .keys()
        .map(|k| format!("d:{k}"))
        .chain(legal[0].knobs.keys().map(|k| format!("k:{k}")))
        .collect();
    let value_of = |c: &Combo, axis: &str| -> String {
        match axis.split_at(2) {
            ("d:", k) => c.dim(k).to_string(),
            (_, k) => c.knob(k).unwrap_or("").to_string(),
        }
    };
    let mut varying = Vec::new();
    for a in &axes {
        let distinct: BTreeSet<String> = legal.iter().map(|c| value_of(c, a)).collect();
        if distinct.len() > 1 {
            varying.push((a.clone(), distinct.into_iter().collect::<Vec<_>>()));
        }
    }
    let codes: Vec<Vec<u16>> = legal
        .iter()
        .map(|c| {
            varying
                .iter()
                .map(|(a, vals)| vals.iter().position(|v| *v == value_of(c, a)).unwrap_or(0) as u16)
                .collect()
        })
        .collect();
    let pairs_of = |code: &[u16]| {
        let mut p = Vec::with_capacity(code.len() * code.len() / 2);
        for i in 0..code.len() {
            for j in i + 1..code.len() {
                p.push((i as u16, code[i], j as u16, code[j]));
            }
        }
        p
    };
    if varying.len() < 2 {
        // With fewer than two varying axes, covering pairs means covering every value.
        let mut seen = HashSet::new();
        return codes
            .iter()
            .enumerate()
            .filter(|(_, c)| seen.insert((*c).clone()))
            .map(|(i, _)| i)
            .collect();
    }
    let all_pairs: Vec<Vec<(u16, u16, u16, u16)>> = codes.iter().map(|c| pairs_of(c)).collect();
    let mut uncovered: HashSet<(u16, u16, u16, u16)> =
        all_pairs.iter().flatten().copied().collect();
    let mut chosen = Vec::new();
    let mut taken = vec![false; legal.len()];
    while !uncovered.is_empty() {
        let mut best = None;
        let mut best_gain = 0;
        for (i, pairs) in all_pairs.iter().enumerate() {
            if taken[i] {
                continue;
            }
            let gain = pairs.iter().filter(|p| uncovered.contains(p)).count();
            if gain > best_gain {
                best_gain = gain;
                best = Some(i);
            }
        }
        let Some(i) = best else { break };
        taken[i] = true;
        for p in &all_pairs[i] {
            uncovered.remove(p);
        }
        chosen.push(i);
    }
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layer-by-layer product the odometer replaced: the order every name and covering
    /// choice was made in.
    fn layered(axes: &[(String, Vec<String>, bool)]) -> Vec<Combo> {
        let mut out = vec![Combo::default()];
        for (name, values, is_knob) in axes {
            let mut next = Vec::new();
            for c in &out {
                for v in values {
                    let mut c = c.clone();
                    let map = if *is_knob { &mut c.knobs } else { &mut c.dims };
                    map.insert(name.clone(), v.clone());
                    next.push(c);
                }
            }
            out = next;
        }
        out
    }

    fn axis(name: &str, values: &[&str], knob: bool) -> (String, Vec<String>, bool) {
        (
            name.into(),
            values.iter().map(|v| (*v).to_string()).collect(),
            knob,
        )
    }

    #[test]
    fn the_odometer_lists_the_same_combos_in_the_same_order() {
        let cases = [
            vec![],
            vec![axis("a", &["x"], false)],
            vec![
                axis("z", &["1", "2", "3"], false),
                axis("a", &["p", "q"], false),
                axis("block", &["16", "32"], true),
            ],
            vec![axis("a", &["x", "y"], false), axis("b", &[], false)],
            vec![
                axis("a", &["x", "y"], false),
                axis("b", &["u"], false),
                axis("c", &["1", "2", "3", "4"], false),
            ],
        ];
        for axes in cases {
            assert_eq!(cartesian(&axes), layered(&axes), "axes {axes:?}");
        }
    }
}
