//! The run's settings, read once from the environment: every `L1_*` variable the harness reads
//! is parsed here, once per process ([`env`]), and the code below takes the values from a
//! [`Settings`] (or, where no settings reach, from [`env`]) instead of reading the environment.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `L1_ROOT` | the repository root (`catalogs/`, `specs/`); also `l1 --root` | the crate's workspace |
//! | `L1_SPECS` | a spec file or directory; relative paths from the root unless they exist here | `<root>/specs` |
//! | `L1_TARGET_DIR` | where `l1/runs/<run-id>`, the default store and the metrics textfile go (cargo's build stays put) | `CARGO_TARGET_DIR`, else `<root>/target` |
//! | `L1_ENGINES_DIR` | installed engines and test models (read by `l1_engines::launch::engines_dir`, the fallback reader of code that runs without the harness) | `~/.cache/l1/engines` |
//! | `L1_REQUIRE_ENGINES` | `1`/`true`: a missing engine fails its trials (and engine-dependent tests) instead of skipping them | off |
//! | `L1_REQUIRE_HARDWARE` | `1`/`true`: a target whose GPU is not here fails instead of being ignored | off |
//! | `ENABLE_L1_KERNEL_TUNING` | `0`/`false`: the kill switch, no engine is launched | on |
//! | `L1_GATES` | comma-separated gate methods replacing every spec's gates (`manual` for a research run) | the specs' gates |
//! | `L1_CACHE` | `off`, `read`, `write` or `readwrite`: the measurement cache | `readwrite` |
//! | `L1_STORE` | the results store: a SQLite path or a `postgres://` URL | `<target>/l1/store.sqlite` |
//! | `L1_LOCK_TIMEOUT_S` | the measurement lock's lease in seconds: how long a runner that died holding a cache key's lock keeps the others waiting (`l1_store::lock`) | `60` |
//! | `L1_MEASURE_SEED` | a number replacing every spec's `measure.seed` (`l1 ab` gives each round its own seed, the same to both sides of a round) | the specs' seeds |
//! | `L1_RUN_LABEL` | the run's label in the store (`main`: the reference of `regression against: stored`) | none |
//! | `L1_RUN_ID` | the run id that ties processes into one run | `NEXTEST_RUN_ID`, else generated per process |
//! | `L1_PROGRESS` | `1`/`true` or `0`/`false`: the stderr progress line | on when stderr is a terminal outside nextest |
//! | `L1_DETECTED_HARDWARE` | comma-separated hardware profiles to treat as present (instead of `nvidia-smi`) | detected |
//! | `L1_FULL_SCAN_FORBIDDEN` | set: a test binary run without a filter refuses to plan every spec (tests of the `--exact` fast path) | unset |
//! | `L1_TUNE_TRIAL_DELAY_MS` | a pause after each tune trial (tests cancel a session mid-way) | none |
//! | `L1_PUSHGATEWAY` | a Prometheus Pushgateway URL that `l1 report` pushes the run's metrics to | none |
//! | `L1_METRICS_TEXTFILE` | where `l1 report` writes the metrics textfile (read by `l1_reports::prometheus`) | `<target>/l1/metrics/l1.prom` |
//! | `L1_METRICS_INSTANCE` | the `instance` label of pushed metrics (read by `l1_reports::prometheus`) | the host name |
//! | `L1_NIGHTLY`, any `L1_*` | seen by spec templates as `env.L1_…` (`render::RenderContext::env_from_process`) | — |
//!
//! Read elsewhere, because that code runs without the harness: `ORT_DYLIB_PATH` (ONNX Runtime's
//! library, `l1_engines::onnxruntime`), `L1_HANDOFF_US` (the load generator's hand-off budget,
//! `l1_loadgen::driver`), `L1_ORT_REPS` (an ONNX Runtime bench), `L1_UPDATE_SNAPSHOTS`,
//! `L1_NODE_MODULES` and `L1_CHROMIUM` (the reports crate's test checks, which also honour
//! `L1_REQUIRE_ENGINES` with the same rule as [`flag`]), `L1_FIXTURE_*` (the fixture server
//! binary), and the benches' and tests' own `L1_BENCH_*`, `L1_TUNE_BENCH_*`, `L1_*_CHILD`
//! variables. From nextest: `NEXTEST` (progress and listing), `NEXTEST_RUN_ID` (the run id),
//! `NEXTEST_TEST_GROUP_SLOT` (the GPU a trial runs on, `device.rs`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::diag::Diagnostic;
use crate::spec::GateMethod;

/// An environment variable whose value is not one of its choices.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{var}=`{value}` is not {what}; expected one of: {expected}")]
pub struct BadSetting {
    /// The variable, e.g. `L1_CACHE`.
    pub var: &'static str,
    /// Its value, trimmed.
    pub value: String,
    /// What the value should have been, e.g. `a cache mode`.
    pub what: &'static str,
    /// The accepted values, comma-separated.
    pub expected: &'static str,
}

