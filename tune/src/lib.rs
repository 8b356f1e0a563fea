//! l1 Tier 2 tuning: Bayesian optimisation over an explicit list of legal kernel combos.
//!
//! - [`space`]: categorical dimensions and the legal combos (the only points ever proposed).
//! - [`gp`]: the Gaussian-process surrogate: an additive (main effects) plus ARD Hamming
//!   (interactions) kernel.
//! - [`acquisition`]: expected improvement, the knowledge gradient's expected maximum of
//!   correlated normals, and the probability of feasibility.
//! - [`session`]: the resumable session — state (`bayesian_state`), `propose`, `observe`,
//!   best-so-far with its interval, re-measure candidates, constraint outlook.
//! - [`budget`]: wall-clock, GPU-hour and trial limits.
//! - [`narrower`]: the ConfigNarrower (drop dimensions whose Tier-1 effect is below the noise
//!   floor).
//! - [`landscape`]: recorded or simulated landscapes with a noise model, and the benchmark
//!   drivers (the optimiser, random search) scored against the exhaustive optimum.
//!
//! Pure: no I/O, no clocks; the caller measures and persists.

pub mod acquisition;
pub mod budget;
pub mod error;
pub mod gp;
pub mod landscape;
mod linalg;
pub mod narrower;
pub mod session;
pub mod space;

pub use budget::{Budget, Limit, Remaining, Usage};
pub use error::TuneError;
pub use gp::Ard;
pub use narrower::{DimensionEffects, Narrowed, ValueEffect, narrow};
pub use session::{
    Acquisition, Constraint, Direction, Objective, Observation, Phase, Proposal, ProposalKind,
    Recommendation, Remeasure, Sense, Session, TuneConfig, TuneState,
};
pub use space::{Dimension, Space};
