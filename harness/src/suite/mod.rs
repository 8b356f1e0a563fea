//! The generated test suite: specs → trials for libtest-mimic (and so for `cargo test` and
//! `cargo nextest`), and what each trial does when it runs.
//!
//! Trial names: `<class>::<spec>::<engine>@<version>::<model>::<hardware>::<workload>::<leaf>`
//! where `class` is `sim` (simulated engine), `cpu` (a real engine on the CPU host) or `gpu` (a
//! real engine on a GPU), and `leaf` is a combo (`act=bf16,attn=flash_attn_v3,...`, dimensions by
//! short name in alphabetical order, `unset` dimensions left out, then knobs), `baseline` or `gate`.
//!
//! One module per job, in the order a trial meets them: `names` (the name grammar), `plan`
//! (specs → trials, filters, the `--exact` fast path), `trial` (one trial's run: cache,
//! measurement, record), `measure` (reps and launches through the engines crate's table),
//! `stop` (early stopping at planned looks), `shared` (a run's measurements across runners that
//! share a store: each taken once), `gate` (the gate trial and the stored regression) and
//! `session` (stored tune sessions planned again). Tuning drives trials through
//! [`crate::tuning::Measurer`], which `trial` implements; the settings are [`crate::settings`].

mod error;
mod gate;
mod measure;
mod names;
mod plan;
mod session;
mod shared;
mod stop;
mod trial;

/// Kept at its old path: benches, tests and the `l1` binary name `suite::Settings`.
pub use crate::settings::Settings;
pub use error::TrialError;
pub use names::{combo_slug, exact_of_trial, spec_of_trial};
pub use plan::{PlannedTrial, TargetPlan, plan, plan_in_run, plan_only, render_context};
pub use session::{plan_session, session_status};
