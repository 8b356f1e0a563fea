//! The interleaved A/B comparison of `l1 ab`: main's build (the base) and a pull request's (the
//! head) measured alternately on one runner, round after round, and each trial's paired
//! head/base ratios judged with the `regression` gate's test (see `docs/src/ab.md`).
//!
//! A round runs every selected trial once with each side's `kernels` binary and repository root
//! (its catalogs and specs), one `--exact` process per trial as nextest runs them, each side in
//! a scratch results directory of its own with the cache off. Rounds alternate the order (base
//! first, then head first: ABBA), so a drift of the runner over the comparison cancels; both
//! sides of a round get the same measurement seed (`L1_MEASURE_SEED`), so they replay the same
//! request sequence. [`exec`] runs and reads the rounds, [`judge`] forms the verdict, [`render`]
//! writes it as text, Markdown or JSON.

mod exec;
mod judge;
mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::spec::RegressionForm;

pub use judge::{Outcome, PairedTest, judge, paired_test};
pub use render::{markdown, text};

/// The metrics compared by default: the `regression` gate's.
pub use crate::gates::regression::DEFAULT_METRICS;

/// Why an A/B comparison could not be started or finished.
#[derive(Debug, thiserror::Error)]
pub enum AbError {
    #[error("the {side} binary `{}` {why}", .path.display())]
    Binary {
        side: SideName,
        path: PathBuf,
        why: String,
    },
    #[error(
        "the {side} root `{}` is not an l1 repository: it has no catalogs/kernels.yaml",
        .path.display()
    )]
    Root { side: SideName, path: PathBuf },
    #[error(
        "no trials selected: the selection names none (give trial names with --trial or --trials FILE)"
    )]
    EmptySelection,
    #[error("--rounds {0}: at least 2 rounds are needed (the rounds are the unit of the test)")]
    TooFewRounds(usize),
    #[error("--epsilon {0}: expected a number in [0, 1)")]
    Epsilon(f64),
    #[error("--alpha {0}: expected a number in (0, 0.5) (the family-wise two-sided level)")]
    Alpha(f64),
    #[error("unknown metric `{0}`; expected one of: {1}")]
    Metric(String, String),
    #[error("could not read the trial selection {}: {source}", .path.display())]
    Selection {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the trial selection {} is JSON but not `l1 affected --json` output (no `trials` list)", .path.display())]
    SelectionJson { path: PathBuf },
    #[error("listing the {side} trials with `{}` failed: {why}", .bin.display())]
    List {
        side: SideName,
        bin: PathBuf,
        why: String,
    },
    #[error("could not start the {side} binary `{}`: {source}", .bin.display())]
    Spawn {
        side: SideName,
        bin: PathBuf,
        source: std::io::Error,
    },
    #[error("could not create the work directory {}: {source}", .path.display())]
    WorkDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Which side of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SideName {
    /// Main (the merge base): the reference.
    Base,
    /// The pull request.
    Head,
}

impl std::fmt::Display for SideName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SideName::Base => "base",
            SideName::Head => "head",
        })
    }
}

/// One side: a built `kernels` test binary and the repository root it reads catalogs and specs
/// from (`L1_ROOT`).
#[derive(Clone, Debug)]
pub struct Side {
    pub bin: PathBuf,
    pub root: PathBuf,
}

/// How the rounds' measurement seeds are given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pairing {
    /// Both sides of a round get the same seed (the same request sequence): the paired design.
    /// On the sim engine, whose noise is drawn from the seed, this removes the noise from the
    /// ratio altogether.
    #[default]
    Paired,
    /// Each side its own seed: only the runner and the rounds pair the sides.
    Independent,
}

/// `ab-<unix seconds>-<process id>`: a run id prefix no other invocation on this machine has.
fn unique_run_prefix() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("ab-{secs}-{}", std::process::id())
}

