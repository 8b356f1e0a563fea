//! Validation errors of the profiles (hardware, models, workloads, probe sets): which field,
//! and what it should have been.

/// A profile field whose value makes no sense: the field's path (`arrival.poisson.rate`,
/// `probes.top_k`) and what was expected instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {expected}")]
pub struct InvalidField {
    pub field: String,
    /// What the value should have been, and what it was.
    pub expected: String,
}

/// An [`InvalidField`] error.
pub fn invalid<T>(
    field: impl Into<String>,
    expected: impl Into<String>,
) -> Result<T, InvalidField> {
    Err(InvalidField {
        field: field.into(),
        expected: expected.into(),
    })
}
