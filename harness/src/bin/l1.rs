//! `l1`: validate and preview specs, manage catalog snapshots, summarize runs. This file holds
//! the command line (clap types) and the dispatch; each subcommand lives in its own module under
//! `l1/`.
//!
//! Exit codes: 0 success, 1 a spec or catalog is invalid (diagnostics on stderr), 2 usage or I/O
//! error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use l1_harness::settings::Settings;

#[derive(Parser)]
#[command(
    name = "l1",
    version,
    about = "Kernel-configuration sweeps for LLM inference engines"
)]
struct Cli {
    /// Repository root (holds catalogs/ and specs/). Default: the nearest directory at or above
    /// the current one that holds `catalogs/kernels.yaml`, else the repository this `l1` was
    /// built from.
    #[arg(long, env = "L1_ROOT")]
    root: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check specs exactly as the harness would: spec files, or directories (every spec under
    /// them); default `L1_SPECS`, else `specs/`.
    Validate {
        /// Spec files or directories (every spec under them); none: `L1_SPECS`, else `specs/`.
        specs: Vec<PathBuf>,
    },
    /// How many combos each mode would run for a spec, which ones (with the sim engine's
    /// predicted metrics), and what the rules rejected.
    Preview {
        /// The spec file.
        spec: PathBuf,
        /// List every selected combo with its sim-predicted throughput and p95 TTFT.
        #[arg(long)]
        combos: bool,
    },
    /// Print the JSON Schema of spec files (`docs/src/specs/spec.schema.json` is the committed
    /// copy; editors read it through a `# yaml-language-server: $schema=...` header line).
    Schema,
    /// The kernel catalog.
    Catalog {
        #[command(subcommand)]
        action: CatalogAction,
    },
    /// Measure this machine's noise: every target's baseline over several launches; records the
    /// within- and between-launch variation (noise floor and launch component of later
    /// comparisons) and the reference the `drift` gate compares with.
    Calibrate {
        /// The spec whose targets' baselines are measured.
        spec: PathBuf,
        /// Engine launches per target (the between-launch variation needs several).
        #[arg(long, default_value_t = 5)]
        launches: usize,
        /// Reps per launch.
        #[arg(long, default_value_t = 7)]
        reps: usize,
    },
    /// Runs in the results store (`L1_STORE`): list, show, cancel, delete, follow.
    Runs {
        #[command(subcommand)]
        action: runs::RunsAction,
    },
    /// Tier-2 tune sessions in the results store: list, status, resume, cancel.
    Tune {
        #[command(subcommand)]
        action: tune::TuneAction,
    },
    /// The measurement cache: stats, flush.
    Cache {
        #[command(subcommand)]
        action: cache::CacheAction,
    },
    /// Write each target's winning combo of a stored run as the engine's launch artifact
    /// (argv, env, config files) with provenance, for a deployment pipeline. Only a winner that
    /// a gate testing for improvement (topk5) established is written; otherwise it says why
    /// (which gates ran, what they lacked) and writes nothing for the target.
    Apply {
        /// The run id (as `l1 runs list` shows it).
        run: String,
        /// Where to write (default: `target/l1/apply/<run>/`).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Also write targets whose gates passed without establishing a winner (only pareto,
        /// regression or manual gates, or an inconclusive comparison): their best combo, else
        /// the baseline, marked `forced` in the provenance. Failed gates are never applied.
        #[arg(long)]
        force: bool,
    },
    /// The results store itself: ingest a run directory, check integrity.
    Store {
        #[command(subcommand)]
        action: store::StoreAction,
    },
    /// Summarize a run (default: the newest run): JUnit XML, HTML, results.json and metrics;
    /// ingest it into the store and record its status: passed, failed or unfinished (a run only
    /// in the store is restored first).
    ///
    /// Exit codes: 0 every trial asked to run finished and passed; 1 the run finished and a trial
    /// or gate failed (spec errors included); 2 the run is unfinished (trials without an
    /// outcome) or could not be read (an unreadable record, a store error, reports not written).
    /// The same with `--markdown`: the summary is written whatever the verdict (a failed run
    /// exits 1 after writing it), and a summary that could not be written exits 2.
    Report {
        /// The run id (default: the newest run under `target/l1/runs/`).
        run: Option<String>,
        /// Where to write the JUnit XML (default: `target/l1/runs/<run>/junit.xml`).
        #[arg(long, value_name = "PATH")]
        junit: Option<PathBuf>,
        /// Also write a Markdown summary for a CI step summary or a pull-request comment (the
        /// verdict per target, winners, regressions with ratio and interval, what was not run
        /// and why, a link to the HTML report) to PATH, or to stdout with `-` (the text summary
        /// then goes to stderr). E.g. `--markdown "$GITHUB_STEP_SUMMARY"`.
        #[arg(long, value_name = "PATH|-")]
        markdown: Option<PathBuf>,
        /// The link to the HTML report in the Markdown summary (the CI's artifact URL); default:
        /// the path of `report.html` relative to the summary's directory (stdout: the current
        /// directory).
        #[arg(long, value_name = "URL", requires = "markdown")]
        artifact_url: Option<String>,
    },
    /// Write the CLI reference generated from this definition (the book page and man pages).
    #[command(hide = true)]
    Docs {
        #[command(subcommand)]
        action: docs::DocsAction,
    },
    /// Which trials a git change (`--base..--head`) affects and why: both revisions expanded in
    /// full and compared trial by trial; an engine's translator selects its trials, an
    /// unclassifiable change everything, documentation nothing. Exit 0 (even when nothing is
    /// selected), 2 on a bad revision or a git failure.
    Affected(affected::Args),
    /// Measure main's build (base) and a pull request's (head) alternately on this runner, in
    /// rounds (ABBA order, the same seed for both sides of a round), and judge each trial's
    /// head/base ratio with the `regression` gate's test. Exit codes: 0 passed; 1 a regression
    /// was found (or, with `non_inferiority`, not shown within ε) or a head trial failed; 2 the
    /// comparison could not be made (bad input, a base trial failed, a trial not run).
    Ab(Box<ab::Args>),
    /// Measure the decisions' error rates and power on the sim engine's known truth: every cell of
    /// the published table (or those `--cells` names), each rate with its 95 % Wilson interval.
    /// Each cell has its own random stream (seeded from `--seed` and the cell id): reproducible.
    Accuracy {
        /// Comparisons per cell (the published table uses 20,000; the default is a quick look).
        #[arg(long, default_value_t = 2000)]
        comparisons: usize,
        /// Only these cells (comma-separated ids; `PREFIX*` selects every id starting with PREFIX).
        #[arg(long, value_name = "IDS")]
        cells: Option<String>,
        /// List the cells (id and design) and exit.
        #[arg(long)]
        list: bool,
        /// Base seed of the cells' random streams.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Worker threads per cell (default: the available cores; results do not depend on it).
        #[arg(long)]
        threads: Option<usize>,
        /// Reps per combo of `--sweep`.
        #[arg(long, default_value_t = 7)]
        reps: usize,
        /// Measure whole sweeps instead: how often the winner is the true best, and its regret.
        #[arg(long)]
        sweep: bool,
        /// The model profile (catalogs/models.yaml) whose truth the sim draws around.
        #[arg(long, default_value = "llama-3.1-8b")]
        model: String,
        /// The hardware profile: its noise floor and launch CV are the noise the sim draws.
        #[arg(long, default_value = "h100-sxm")]
        hardware: String,
        /// The workload only sets the truth the noise multiplies (a closed-loop rep's throughput
        /// is truth / noise factors), so every closed-loop workload gives the same counts; the
        /// default is the cheapest to simulate (`cpu-smoke`; `interactive-single` for `--sweep`).
        #[arg(long)]
        workload: Option<String>,
    },
}

#[derive(Subcommand)]
enum CatalogAction {
    /// Print the catalog's version, snapshot id, dimensions and rules.
    Show,
    /// Record the current catalog as the snapshot of its version (after bumping `version`).
    Snapshot,
    /// The recorded snapshots: files under catalogs/snapshots/ and those results refer to.
    Snapshots,
    /// A line diff of two catalogs: snapshot ids (`v2`, `v3-…`), `current`, or files. Exit 1
    /// when they differ.
    Diff {
        /// The first catalog: a snapshot id (`v2`, `v3-…`), `current`, or a file.
        a: String,
        /// The second catalog, in the same forms.
        b: String,
    },
    /// Print the engine table (translator and catalog versions, values per dimension) as
    /// Markdown, as the book's engines page (docs/src/engines/index.md) carries it; with an
    /// engine name, that engine's tables as its book page carries them (what it offers, its
    /// translation rows by version, the catalog rules that concern it).
    Engines {
        /// One engine (`vllm`, `sglang`, ...).
        engine: Option<String>,
    },
}

/// `println!` that ends the program quietly when stdout is closed (`l1 ... | head`).
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($t)*).is_err() {
            std::process::exit(0);
        }
    }};
}