/// What to compare and how.
#[derive(Clone, Debug)]
pub struct Options {
    pub base: Side,
    pub head: Side,
    /// Trial names (combo and baseline trials; a `::gate` trial stands for its target's combo
    /// and baseline trials).
    pub trials: Vec<String>,
    pub rounds: usize,
    pub metrics: Vec<String>,
    pub epsilon: f64,
    pub form: RegressionForm,
    /// The family-wise two-sided level; every one-sided claim is at `alpha / 2`.
    pub alpha: f64,
    /// The first round's seed; round `r` derives its own from it.
    pub seed: u64,
    pub pairing: Pairing,
    /// Where each round's results go (`<work>/r<round>-<side>/l1/runs/…`).
    pub work_dir: PathBuf,
    /// `L1_STORE` for the rounds; `None`: each round's own default store in its scratch
    /// directory (never the user's).
    pub store: Option<String>,
    /// What every round's run id starts with (`<prefix>-r<round>-<side>`): unique per
    /// invocation, so two comparisons into one `--store` never read each other's measurements
    /// as their own run's.
    pub run_prefix: String,
}

impl Options {
    /// Options with the defaults of `l1 ab`.
    pub fn new(base: Side, head: Side, trials: Vec<String>, work_dir: PathBuf) -> Self {
        Self {
            base,
            head,
            trials,
            rounds: 6,
            metrics: DEFAULT_METRICS.iter().map(|m| m.to_string()).collect(),
            epsilon: 0.05,
            form: RegressionForm::NonInferiority,
            alpha: 0.05,
            seed: 1,
            pairing: Pairing::Paired,
            work_dir,
            store: None,
            run_prefix: unique_run_prefix(),
        }
    }

    fn side(&self, s: SideName) -> &Side {
        match s {
            SideName::Base => &self.base,
            SideName::Head => &self.head,
        }
    }

    /// Check the options before anything runs.
    pub fn check(&self) -> Result<(), AbError> {
        for s in [SideName::Base, SideName::Head] {
            let side = self.side(s);
            exec::check_binary(s, &side.bin)?;
            if !side.root.join("catalogs/kernels.yaml").is_file() {
                return Err(AbError::Root {
                    side: s,
                    path: side.root.clone(),
                });
            }
        }
        if self.trials.is_empty() {
            return Err(AbError::EmptySelection);
        }
        if self.rounds < 2 {
            return Err(AbError::TooFewRounds(self.rounds));
        }
        if !(0.0..1.0).contains(&self.epsilon) {
            return Err(AbError::Epsilon(self.epsilon));
        }
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            return Err(AbError::Alpha(self.alpha));
        }
        for m in &self.metrics {
            if l1_engines::metrics::metric(m).is_none() {
                return Err(AbError::Metric(
                    m.clone(),
                    l1_engines::metrics::metric_names().join(", "),
                ));
            }
        }
        Ok(())
    }

    /// The measurement seed of `side` in round `round`.
    pub fn seed_of(&self, round: usize, side: SideName) -> u64 {
        let r = mix(self.seed, round as u64 + 1);
        match (self.pairing, side) {
            (Pairing::Independent, SideName::Head) => mix(r, 0x4EAD),
            _ => r,
        }
    }
}

/// SplitMix64's finaliser of `a` and `b`: well-spread seeds from small numbers.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Trial names read from a selection file: one per line (blank lines and `#` comments
/// skipped), or `l1 affected --json` output (its `run_trials`, else `trials`, plus its
/// `removed_trials`). `-` reads stdin.
pub fn read_selection(path: &Path) -> Result<Vec<String>, AbError> {
    let err = |source| AbError::Selection {
        path: path.to_path_buf(),
        source,
    };
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).map_err(err)?
    } else {
        std::fs::read_to_string(path).map_err(err)?
    };
    if text.trim_start().starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        let list = |k: &str| {
            v.get(k).and_then(|l| l.as_array()).map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str().map(str::to_string))
                    .collect::<Vec<_>>()
            })
        };
        let mut names = list("run_trials")
            .or_else(|| list("trials"))
            .ok_or_else(|| AbError::SelectionJson {
                path: path.to_path_buf(),
            })?;
        names.extend(list("removed_trials").unwrap_or_default());
        return Ok(names);
    }
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// The selection sorted against both sides' trial lists.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Resolved {
    /// On both sides: measured and compared.
    pub compared: Vec<String>,
    /// Only the head has them: new in the pull request, not compared.
    pub new_in_head: Vec<String>,
    /// Only the base has them: removed by the pull request.
    pub removed: Vec<String>,
    /// On neither side (a typo, or a selection from another revision).
    pub unknown: Vec<String>,
    /// Selected but not comparable, with why (a tune trial, a spec error's trial).
    pub skipped: Vec<(String, String)>,
    /// Each side's spec errors (`invalid::…` trials of its listing).
    pub invalid: BTreeMap<SideName, Vec<String>>,
}

