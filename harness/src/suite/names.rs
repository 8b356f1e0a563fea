//! The trial-name grammar: `<class>::<spec>::<engine>@<version>::<model>::<hardware>::<workload>::<leaf>`
//! (see [`crate::suite`]), and reading a spec or target back out of a name.

use l1_engines::Combo;
use l1_engines::combo::UNSET;

use crate::profiles::Catalogs;

/// The slug of a combo in test names.
pub fn combo_slug(cats: &Catalogs, combo: &Combo) -> String {
    let mut s = String::with_capacity(96);
    push_combo_slug(&mut s, cats, combo);
    s
}

/// [`combo_slug`] appended to `out`: listing names every combo of every target, so the name is
/// built in one buffer. Dimensions by short name (sorted), then knobs (in map order), joined by
/// `,`; `defaults` when the combo has neither.
pub fn push_combo_slug(out: &mut String, cats: &Catalogs, combo: &Combo) {
    let mut dims: Vec<(&str, &str)> = combo
        .dims
        .iter()
        .filter(|(_, v)| v.as_str() != UNSET)
        .map(|(d, v)| (cats.kernels.short_name(d), v.as_str()))
        .collect();
    dims.sort_unstable();
    let knobs = combo.knobs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    push_pairs(out, dims.into_iter().chain(knobs));
}

/// `k=v` pairs joined by `,`, or `defaults` when there are none.
fn push_pairs<'a>(out: &mut String, pairs: impl Iterator<Item = (&'a str, &'a str)>) {
    let start = out.len();
    for (k, v) in pairs {
        if out.len() > start {
            out.push(',');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    if out.len() == start {
        out.push_str("defaults");
    }
}

/// The slug order of one target's combos, worked out once: every combo of a target has the same
/// dimensions, so their order by short name does not change from combo to combo. Gives what
/// [`push_combo_slug`] gives; falls back to it for a combo with other dimensions.
pub struct SlugOrder {
    /// The dimensions, in the combos' map order.
    dims: Vec<String>,
    /// Their short names, same order.
    shorts: Vec<String>,
    /// Positions in `dims`, sorted by short name.
    order: Vec<usize>,
}

/// Dimensions a combo may have for the fast path of [`SlugOrder::push`] (the catalog has 7).
const SLUG_MAX_DIMS: usize = 32;

impl SlugOrder {
    /// The order of `first`'s dimensions; `None` when two share a short name (then a combo's
    /// values decide the order, and every combo takes [`push_combo_slug`]).
    pub fn new(cats: &Catalogs, first: &Combo) -> Option<Self> {
        let dims: Vec<String> = first.dims.keys().cloned().collect();
        if dims.len() > SLUG_MAX_DIMS {
            return None;
        }
        let shorts: Vec<String> = dims.iter().map(|d| cats.kernels.short(d)).collect();
        let mut order: Vec<usize> = (0..dims.len()).collect();
        order.sort_by(|&a, &b| shorts[a].cmp(&shorts[b]));
        let unique = order.windows(2).all(|w| shorts[w[0]] != shorts[w[1]]);
        unique.then_some(Self {
            dims,
            shorts,
            order,
        })
    }

    /// Append `combo`'s slug to `out`.
    pub fn push(&self, out: &mut String, cats: &Catalogs, combo: &Combo) {
        let same_dims = combo.dims.len() == self.dims.len()
            && combo.dims.keys().zip(&self.dims).all(|(a, b)| a == b);
        if !same_dims {
            return push_combo_slug(out, cats, combo);
        }
        let mut values = [""; SLUG_MAX_DIMS];
        for (slot, v) in values.iter_mut().zip(combo.dims.values()) {
            *slot = v.as_str();
        }
        let dims = (self.order.iter())
            .filter(|&&i| values[i] != UNSET)
            .map(|&i| (self.shorts[i].as_str(), values[i]));
        let knobs = combo.knobs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        push_pairs(out, dims.chain(knobs));
    }
}

/// The spec name inside a trial name (its second `::` component).
pub fn spec_of_trial(name: &str) -> Option<&str> {
    exact_of_trial(name).map(|e| e.0)
}

/// The spec name and, when the name has one, the target id (`engine@version::model::hardware::workload`)
/// inside a trial name.
pub fn exact_of_trial(name: &str) -> Option<(&str, Option<String>)> {
    let parts: Vec<&str> = name.split("::").collect();
    let spec = spec_of_trial_parts(&parts)?;
    let target = (parts.len() == 7).then(|| parts[2..6].join("::"));
    Some((spec, target))
}

fn spec_of_trial_parts<'a>(parts: &[&'a str]) -> Option<&'a str> {
    matches!(
        parts.first().copied(),
        Some("sim" | "cpu" | "gpu" | "invalid")
    )
    .then_some(())?;
    parts.get(1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn combo(dims: &[(&str, &str)], knobs: &[(&str, &str)]) -> Combo {
        let map = |p: &[(&str, &str)]| p.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        Combo {
            dims: map(dims),
            knobs: map(knobs),
        }
    }

    /// The per-target order names every combo as the per-combo sort does: unset values left
    /// out, knobs after dimensions, `defaults` for nothing, and other dimensions by name.
    #[test]
    fn the_slug_order_names_combos_as_the_sort_does() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let cats = Catalogs::load(&root).unwrap_or_else(|d| panic!("{d}"));
        let dims: Vec<&String> = cats.kernels.catalog.dimensions.keys().collect();
        fn all<'a>(dims: &[&'a String], v: &'a str) -> Vec<(&'a str, &'a str)> {
            dims.iter().map(|d| (d.as_str(), v)).collect()
        }
        let first = combo(&all(&dims, "x"), &[]);
        let order = SlugOrder::new(&cats, &first).unwrap_or_else(|| panic!("short names repeat"));
        let mut mixed = all(&dims, "v");
        mixed[1].1 = UNSET;
        mixed[4].1 = UNSET;
        let cases = [
            first.clone(),
            combo(&all(&dims, UNSET), &[]),
            combo(&all(&dims, UNSET), &[("block_size", "16"), ("a", "1")]),
            combo(&mixed, &[("block_size", "32")]),
            combo(&[("attention_backend", "flash")], &[]),
            combo(&[("zz_extra", "1")], &[("k", "v")]),
        ];
        for c in &cases {
            let mut fast = String::from("prefix::");
            order.push(&mut fast, &cats, c);
            assert_eq!(fast, format!("prefix::{}", combo_slug(&cats, c)), "{c:?}");
        }
        assert_eq!(
            combo_slug(&cats, &combo(&all(&dims, UNSET), &[])),
            "defaults"
        );
    }
}