impl From<BadSetting> for String {
    fn from(e: BadSetting) -> Self {
        e.to_string()
    }
}

/// `L1_CACHE`: whether measurements are looked up in, and offered to, the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheMode {
    Off,
    Read,
    Write,
    ReadWrite,
}

impl CacheMode {
    pub const CHOICES: &'static str = "off, read, write, readwrite";

    pub fn parse(text: &str) -> Result<Self, BadSetting> {
        Ok(match text.trim() {
            "off" => CacheMode::Off,
            "read" => CacheMode::Read,
            "write" => CacheMode::Write,
            "readwrite" | "" => CacheMode::ReadWrite,
            other => {
                return Err(BadSetting {
                    var: "L1_CACHE",
                    value: other.to_string(),
                    what: "a cache mode",
                    expected: Self::CHOICES,
                });
            }
        })
    }

    /// From `L1_CACHE` (default `readwrite`).
    pub fn from_env() -> Result<Self, BadSetting> {
        env().cache.clone()
    }

    pub fn reads(self) -> bool {
        matches!(self, CacheMode::Read | CacheMode::ReadWrite)
    }

    pub fn writes(self) -> bool {
        matches!(self, CacheMode::Write | CacheMode::ReadWrite)
    }
}

/// Whether a yes/no variable is on: `1` or `true` (any case). The one rule for every flag the
/// harness reads (`L1_REQUIRE_ENGINES`, `L1_REQUIRE_HARDWARE`).
pub fn flag(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.trim() == "1" || v.trim().eq_ignore_ascii_case("true"))
}

/// Every variable of the table above, as this process saw it at first use.
#[derive(Clone, Debug)]
pub struct Env {
    pub root: Option<PathBuf>,
    pub specs: Option<PathBuf>,
    /// `L1_TARGET_DIR`, else `CARGO_TARGET_DIR` (empty values ignored).
    pub target_dir: Option<PathBuf>,
    pub require_engines: bool,
    pub require_hardware: bool,
    /// `ENABLE_L1_KERNEL_TUNING=0` (or `false`).
    pub kill_switch: bool,
    /// `L1_GATES`, parsed: `None` when unset.
    pub gates: Result<Option<Vec<GateMethod>>, Diagnostic>,
    pub cache: Result<CacheMode, BadSetting>,
    /// `L1_STORE`, trimmed, when not blank.
    pub store: Option<String>,
    /// `L1_LOCK_TIMEOUT_S`: the measurement lock's lease (default 60 s).
    pub lock_timeout: Result<Duration, BadSetting>,
    /// `L1_MEASURE_SEED`: replaces every spec's `measure.seed` (`None` when unset or blank).
    pub measure_seed: Result<Option<u64>, BadSetting>,
    /// `L1_RUN_LABEL`, when not blank.
    pub run_label: Option<String>,
    /// `L1_RUN_ID`, else `NEXTEST_RUN_ID`, reduced to `[A-Za-z0-9_-]`, when that leaves anything.
    pub run_id: Option<String>,
    /// `L1_PROGRESS`: `Some(true)` for `1`/`true`, `Some(false)` for `0`/`false`.
    pub progress: Option<bool>,
    /// `NEXTEST` is set: running under cargo-nextest.
    pub nextest: bool,
    /// `NEXTEST_RUN_ID` is set: listing or running for a nextest run.
    pub nextest_run: bool,
    /// `NEXTEST_TEST_GROUP_SLOT`, when it is a number.
    pub test_group_slot: Option<String>,
    /// `L1_DETECTED_HARDWARE`, split on commas.
    pub detected_hardware: Option<Vec<String>>,
    pub full_scan_forbidden: bool,
    pub tune_trial_delay: Option<Duration>,
    /// `L1_PUSHGATEWAY`, when not empty.
    pub pushgateway: Option<String>,
}