// The crate root resolves modules beside this file; the subcommands live in `l1/`.
#[path = "l1/ab.rs"]
mod ab;
#[path = "l1/accuracy.rs"]
mod accuracy;
#[path = "l1/affected.rs"]
mod affected;
#[path = "l1/apply.rs"]
mod apply;
#[path = "l1/cache.rs"]
mod cache;
#[path = "l1/calibrate.rs"]
mod calibrate;
#[path = "l1/catalog.rs"]
mod catalog;
#[path = "l1/common.rs"]
mod common;
#[path = "l1/docs.rs"]
mod docs;
#[path = "l1/preview.rs"]
mod preview;
#[path = "l1/report.rs"]
mod report;
#[path = "l1/runs.rs"]
mod runs;
#[path = "l1/schema.rs"]
mod schema;
#[path = "l1/store.rs"]
mod store;
#[path = "l1/tune.rs"]
mod tune;
#[path = "l1/validate.rs"]
mod validate;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// What marks the repository root.
const ROOT_MARKER: &str = "catalogs/kernels.yaml";

/// The repository root, found the way cargo finds its manifest: `--root`/`L1_ROOT` when given
/// (it must hold `catalogs/kernels.yaml`), else the nearest directory at or above the current
/// one that holds it, else the repository this binary was built from.
fn find_root(explicit: Option<&Path>) -> Result<PathBuf> {
    let how = "run l1 inside the repository, or point it there with `--root DIR` or `L1_ROOT=DIR` (the directory holding catalogs/ and specs/)";
    if let Some(dir) = explicit {
        if dir.join(ROOT_MARKER).is_file() {
            return Ok(dir.to_path_buf());
        }
        bail!(
            "`{}` (from --root or L1_ROOT) is not an l1 repository: it has no {ROOT_MARKER}\n  = help: {how}, or unset L1_ROOT to let l1 find the repository from the current directory",
            dir.display()
        );
    }
    let cwd = std::env::current_dir().context("failed to read the current directory")?;
    if let Some(dir) = cwd.ancestors().find(|d| d.join(ROOT_MARKER).is_file()) {
        return Ok(dir.to_path_buf());
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).parent();
    if let Some(dir) = built.filter(|d| d.join(ROOT_MARKER).is_file()) {
        return Ok(dir.to_path_buf());
    }
    bail!(
        "could not find the l1 repository: no {ROOT_MARKER} in {} or any directory above it, nor in {} (where this l1 was built)\n  = help: {how}",
        cwd.display(),
        built.map_or_else(|| "?".into(), |b| b.display().to_string())
    )
}

