//! The search space: categorical dimensions (names and values) and the explicit list of legal
//! combos, each a vector of value indices. The optimiser only ever proposes entries of that list,
//! so legality predicates and pruning rules (applied by the caller's expansion) hold by
//! construction.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::TuneError;

/// One categorical dimension.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dimension {
    pub name: String,
    pub values: Vec<String>,
}

impl Dimension {
    pub fn new(
        name: impl Into<String>,
        values: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            name: name.into(),
            values: values.into_iter().map(Into::into).collect(),
        }
    }
}

/// Dimensions plus the legal combos (value indices, one per dimension), in a stable order: a
/// combo is named by its index in that list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Space {
    dims: Vec<Dimension>,
    combos: Vec<Vec<u16>>,
}

/// At most this many dimensions (the kernel's per-combo mismatch mask is a `u64`).
pub const MAX_DIMS: usize = 64;

impl Space {
    /// Validate and build a space. Duplicate combos are an error (the caller's expansion should
    /// never produce them, and they would make "evaluated" ambiguous).
    pub fn new(dims: Vec<Dimension>, combos: Vec<Vec<usize>>) -> Result<Self, TuneError> {
        if dims.is_empty() {
            return Err(TuneError::InvalidSpace("no dimensions".into()));
        }
        if dims.len() > MAX_DIMS {
            return Err(TuneError::InvalidSpace(format!(
                "{} dimensions; at most {MAX_DIMS} are supported",
                dims.len()
            )));
        }
        let mut names = BTreeSet::new();
        for d in &dims {
            if d.name.is_empty() {
                return Err(TuneError::InvalidSpace(
                    "a dimension has an empty name".into(),
                ));
            }
            if !names.insert(d.name.as_str()) {
                return Err(TuneError::InvalidSpace(format!(
                    "dimension `{}` appears twice",
                    d.name
                )));
            }
            if d.values.is_empty() {
                return Err(TuneError::InvalidSpace(format!(
                    "dimension `{}` has no values",
                    d.name
                )));
            }
            if d.values.len() > usize::from(u16::MAX) {
                return Err(TuneError::InvalidSpace(format!(
                    "dimension `{}` has too many values",
                    d.name
                )));
            }
            let distinct: BTreeSet<&String> = d.values.iter().collect();
            if distinct.len() != d.values.len() {
                return Err(TuneError::InvalidSpace(format!(
                    "dimension `{}` lists a value twice",
                    d.name
                )));
            }
        }
        if combos.is_empty() {
            return Err(TuneError::EmptySpace);
        }
        let mut seen = BTreeSet::new();
        let mut out = Vec::with_capacity(combos.len());
        for (i, c) in combos.into_iter().enumerate() {
            if c.len() != dims.len() {
                return Err(TuneError::InvalidSpace(format!(
                    "combo {i} has {} values for {} dimensions",
                    c.len(),
                    dims.len()
                )));
            }
            let mut v = Vec::with_capacity(c.len());
            for (d, &x) in dims.iter().zip(&c) {
                if x >= d.values.len() {
                    return Err(TuneError::InvalidSpace(format!(
                        "combo {i}: value index {x} out of range for dimension `{}` ({} values)",
                        d.name,
                        d.values.len()
                    )));
                }
                v.push(x as u16);
            }
            if !seen.insert(v.clone()) {
                return Err(TuneError::InvalidSpace(format!(
                    "combo {i} is listed twice"
                )));
            }
            out.push(v);
        }
        Ok(Self { dims, combos: out })
    }

