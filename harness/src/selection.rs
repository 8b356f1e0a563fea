//! `all` or an explicit list of values: how specs and the catalog select dimension values.
//!
//! Written by hand rather than with `serde(untagged)`, which would replace the YAML parser's
//! precise errors with "data did not match any variant".

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Every value of a dimension, or the listed ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    All,
    Values(Vec<String>),
}

impl Serialize for Selection {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Selection::All => s.serialize_str("all"),
            Selection::Values(v) => v.serialize(s),
        }
    }
}

struct SelectionVisitor;

impl<'de> Visitor<'de> for SelectionVisitor {
    type Value = Selection;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`all` or a list of values")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Selection, E> {
        if v == "all" {
            Ok(Selection::All)
        } else {
            // A single scalar is a one-value list: `cuda_graph: off` pins it.
            Ok(Selection::Values(vec![v.to_string()]))
        }
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Selection, E> {
        Ok(Selection::Values(vec![v.to_string()]))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Selection, E> {
        Ok(Selection::Values(vec![v.to_string()]))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Selection, E> {
        Ok(Selection::Values(vec![v.to_string()]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Selection, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<Scalar>()? {
            out.push(v.0);
        }
        if out.is_empty() {
            return Err(de::Error::invalid_length(0, &"at least one value"));
        }
        Ok(Selection::Values(out))
    }
}

impl<'de> Deserialize<'de> for Selection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SelectionVisitor)
    }
}

/// A YAML scalar taken as text (`16`, `true` and `off` all become strings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scalar(pub String);

struct ScalarVisitor;

impl Visitor<'_> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

impl Serialize for Scalar {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}
