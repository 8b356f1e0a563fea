//! A pairwise covering subset of a target's legal combos ([`covering`], the `quick` mode).

use std::collections::{BTreeSet, HashSet};

use l1_engines::Combo;

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
