//! A target's space: its axes (each dimension, then each swept knob, with the values it takes)
//! and every combination of them, numbered in a stable order without building one.
//!
//! A combo of the space is an ordinal (the first axis varies slowest) or, decoded, a value index
//! per axis. Listing names every combo and runs none of them, so expansion keeps ordinals and
//! builds a [`Combo`] (two maps of owned strings) only for a combo that is looked at.

use l1_engines::Combo;

/// One axis: a catalog dimension or an engine knob, and the values it takes in this space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Axis {
    pub name: String,
    pub values: Vec<String>,
    /// A knob (in [`Combo::knobs`]) rather than a dimension (in [`Combo::dims`]).
    pub knob: bool,
}

/// The axes of one target's space: the catalog's dimensions in map order, then its knobs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Space {
    pub axes: Vec<Axis>,
}

impl Space {
    /// How many combos the space holds (1 for no axes, 0 when an axis has no value).
    pub fn len(&self) -> usize {
        self.axes.iter().map(|a| a.values.len()).product()
    }

    /// Whether the space holds no combo.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value indices of the combo numbered `ordinal`, one per axis, into `at`.
    pub fn decode(&self, mut ordinal: usize, at: &mut [usize]) {
        for (slot, axis) in at.iter_mut().zip(&self.axes).rev() {
            let n = axis.values.len().max(1);
            *slot = ordinal % n;
            ordinal /= n;
        }
    }

    /// The combo taking value `at[i]` on axis `i`.
    pub fn combo(&self, at: &[usize]) -> Combo {
        let mut c = Combo::default();
        for (axis, &i) in self.axes.iter().zip(at) {
            let map = if axis.knob { &mut c.knobs } else { &mut c.dims };
            map.insert(axis.name.clone(), axis.values[i].clone());
        }
        c
    }

    /// The combo numbered `ordinal`.
    pub fn combo_at(&self, ordinal: usize) -> Combo {
        let mut at = vec![0; self.axes.len()];
        self.decode(ordinal, &mut at);
        self.combo(&at)
    }

    /// Every combo's value indices in ordinal order, each with its ordinal: an odometer, so no
    /// combo is decoded from scratch.
    pub fn for_each(&self, mut f: impl FnMut(usize, &[usize])) {
        let mut at = vec![0usize; self.axes.len()];
        for ordinal in 0..self.len() {
            f(ordinal, &at);
            for (k, axis) in self.axes.iter().enumerate().rev() {
                at[k] += 1;
                if at[k] < axis.values.len() {
                    break;
                }
                at[k] = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layer-by-layer product the odometer replaced: the order every name and covering
    /// choice was made in.
    fn layered(axes: &[Axis]) -> Vec<Combo> {
        let mut out = vec![Combo::default()];
        for axis in axes {
            let mut next = Vec::new();
            for c in &out {
                for v in &axis.values {
                    let mut c = c.clone();
                    let map = if axis.knob { &mut c.knobs } else { &mut c.dims };
                    map.insert(axis.name.clone(), v.clone());
                    next.push(c);
                }
            }
            out = next;
        }
        out
    }

    fn axis(name: &str, values: &[&str], knob: bool) -> Axis {
        Axis {
            name: name.into(),
            values: values.iter().map(|v| (*v).to_string()).collect(),
            knob,
        }
    }

    /// The odometer and the ordinal decoding both list the layered product's combos in its
    /// order, and every ordinal decodes to the odometer's indices.
    #[test]
    fn the_space_lists_the_same_combos_in_the_same_order() {
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
            let space = Space { axes: axes.clone() };
            let want = layered(&axes);
            assert_eq!(space.len(), want.len(), "axes {axes:?}");
            let mut odometer = Vec::new();
            space.for_each(|ordinal, at| {
                let mut decoded = vec![usize::MAX; at.len()];
                space.decode(ordinal, &mut decoded);
                assert_eq!(decoded, at, "ordinal {ordinal} of {axes:?}");
                odometer.push(space.combo(at));
            });
            assert_eq!(odometer, want, "axes {axes:?}");
            let by_ordinal: Vec<Combo> = (0..space.len()).map(|o| space.combo_at(o)).collect();
            assert_eq!(by_ordinal, want, "axes {axes:?}");
        }
    }
}