impl Env {
    /// Read every variable from this process's environment.
    pub fn read() -> Self {
        let var = |k: &str| std::env::var(k).ok();
        let path = |k: &str| std::env::var_os(k).map(PathBuf::from);
        let not_blank =
            |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        Self {
            root: path("L1_ROOT"),
            specs: path("L1_SPECS"),
            target_dir: ["L1_TARGET_DIR", "CARGO_TARGET_DIR"]
                .iter()
                .find_map(|k| std::env::var_os(k).filter(|v| !v.is_empty()))
                .map(PathBuf::from),
            require_engines: flag(var("L1_REQUIRE_ENGINES").as_deref()),
            require_hardware: flag(var("L1_REQUIRE_HARDWARE").as_deref()),
            kill_switch: var("ENABLE_L1_KERNEL_TUNING")
                .is_some_and(|v| v == "0" || v.eq_ignore_ascii_case("false")),
            gates: var("L1_GATES").map(|t| parse_gates(&t)).transpose(),
            cache: var("L1_CACHE").map_or(Ok(CacheMode::ReadWrite), |v| CacheMode::parse(&v)),
            store: not_blank(var("L1_STORE")),
            lock_timeout: var("L1_LOCK_TIMEOUT_S")
                .map_or(Ok(l1_store::lock::DEFAULT_LOCK_TIMEOUT), |v| {
                    parse_lock_timeout(&v)
                }),
            measure_seed: not_blank(var("L1_MEASURE_SEED"))
                .map(|v| parse_measure_seed(&v))
                .transpose(),
            run_label: var("L1_RUN_LABEL").filter(|l| !l.trim().is_empty()),
            run_id: ["L1_RUN_ID", "NEXTEST_RUN_ID"].iter().find_map(|k| {
                let v: String = var(k)?
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                (!v.is_empty()).then_some(v)
            }),
            progress: match var("L1_PROGRESS").as_deref() {
                Some("1" | "true") => Some(true),
                Some("0" | "false") => Some(false),
                _ => None,
            },
            nextest: std::env::var_os("NEXTEST").is_some(),
            nextest_run: std::env::var_os("NEXTEST_RUN_ID").is_some(),
            test_group_slot: var("NEXTEST_TEST_GROUP_SLOT")
                .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())),
            detected_hardware: var("L1_DETECTED_HARDWARE").map(|list| {
                list.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            }),
            full_scan_forbidden: std::env::var_os("L1_FULL_SCAN_FORBIDDEN").is_some(),
            tune_trial_delay: var("L1_TUNE_TRIAL_DELAY_MS")
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_millis),
            pushgateway: var("L1_PUSHGATEWAY").filter(|g| !g.is_empty()),
        }
    }
}

/// This process's environment, read and parsed once.
pub fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(Env::read)
}

/// Where things are and what the environment asks for.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The repository root (holds `catalogs/` and `specs/`).
    pub root: PathBuf,
    /// `L1_SPECS`: a spec file or directory (default `<root>/specs`).
    pub specs: PathBuf,
    /// Where `l1/runs/<run-id>`, the default store and the metrics textfile go: `L1_TARGET_DIR`,
    /// else `CARGO_TARGET_DIR`, else `<root>/target`. `L1_TARGET_DIR` moves l1's results
    /// without moving cargo's build (the project's own tests point it at a scratch directory).
    pub target_dir: PathBuf,
    /// `L1_REQUIRE_ENGINES=1`: a missing engine fails its trials instead of ignoring them.
    pub require_engines: bool,
    /// `L1_REQUIRE_HARDWARE=1`: a target whose GPU is not present fails instead of being ignored.
    pub require_hardware: bool,
    /// `ENABLE_L1_KERNEL_TUNING=0`: launch no engine.
    pub kill_switch: bool,
    /// `L1_ENGINES_DIR`: installed engines and test models (default `~/.cache/l1/engines`).
    pub engines_dir: PathBuf,
    /// `L1_GATES`: the run's override of every spec's gates (an error fails the run's
    /// `invalid::L1_GATES` trial).
    pub gates: Result<Option<Vec<GateMethod>>, Diagnostic>,
    /// `L1_TUNE_TRIAL_DELAY_MS`: a pause after each tune trial.
    pub tune_trial_delay: Option<Duration>,
}

impl Settings {
    /// Settings from the environment, with `default_root` when `L1_ROOT` is unset.
    pub fn from_env(default_root: &Path) -> Self {
        let e = env();
        let root = e.root.clone().unwrap_or_else(|| default_root.to_path_buf());
        let specs = e
            .specs
            .clone()
            .map(|p| {
                if p.is_absolute() || p.exists() {
                    p
                } else {
                    root.join(p)
                }
            })
            .unwrap_or_else(|| root.join("specs"));
        let target_dir = e.target_dir.clone().unwrap_or_else(|| root.join("target"));
        Self {
            require_engines: e.require_engines,
            require_hardware: e.require_hardware,
            kill_switch: e.kill_switch,
            ..Self::new(&root, specs, target_dir)
        }
    }

    /// Settings for running `specs` from `root` into `target_dir`, nothing required or switched
    /// off, engines from the default engines directory (tests and tools); `L1_GATES` and
    /// `L1_TUNE_TRIAL_DELAY_MS` from the environment.
    pub fn new(root: &Path, specs: PathBuf, target_dir: PathBuf) -> Self {
        Self {
            root: root.to_path_buf(),
            specs,
            target_dir,
            require_engines: false,
            require_hardware: false,
            kill_switch: false,
            engines_dir: l1_engines::launch::engines_dir(),
            gates: env().gates.clone(),
            tune_trial_delay: env().tune_trial_delay,
        }
    }
}

