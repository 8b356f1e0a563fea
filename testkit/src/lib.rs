//! Test support shared by the l1 crates' tests (a dev-dependency only; it depends on no l1
//! crate, so every crate, `l1-engines` included, can use it):
//!
//! - [`scratch`]: unique scratch directories, removed when a passing test ends.
//! - [`process`]: executable scripts (fake engine servers), free loopback ports, the cargo
//!   profile of the running test, clearing the outer test runner's environment, and
//!   [`helper_bin`], which builds and finds a workspace binary that is not part of the package
//!   under test (the test-only `l1-test-child`).
//! - [`skip`]: a test whose tool or engine is missing prints why and skips, except under
//!   `L1_REQUIRE_ENGINES=1` (CI), where it fails.
//! - [`child`]: the child-run protocol between a test and `l1-test-child`: one
//!   `TRIAL\t<name>\t<pass|fail>\t<message>` line per trial.

#![cfg_attr(test, allow(clippy::unwrap_used))] // test code: a panic is the failure report.

pub mod child;
pub mod process;
pub mod scratch;
pub mod skip;

pub use child::{Trials, parse_trials, trial_line};
pub use process::{cargo_profile, clear_runner_env, free_port, helper_bin, write_executable};
pub use scratch::{RemoveOnDrop, fresh_dir};
pub use skip::{require_engines, skip};