    /// Build from combos given by value names (`[(dimension, value)]` in dimension order).
    pub fn from_named(dims: Vec<Dimension>, combos: &[Vec<String>]) -> Result<Self, TuneError> {
        let idx = combos
            .iter()
            .map(|c| {
                if c.len() != dims.len() {
                    return Err(TuneError::InvalidSpace(format!(
                        "combo `{}` has {} values for {} dimensions",
                        c.join(","),
                        c.len(),
                        dims.len()
                    )));
                }
                dims.iter()
                    .zip(c)
                    .map(|(d, v)| {
                        d.values.iter().position(|x| x == v).ok_or_else(|| {
                            TuneError::InvalidSpace(format!(
                                "value `{v}` is not a value of dimension `{}`",
                                d.name
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(dims, idx)
    }

    pub fn dims(&self) -> &[Dimension] {
        &self.dims
    }

    /// Number of legal combos.
    pub fn len(&self) -> usize {
        self.combos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.combos.is_empty()
    }

    /// Value indices of combo `index`.
    pub fn combo(&self, index: usize) -> Result<&[u16], TuneError> {
        self.combos
            .get(index)
            .map(Vec::as_slice)
            .ok_or(TuneError::UnknownCombo {
                index,
                len: self.combos.len(),
            })
    }

    pub(crate) fn combos(&self) -> &[Vec<u16>] {
        &self.combos
    }

    /// The index of the combo with these value indices, if legal.
    pub fn index_of(&self, values: &[usize]) -> Option<usize> {
        self.combos.iter().position(|c| {
            c.len() == values.len() && c.iter().zip(values).all(|(&a, &b)| usize::from(a) == b)
        })
    }

    /// The index of the combo with these value names (dimension order), if legal.
    pub fn index_of_named(&self, values: &[&str]) -> Option<usize> {
        if values.len() != self.dims.len() {
            return None;
        }
        let idx: Option<Vec<usize>> = self
            .dims
            .iter()
            .zip(values)
            .map(|(d, v)| d.values.iter().position(|x| x == v))
            .collect();
        self.index_of(&idx?)
    }

    /// `(dimension, value)` pairs of combo `index`.
    pub fn named(&self, index: usize) -> Result<Vec<(&str, &str)>, TuneError> {
        let c = self.combo(index)?;
        Ok(self
            .dims
            .iter()
            .zip(c)
            .map(|(d, &v)| (d.name.as_str(), d.values[usize::from(v)].as_str()))
            .collect())
    }

    /// `dim=value,dim=value` for messages and logs.
    pub fn label(&self, index: usize) -> String {
        match self.named(index) {
            Ok(v) => v
                .iter()
                .map(|(d, x)| format!("{d}={x}"))
                .collect::<Vec<_>>()
                .join(","),
            Err(_) => format!("#{index}"),
        }
    }

    /// A stable fingerprint of dimensions, values and the legal list (FNV-1a 64, hex). A saved
    /// state is only valid for the space with the same fingerprint.
    pub fn fingerprint(&self) -> String {
        let mut h = Fnv::new();
        for d in &self.dims {
            h.bytes(d.name.as_bytes());
            h.bytes(&[0xff]);
            for v in &d.values {
                h.bytes(v.as_bytes());
                h.bytes(&[0xfe]);
            }
            h.bytes(&[0xfd]);
        }
        for c in &self.combos {
            for &v in c {
                h.bytes(&v.to_le_bytes());
            }
            h.bytes(&[0xfc]);
        }
        format!("{:016x}", h.0)
    }

    /// Bit mask of the dimensions where combos `a` and `b` differ.
    pub(crate) fn mismatch(a: &[u16], b: &[u16]) -> u64 {
        let mut m = 0u64;
        for (d, (x, y)) in a.iter().zip(b).enumerate() {
            if x != y {
                m |= 1 << d;
            }
        }
        m
    }
}

struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims() -> Vec<Dimension> {
        vec![
            Dimension::new("a", ["x", "y"]),
            Dimension::new("b", ["p", "q", "r"]),
        ]
    }

    #[test]
    fn builds_and_names_combos() {
        let s = Space::new(dims(), vec![vec![0, 0], vec![1, 2]]).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.label(1), "a=y,b=r");
        assert_eq!(s.index_of(&[1, 2]), Some(1));
        assert_eq!(s.index_of_named(&["x", "p"]), Some(0));
        assert_eq!(s.index_of_named(&["x", "q"]), None);
        assert!(matches!(
            s.combo(5),
            Err(TuneError::UnknownCombo { index: 5, len: 2 })
        ));
    }

    #[test]
    fn rejects_bad_spaces() {
        assert_eq!(Space::new(dims(), vec![]), Err(TuneError::EmptySpace));
        assert!(Space::new(vec![], vec![vec![]]).is_err());
        assert!(Space::new(dims(), vec![vec![0]]).is_err());
        assert!(Space::new(dims(), vec![vec![0, 3]]).is_err());
        assert!(Space::new(dims(), vec![vec![0, 1], vec![0, 1]]).is_err());
        let dup = vec![Dimension::new("a", ["x"]), Dimension::new("a", ["y"])];
        assert!(Space::new(dup, vec![vec![0, 0]]).is_err());
        assert!(Space::new(vec![Dimension::new("a", ["x", "x"])], vec![vec![0]]).is_err());
        assert!(
            Space::new(
                vec![Dimension::new("a", Vec::<String>::new())],
                vec![vec![0]]
            )
            .is_err()
        );
    }

    #[test]
    fn fingerprint_tracks_content() {
        let a = Space::new(dims(), vec![vec![0, 0], vec![1, 2]]).unwrap();
        let b = Space::new(dims(), vec![vec![0, 0], vec![1, 1]]).unwrap();
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
        let named = Space::from_named(
            dims(),
            &[vec!["x".into(), "p".into()], vec!["y".into(), "r".into()]],
        )
        .unwrap();
        assert_eq!(named, a);
    }

    #[test]
    fn mismatch_mask() {
        assert_eq!(Space::mismatch(&[0, 1, 2], &[0, 2, 2]), 0b010);
        assert_eq!(Space::mismatch(&[1, 1], &[0, 0]), 0b11);
    }
}