fn run(cli: &Cli) -> Result<ExitCode> {
    if let Command::Schema = cli.command {
        return Ok(schema::run());
    }
    // `l1 ab` with both roots given needs no other repository: the head's root is l1's.
    if let Command::Ab(args) = &cli.command
        && cli.root.is_none()
        && let Some(head) = &args.head_root
        && head.join(ROOT_MARKER).is_file()
    {
        return ab::run(cli.json, head, args);
    }
    let root = &find_root(cli.root.as_deref())?;
    let json = cli.json;
    let settings = || Settings::from_env(root);
    match &cli.command {
        Command::Validate { specs } => validate::run(json, root, specs),
        Command::Affected(args) => affected::run(json, root, args),
        Command::Ab(args) => ab::run(json, root, args),
        Command::Preview { spec, combos } => preview::run(json, root, spec, *combos),
        Command::Schema => Ok(schema::run()),
        Command::Catalog { action } => catalog::run(json, root, action),
        Command::Calibrate {
            spec,
            launches,
            reps,
        } => calibrate::run(json, root, spec, *launches, *reps),
        Command::Runs { action } => runs::run(json, &settings(), action),
        Command::Tune { action } => tune::run(json, &settings(), action),
        Command::Cache { action } => cache::run(json, &settings(), action),
        Command::Store { action } => store::run(json, &settings(), action),
        Command::Apply { run, out, force } => {
            apply::run(json, root, &settings(), run, out.as_deref(), *force)
        }
        Command::Docs { action } => docs::run(json, root, action),
        Command::Report {
            run,
            junit,
            markdown,
            artifact_url,
        } => report::run(
            json,
            &settings(),
            run.as_deref(),
            junit.as_deref(),
            markdown.as_deref().map(|m| (m, artifact_url.as_deref())),
        ),
        Command::Accuracy {
            comparisons,
            cells,
            list,
            seed,
            threads,
            reps,
            sweep,
            model,
            hardware,
            workload,
        } => accuracy::run(
            json,
            root,
            &accuracy::Options {
                comparisons: *comparisons,
                cells: cells.as_deref(),
                list: *list,
                seed: *seed,
                threads: *threads,
                reps: *reps,
                sweep: *sweep,
                model,
                hardware,
                workload: workload.as_deref(),
            },
        ),
    }
}
