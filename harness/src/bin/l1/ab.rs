//! `l1 ab`: main's build and a pull request's measured alternately on this runner, each
//! selected trial's head/base ratio judged with the `regression` gate's test (see
//! `docs/src/ab.md`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use l1_harness::ab::{self, Options, Pairing, Side};
use l1_harness::spec::RegressionForm;

/// The `regression` gate's forms, on the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Form {
    /// Fail on evidence that a metric is worse by more than ε (Holm across every trial–metric
    /// pair).
    FailOnRegression,
    /// Pass only on evidence that no metric is worse by ε or more (the pull-request recipe's
    /// form).
    NonInferiority,
}

/// How the rounds' seeds are given.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Seeds {
    /// Both sides of a round replay the same request sequence (the same seed).
    Paired,
    /// Each side of a round its own seed.
    Independent,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The base's (main's) `kernels` test binary, built at the merge base
    /// (`cargo test --release --no-run -p l1-harness --test kernels`).
    #[arg(long, value_name = "PATH")]
    pub base_bin: PathBuf,
    /// The base's repository root (a checkout of the merge base: its catalogs and specs).
    #[arg(long, value_name = "DIR")]
    pub base_root: PathBuf,
    /// The head's (the pull request's) `kernels` test binary.
    #[arg(long, value_name = "PATH")]
    pub head_bin: PathBuf,
    /// The head's repository root (default: l1's root, `--root`/`L1_ROOT` or the repository
    /// around the current directory).
    #[arg(long, value_name = "DIR")]
    pub head_root: Option<PathBuf>,
    /// The trials to compare, from a file: one name per line, or `l1 affected --json` output;
    /// `-` reads stdin. A `::gate` trial stands for its target's combo and baseline trials.
    #[arg(long, value_name = "FILE")]
    pub trials: Option<PathBuf>,
    /// A trial to compare (repeatable; added to `--trials`).
    #[arg(long = "trial", value_name = "NAME")]
    pub trial: Vec<String>,
    /// Rounds: each runs every trial once on each side, base first in odd rounds and head
    /// first in even ones (ABBA). The rounds are the unit of the test (rounds − 1 degrees of
    /// freedom).
    #[arg(long, default_value_t = 6)]
    pub rounds: usize,
    /// The largest allowed regression per metric, in [0, 1).
    #[arg(long, default_value_t = 0.05)]
    pub epsilon: f64,
    /// The metrics compared, each in its own direction (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "output_tokens_per_s,ttft_p95_ms,e2e_p95_ms"
    )]
    pub metrics: Vec<String>,
    /// The `regression` gate's form of the test.
    #[arg(long, value_enum, default_value = "non_inferiority")]
    pub form: Form,
    /// The family-wise two-sided level; every one-sided claim is at alpha/2 (intervals at
    /// 1 − alpha).
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// The base seed the rounds' measurement seeds (`L1_MEASURE_SEED`) are derived from.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Whether both sides of a round share the round's seed.
    #[arg(long, value_enum, default_value = "paired")]
    pub seeds: Seeds,
    /// Keep the rounds' run directories here (default: a temporary directory, removed at the
    /// end).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// The results store the rounds write to (default: each round's own, in the work
    /// directory; never the user's `L1_STORE`).
    #[arg(long, value_name = "PATH|URL")]
    pub store: Option<String>,
    /// Also write the verdict as Markdown (for `$GITHUB_STEP_SUMMARY` or a pull-request
    /// comment) to PATH, or to stdout with `-` (the text then goes to stderr).
    #[arg(long, value_name = "PATH|-")]
    pub markdown: Option<PathBuf>,
}

/// A scratch directory removed when dropped (the default work directory).
struct Scratch(Option<PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

pub fn run(json: bool, root: &Path, args: &Args) -> Result<ExitCode> {
    let mut trials = match &args.trials {
        Some(file) => ab::read_selection(file)?,
        None => Vec::new(),
    };
    trials.extend(args.trial.iter().cloned());
    let (work_dir, _scratch) = match &args.work_dir {
        Some(d) => (d.clone(), Scratch(None)),
        None => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let d = std::env::temp_dir().join(format!("l1-ab-{}-{nanos}", std::process::id()));
            (d.clone(), Scratch(Some(d)))
        }
    };
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut opts = Options::new(
        Side {
            bin: abs(&args.base_bin),
            root: abs(&args.base_root),
        },
        Side {
            bin: abs(&args.head_bin),
            root: abs(args.head_root.as_deref().unwrap_or(root)),
        },
        trials,
        abs(&work_dir),
    );
    opts.rounds = args.rounds;
    opts.epsilon = args.epsilon;
    opts.metrics = args.metrics.clone();
    opts.form = match args.form {
        Form::FailOnRegression => RegressionForm::FailOnRegression,
        Form::NonInferiority => RegressionForm::NonInferiority,
    };
    opts.alpha = args.alpha;
    opts.seed = args.seed;
    opts.pairing = match args.seeds {
        Seeds::Paired => Pairing::Paired,
        Seeds::Independent => Pairing::Independent,
    };
    opts.store = args.store.clone();
    let outcome = ab::run(&opts, &mut |line| eprintln!("{line}"))?;
    let to_stdout = args.markdown.as_deref() == Some(Path::new("-"));
    if let Some(path) = args.markdown.as_deref().filter(|_| !to_stdout) {
        std::fs::write(path, ab::markdown(&outcome)).with_context(|| {
            format!("failed to write the Markdown verdict to {}", path.display())
        })?;
    }
    if json {
        out!("{}", serde_json::to_string_pretty(&outcome)?);
    } else if to_stdout {
        out!("{}", ab::markdown(&outcome).trim_end());
        eprint!("{}", ab::text(&outcome));
    } else {
        out!("{}", ab::text(&outcome).trim_end());
    }
    Ok(ExitCode::from(outcome.exit_code))
}
