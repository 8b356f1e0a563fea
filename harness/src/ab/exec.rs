//! Running the sides of an A/B comparison: each side's trial list (`--list`), and the rounds,
//! one `--exact` process per trial in a scratch results directory per round and side, read
//! back from the run directories the processes write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::{AbError, Measured, Options, Rounds, SideName};
use crate::record::RunDir;

/// The variables of the user's environment a round must not inherit: its run, results, store,
/// label, spec directory and runner settings are the comparison's own.
const CLEARED: &[&str] = &[
    "L1_SPECS",
    "L1_TARGET_DIR",
    "L1_RUN_ID",
    "L1_RUN_LABEL",
    "L1_STORE",
    "L1_CACHE",
    "L1_MEASURE_SEED",
    "L1_METRICS_TEXTFILE",
    "L1_PUSHGATEWAY",
    "L1_FULL_SCAN_FORBIDDEN",
    "L1_GATES",
    "NEXTEST",
    "NEXTEST_RUN_ID",
    "NEXTEST_TEST_GROUP_SLOT",
];

/// The binary must be an executable file.
pub(super) fn check_binary(side: SideName, bin: &Path) -> Result<(), AbError> {
    let why = match std::fs::metadata(bin) {
        Err(e) => Some(format!("cannot be read: {e}")),
        Ok(m) if !m.is_file() => Some("is not a file".to_string()),
        Ok(m) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                (m.permissions().mode() & 0o111 == 0).then(|| "is not executable".to_string())
            }
            #[cfg(not(unix))]
            {
                let _ = m;
                None
            }
        }
    };
    match why {
        Some(why) => Err(AbError::Binary {
            side,
            path: bin.to_path_buf(),
            why: format!(
                "{why} (build it with `cargo test --release --no-run -p l1-harness --test kernels` at that revision)"
            ),
        }),
        None => Ok(()),
    }
}

/// A command of `side`'s binary with the round environment: its root, results in `target`,
/// run `run_id`, the cache off, `seed` as every spec's measurement seed.
fn command(opts: &Options, side: SideName, target: &Path, run_id: &str) -> Command {
    let s = opts.side(side);
    let mut cmd = Command::new(&s.bin);
    for k in CLEARED {
        cmd.env_remove(k);
    }
    cmd.env("L1_ROOT", &s.root)
        .env("L1_TARGET_DIR", target)
        .env("L1_RUN_ID", run_id)
        .env("L1_CACHE", "off")
        .env("L1_PROGRESS", "0")
        .current_dir(&s.root)
        .stdin(Stdio::null());
    if let Some(store) = &opts.store {
        cmd.env("L1_STORE", store);
    }
    cmd
}