/// Parse an `L1_LOCK_TIMEOUT_S` value: a positive, finite number of seconds.
pub fn parse_lock_timeout(text: &str) -> Result<Duration, BadSetting> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| BadSetting {
            var: "L1_LOCK_TIMEOUT_S",
            value: text.trim().to_string(),
            what: "a lock timeout",
            expected: "a positive number of seconds, such as 60 or 2.5",
        })
}

/// Parse an `L1_MEASURE_SEED` value: an unsigned 64-bit number.
pub fn parse_measure_seed(text: &str) -> Result<u64, BadSetting> {
    text.trim().parse::<u64>().map_err(|_| BadSetting {
        var: "L1_MEASURE_SEED",
        value: text.trim().to_string(),
        what: "a measurement seed",
        expected: "an unsigned 64-bit integer, such as 42",
    })
}

/// Parse an `L1_GATES` value: gate method names ([`GateMethod`]'s one parser), comma-separated.
pub fn parse_gates(text: &str) -> Result<Vec<GateMethod>, Diagnostic> {
    let mut out = Vec::new();
    for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match name.parse::<GateMethod>() {
            Ok(method) => out.push(method),
            Err(e) => {
                let d = Diagnostic::new("L1_GATES", format!("{e} in L1_GATES={text}"))
                    .field("L1_GATES")
                    .choices(GateMethod::NAMES);
                return Err(match e.help() {
                    Some(help) => d.help(help),
                    None => d,
                });
            }
        }
    }
    if out.is_empty() {
        return Err(
            Diagnostic::new("L1_GATES", "L1_GATES is set but names no gate")
                .field("L1_GATES")
                .expected(format!(
                    "a comma-separated list of: {}",
                    GateMethod::NAMES.join(", ")
                )),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l1_gates_parses() {
        assert_eq!(parse_gates("manual").unwrap(), [GateMethod::Manual]);
        assert_eq!(
            parse_gates(" topk5, pareto ").unwrap(),
            [GateMethod::Topk5, GateMethod::Pareto]
        );
        let e = parse_gates("topk5,best").unwrap_err();
        assert!(e.message.contains("unknown gate method `best`"), "{e}");
        assert!(
            e.expected
                .as_deref()
                .is_some_and(|x| x.contains("regression")),
            "{e}"
        );
        let e = parse_gates(" , ").unwrap_err();
        assert!(e.message.contains("names no gate"), "{e}");
        assert!(
            e.expected
                .as_deref()
                .is_some_and(|x| x.contains("fidelity")),
            "every method is listed: {e}"
        );
        // A near miss is named.
        let e = parse_gates("paretto").unwrap_err();
        assert!(
            e.help.as_deref().is_some_and(|h| h.contains("pareto")),
            "{e}"
        );
    }

    #[test]
    fn flags_are_one_or_true() {
        for on in ["1", "true", "TRUE", " 1 "] {
            assert!(flag(Some(on)), "{on}");
        }
        for off in ["0", "false", "", "yes", "2"] {
            assert!(!flag(Some(off)), "{off}");
        }
        assert!(!flag(None));
    }

    #[test]
    fn lock_timeouts_parse() {
        assert_eq!(
            parse_lock_timeout(" 2.5 ").unwrap(),
            Duration::from_millis(2500)
        );
        assert_eq!(parse_lock_timeout("60").unwrap(), Duration::from_secs(60));
        for bad in ["0", "-1", "soon", "", "inf", "NaN"] {
            let e = parse_lock_timeout(bad).unwrap_err().to_string();
            assert!(
                e.contains("L1_LOCK_TIMEOUT_S=") && e.contains("positive number of seconds"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn measure_seeds_parse() {
        assert_eq!(parse_measure_seed(" 42 ").unwrap(), 42);
        assert_eq!(
            parse_measure_seed("18446744073709551615").unwrap(),
            u64::MAX
        );
        for bad in ["-1", "x", "1.5", "18446744073709551616"] {
            let e = parse_measure_seed(bad).unwrap_err().to_string();
            assert!(
                e.contains("L1_MEASURE_SEED=") && e.contains("unsigned"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn cache_modes_parse() {
        assert_eq!(CacheMode::parse("off").unwrap(), CacheMode::Off);
        assert_eq!(CacheMode::parse("").unwrap(), CacheMode::ReadWrite);
        let e = CacheMode::parse("sometimes").unwrap_err().to_string();
        assert!(e.contains("L1_CACHE=`sometimes`"), "{e}");
        assert!(CacheMode::Read.reads() && !CacheMode::Read.writes());
    }
}