/// Sort `selected` against the trial lists of the base and the head. A `::gate` trial stands
/// for its target's combo and baseline trials (those on either side).
pub fn resolve(selected: &[String], base: &[String], head: &[String]) -> Resolved {
    let b: BTreeSet<&str> = base.iter().map(String::as_str).collect();
    let h: BTreeSet<&str> = head.iter().map(String::as_str).collect();
    let mut out = Resolved::default();
    for (side, list) in [(SideName::Base, base), (SideName::Head, head)] {
        let bad: Vec<String> = (list.iter())
            .filter(|n| n.starts_with("invalid::"))
            .cloned()
            .collect();
        if !bad.is_empty() {
            out.invalid.insert(side, bad);
        }
    }
    let mut names = BTreeSet::new();
    let mut skipped = BTreeMap::new();
    for name in selected {
        if let Some(prefix) = name.strip_suffix("::gate") {
            let prefix = format!("{prefix}::");
            let members: Vec<&str> = (b.iter().chain(h.iter()))
                .copied()
                .filter(|n| n.starts_with(&prefix) && !n.ends_with("::gate"))
                .collect();
            if members.is_empty() {
                out.unknown.push(name.clone());
            }
            names.extend(members.into_iter().map(str::to_string));
        } else if name.ends_with("::tune") {
            skipped.insert(
                name.clone(),
                "a tune trial searches rather than measures one combo; compare the combos it found instead".to_string(),
            );
        } else if name.starts_with("invalid::") {
            skipped.insert(name.clone(), "a spec error, not a measurement".to_string());
        } else {
            names.insert(name.clone());
        }
    }
    for name in names {
        match (b.contains(name.as_str()), h.contains(name.as_str())) {
            (true, true) => out.compared.push(name),
            (false, true) => out.new_in_head.push(name),
            (true, false) => out.removed.push(name),
            (false, false) => out.unknown.push(name),
        }
    }
    out.unknown.sort();
    out.unknown.dedup();
    out.skipped = skipped.into_iter().collect();
    out
}

/// One side's result for one trial in one round.
#[derive(Clone, Debug)]
pub enum Measured {
    /// The trial's measurement: each metric's trimmed mean over its reps.
    Means(BTreeMap<String, f64>),
    /// The trial ran and failed (a crash, a launch failure, an error rate over the threshold).
    Failed(String),
    /// No record of the trial: it was not run (ignored on this runner) or its process died
    /// before recording it.
    NotRun(String),
}

/// Every round's measurements: `rounds[r][side][trial]`, and each round's wall time per side.
#[derive(Clone, Debug, Default)]
pub struct Rounds {
    pub measured: Vec<BTreeMap<SideName, BTreeMap<String, Measured>>>,
    pub seconds: Vec<BTreeMap<SideName, f64>>,
    /// Each round's seed per side.
    pub seeds: Vec<BTreeMap<SideName, u64>>,
    /// Per trial, the measurement it read in each round and side (`<round>-<side>:<key>`):
    /// trials with equal lists share their measurements (a baseline and its combo twin).
    pub keys: BTreeMap<String, Vec<String>>,
}

/// Run the comparison: list both sides, resolve the selection, measure the rounds and judge
/// them. `log` gets one line per step (progress for a human; `l1 ab` prints it on stderr).
pub fn run(opts: &Options, log: &mut dyn FnMut(&str)) -> Result<Outcome, AbError> {
    opts.check()?;
    std::fs::create_dir_all(&opts.work_dir).map_err(|source| AbError::WorkDir {
        path: opts.work_dir.clone(),
        source,
    })?;
    let base = exec::list(opts, SideName::Base)?;
    let head = exec::list(opts, SideName::Head)?;
    let resolved = resolve(&opts.trials, &base, &head);
    log(&format!(
        "l1 ab: {} trials to compare ({} new in the head, {} removed, {} unknown), {} rounds",
        resolved.compared.len(),
        resolved.new_in_head.len(),
        resolved.removed.len(),
        resolved.unknown.len(),
        opts.rounds
    ));
    let rounds = if resolved.compared.is_empty() {
        Rounds::default()
    } else {
        exec::measure(opts, &resolved.compared, log)?
    };
    Ok(judge(opts, resolved, &rounds))
}

#[cfg(test)]
mod tests;