/// `side`'s trial names (`--list`), spec errors (`invalid::…`) included.
pub(super) fn list(opts: &Options, side: SideName) -> Result<Vec<String>, AbError> {
    let target = opts.work_dir.join(format!("list-{side}"));
    let bin = opts.side(side).bin.clone();
    let out = command(
        opts,
        side,
        &target,
        &format!("{}-list-{side}", opts.run_prefix),
    )
    .arg("--list")
    .output()
    .map_err(|source| AbError::Spawn {
        side,
        bin: bin.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(AbError::List {
            side,
            bin,
            why: format!("{}: {}", out.status, tail(&out.stderr)),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(str::to_string)
        .collect())
}

/// The last lines of a child's output, for a message.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(6)..].join("\n")
}

/// Measure `trials` for every round, in ABBA order: round `r` runs the base first when `r` is
/// even, the head first when it is odd. A trial that failed or did not run on either side is
/// not run again in later rounds (its outcome is already known).
pub(super) fn measure(
    opts: &Options,
    trials: &[String],
    log: &mut dyn FnMut(&str),
) -> Result<Rounds, AbError> {
    let mut rounds = Rounds::default();
    let mut dropped: BTreeMap<String, ()> = BTreeMap::new();
    for r in 0..opts.rounds {
        let order = if r % 2 == 0 {
            [SideName::Base, SideName::Head]
        } else {
            [SideName::Head, SideName::Base]
        };
        let mut measured = BTreeMap::new();
        let mut seconds = BTreeMap::new();
        let mut seeds = BTreeMap::new();
        let live: Vec<&String> = trials
            .iter()
            .filter(|t| !dropped.contains_key(*t))
            .collect();
        for side in order {
            let seed = opts.seed_of(r, side);
            let t0 = Instant::now();
            let (got, keys) = round_side(opts, side, r, seed, &live)?;
            seconds.insert(side, t0.elapsed().as_secs_f64());
            for (t, key) in keys {
                rounds
                    .keys
                    .entry(t)
                    .or_default()
                    .push(format!("{r}-{side}:{key}"));
            }
            seeds.insert(side, seed);
            measured.insert(side, got);
        }
        for t in &live {
            let bad = measured
                .values()
                .any(|m| !matches!(m.get(*t), Some(Measured::Means(_))));
            if bad {
                dropped.insert((*t).clone(), ());
            }
        }
        log(&format!(
            "l1 ab: round {}/{} ({} first): base {:.1} s, head {:.1} s",
            r + 1,
            opts.rounds,
            order[0],
            seconds[&SideName::Base],
            seconds[&SideName::Head]
        ));
        rounds.measured.push(measured);
        rounds.seconds.push(seconds);
        rounds.seeds.push(seeds);
    }
    Ok(rounds)
}

/// What one side measured in one round: each trial's result, and the measurement key each
/// trial read.
type SideRound = (BTreeMap<String, Measured>, BTreeMap<String, String>);

/// One side of one round: each trial in its own `--exact` process (as nextest runs them), into
/// the run `<prefix>-r<round>-<side>` under `<work>/r<round>-<side>`, then read back.
fn round_side(
    opts: &Options,
    side: SideName,
    round: usize,
    seed: u64,
    trials: &[&String],
) -> Result<SideRound, AbError> {
    let target: PathBuf = opts.work_dir.join(format!("r{round}-{side}"));
    let run_id = format!("{}-r{round}-{side}", opts.run_prefix);
    let mut stderr_of = BTreeMap::new();
    for t in trials {
        let out = command(opts, side, &target, &run_id)
            .env("L1_MEASURE_SEED", seed.to_string())
            .args(["--exact", t.as_str(), "--test-threads", "1"])
            .output()
            .map_err(|source| AbError::Spawn {
                side,
                bin: opts.side(side).bin.clone(),
                source,
            })?;
        if !out.status.success() {
            let mut both = out.stdout.clone();
            both.extend_from_slice(&out.stderr);
            stderr_of.insert((*t).clone(), format!("{}: {}", out.status, tail(&both)));
        }
    }
    let run = RunDir::new(&target, &run_id);
    let (records, _unreadable) = run.trials();
    let by_name: BTreeMap<&str, _> = records.iter().map(|r| (r.name.as_str(), r)).collect();
    let mut out = BTreeMap::new();
    let mut keys = BTreeMap::new();
    for t in trials {
        if let Some(key) = by_name.get(t.as_str()).and_then(|r| r.measurement.clone()) {
            keys.insert((*t).clone(), key);
        }
        let m = match by_name.get(t.as_str()) {
            None => Measured::NotRun(match stderr_of.get(*t) {
                Some(why) => format!("its process recorded nothing ({why})"),
                None => "not run: ignored on this runner (e.g. its hardware is not here, or its engine is not installed)".to_string(),
            }),
            Some(rec) if !rec.passed => Measured::Failed(rec.message.clone()),
            Some(rec) => match &rec.measurement {
                None => Measured::Failed(format!("`{t}` has no measurement (not a combo or baseline trial)")),
                Some(key) => read_means(&run, key, rec.used.as_ref().map(|u| u.trim)),
            },
        };
        out.insert((*t).clone(), m);
    }
    Ok((out, keys))
}

/// Each metric's trimmed mean over the reps of the measurement `key`, at the trial's trim.
fn read_means(run: &RunDir, key: &str, trim: Option<f64>) -> Measured {
    let rec = match run.read_measurement(key) {
        Ok(Some(r)) => r,
        Ok(None) => return Measured::Failed(format!("measurement record {key} missing")),
        Err(e) => return Measured::Failed(e.to_string()),
    };
    if let Some(e) = rec.error {
        return Measured::Failed(e);
    }
    let trim = trim.unwrap_or_else(|| crate::spec::Measure::default().trim);
    let mut names: Vec<&String> = rec.reps.iter().flat_map(|r| r.keys()).collect();
    names.sort();
    names.dedup();
    let mut means = BTreeMap::new();
    for name in names {
        let values: Vec<f64> = rec
            .reps
            .iter()
            .filter_map(|r| r.get(name).copied())
            .collect();
        if values.len() == rec.reps.len()
            && let Ok(m) = crate::stats::trimmed_mean(&values, trim)
        {
            means.insert(name.clone(), m);
        }
    }
    Measured::Means(means)
}
