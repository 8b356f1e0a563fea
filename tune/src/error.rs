//! Typed errors of the tuner: bad spaces, bad observations, bad budgets, a state that does not
//! belong to its space, and numerical failures of the surrogate.

/// Everything the tuner can refuse or fail at.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TuneError {
    /// The space has no dimensions, an empty dimension, duplicate names or values, or a combo
    /// that does not fit the dimensions.
    #[error("invalid search space: {0}")]
    InvalidSpace(String),
    /// The space lists no legal combo.
    #[error("invalid search space: no legal combo")]
    EmptySpace,
    /// A combo index outside the legal list.
    #[error("combo index {index} is out of range (the space has {len} legal combos)")]
    UnknownCombo { index: usize, len: usize },
    /// A combo given by values that is not in the legal list.
    #[error("combo {0} is not a legal combo of this space")]
    IllegalCombo(String),
    /// An observed value that is not finite (or not positive under a log transform).
    #[error("failed to record observation of combo {index}: {reason}")]
    InvalidObservation { index: usize, reason: String },
    /// A configuration value outside its range.
    #[error("invalid tuner configuration: {0}")]
    InvalidConfig(String),
    /// A budget of zero, a negative or non-finite limit, or no limit at all.
    #[error("invalid budget: {0}")]
    InvalidBudget(String),
    /// The state was made for another space (different dimensions, values or legal combos).
    #[error(
        "the saved tune state belongs to another search space (fingerprint {saved}, this space {current}); the catalog or the narrowing changed"
    )]
    SpaceMismatch { saved: String, current: String },
    /// The state's format version is not one this build reads.
    #[error("the saved tune state has format version {found}; this build reads version {expected}")]
    StateVersion { found: u32, expected: u32 },
    /// Every legal combo has been evaluated (or failed): nothing left to propose.
    #[error("every legal combo has been evaluated; nothing left to propose")]
    SpaceExhausted,
    /// The session was cancelled (`l1 tune cancel`); it proposes nothing more.
    #[error("the tune session was cancelled")]
    Cancelled,
    /// The narrower got effects that do not match the space.
    #[error("failed to narrow the space: {0}")]
    Narrowing(String),
    /// (De)serialising the state failed.
    #[error("failed to (de)serialise the tune state: {0}")]
    Serde(String),
}
