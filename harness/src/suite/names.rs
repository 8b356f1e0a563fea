//! The trial-name grammar: `<class>::<spec>::<engine>@<version>::<model>::<hardware>::<workload>::<leaf>`
//! (see [`crate::suite`]), and reading a spec or target back out of a name.

use l1_engines::Combo;
use l1_engines::combo::UNSET;

use crate::expand::{Axis, Space};
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

/// The slugs of one target's combos, written from their value indices in the target's
/// [`Space`]: each value's `short=value` piece is made once per target, and a combo's slug joins
/// its pieces in slug order. Gives what [`push_combo_slug`] gives for the combo the indices
/// stand for.
pub struct SpaceSlugs {
    /// The axes in slug order (dimensions by short name, then knobs by name), each with its
    /// values' pieces (`None`: an `unset` dimension, left out of the slug).
    order: Vec<(usize, Vec<Option<String>>)>,
    /// The longest slug's length (`defaults` at least).
    max_len: usize,
}

impl SpaceSlugs {
    /// `None` when two dimensions share a short name (then a combo's values decide the order)
    /// or two axes of a kind share a name: such a space's combos take [`push_combo_slug`].
    pub fn new(cats: &Catalogs, space: &Space) -> Option<Self> {
        let (dims, knobs): (Vec<_>, Vec<_>) =
            space.axes.iter().enumerate().partition(|(_, a)| !a.knob);
        let increasing =
            |axes: &[(usize, &Axis)]| axes.windows(2).all(|w| w[0].1.name < w[1].1.name);
        if !increasing(&dims) || !increasing(&knobs) {
            return None;
        }
        let mut dims: Vec<(&str, usize, &Axis)> = (dims.into_iter())
            .map(|(i, a)| (cats.kernels.short_name(&a.name), i, a))
            .collect();
        dims.sort_by(|a, b| a.0.cmp(b.0));
        if dims.windows(2).any(|w| w[0].0 == w[1].0) {
            return None;
        }
        let pieces = |key: &str, a: &Axis, skip_unset: bool| -> Vec<Option<String>> {
            (a.values.iter())
                .map(|v| (!(skip_unset && v == UNSET)).then(|| format!("{key}={v}")))
                .collect()
        };
        let order = (dims.into_iter())
            .map(|(short, i, a)| (i, pieces(short, a, true)))
            .chain(
                knobs
                    .into_iter()
                    .map(|(i, a)| (i, pieces(&a.name, a, false))),
            )
            .collect::<Vec<_>>();
        let max_len = (order.iter())
            .map(|(_, pieces)| {
                pieces
                    .iter()
                    .flatten()
                    .map(|p| p.len() + 1)
                    .max()
                    .unwrap_or(0)
            })
            .sum::<usize>()
            .max("defaults".len());
        Some(Self { order, max_len })
    }

    /// The length of the longest slug of the space (what a name needs room for).
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Append the slug of the combo taking value `at[i]` on axis `i` to `out`.
    pub fn push(&self, out: &mut String, at: &[usize]) {
        let start = out.len();
        for (axis, pieces) in &self.order {
            if let Some(piece) = &pieces[at[*axis]] {
                if out.len() > start {
                    out.push(',');
                }
                out.push_str(piece);
            }
        }
        if out.len() == start {
            out.push_str("defaults");
        }
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

    fn axis(name: &str, values: &[&str], knob: bool) -> Axis {
        Axis {
            name: name.into(),
            values: values.iter().map(|v| (*v).to_string()).collect(),
            knob,
        }
    }

    /// The per-target pieces name every combo of a space as the per-combo sort does: unset
    /// values left out, knobs after dimensions, `defaults` for nothing, dimensions the catalog
    /// does not know by their own name; a space whose dimensions share a short name, or whose
    /// axes repeat a name, has none.
    #[test]
    fn space_slugs_name_combos_as_the_sort_does() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let cats = Catalogs::load(&root).unwrap_or_else(|d| panic!("{d}"));
        let dims: Vec<&String> = cats.kernels.catalog.dimensions.keys().collect();
        let every = |values: &[&str]| -> Vec<Axis> {
            dims.iter().map(|d| axis(d, values, false)).collect()
        };
        let mut mixed = every(&["v", UNSET]);
        mixed.push(axis("a", &["1", "2"], true));
        mixed.push(axis("block_size", &["16", "32"], true));
        let spaces = [
            Space {
                axes: every(&["x"]),
            },
            Space {
                axes: every(&[UNSET]),
            },
            Space { axes: mixed },
            Space {
                axes: vec![axis("attention_backend", &["flash", UNSET], false)],
            },
            Space {
                axes: vec![
                    axis("aa_extra", &["1"], false),
                    axis("zz_extra", &["1", UNSET], false),
                    axis("k", &["v"], true),
                ],
            },
            Space { axes: vec![] },
        ];
        let mut names = 0;
        for space in &spaces {
            let slugs =
                SpaceSlugs::new(&cats, space).unwrap_or_else(|| panic!("no slugs for {space:?}"));
            space.for_each(|_, at| {
                let mut fast = String::from("prefix::");
                slugs.push(&mut fast, at);
                assert!(fast.len() - "prefix::".len() <= slugs.max_len(), "{fast}");
                let combo = space.combo(at);
                assert_eq!(
                    fast,
                    format!("prefix::{}", combo_slug(&cats, &combo)),
                    "{combo:?}"
                );
                names += 1;
            });
        }
        assert!(names > 128, "{names} names compared");
        assert_eq!(combo_slug(&cats, &spaces[1].combo_at(0)), "defaults");
        // `attn` is attention_backend's short name: the two would share it.
        let shared = Space {
            axes: vec![
                axis("attention_backend", &["x"], false),
                axis("attn", &["y"], false),
            ],
        };
        assert!(SpaceSlugs::new(&cats, &shared).is_none());
        let repeated = Space {
            axes: vec![axis("k", &["1"], true), axis("k", &["2"], true)],
        };
        assert!(SpaceSlugs::new(&cats, &repeated).is_none());
    }
}
