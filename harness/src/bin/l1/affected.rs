//! `l1 affected --base REV [--head REV]`: which trials a git change affects and why, as a list,
//! JSON, a nextest filterset or libtest filters, optionally capped by a budget in trials and
//! written as the pull request's Markdown section (see `docs/src/affected.md`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use l1_harness::affected::{self, FixedContext};
use l1_harness::render::RenderContext;

/// What `l1 affected` prints (`--json` prints the JSON document whatever this says).
#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum Format {
    /// Targets with their reasons and counts, removed trials, and the nextest filterset.
    #[default]
    Text,
    /// The nextest filterset alone, for `cargo nextest run -E "$(…)"`.
    Nextest,
    /// One `--exact NAME` per line: the libtest arguments of each trial that runs.
    Libtest,
    /// The names of the trials that run, one per line.
    Names,
    /// `trials=N` and `left_out=N` lines (trials that run, trials the budget left out), for
    /// `$GITHUB_OUTPUT` or a GitLab dotenv report.
    Outputs,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The revision the change starts from (e.g. the merge base with main).
    #[arg(long, value_name = "REV")]
    pub base: String,
    /// The revision the change ends at.
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    pub head: String,
    /// What to print (`--json` prints the JSON document instead). The filters and names cover
    /// only the trials that run: those the budget kept.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Hardware profiles spec templates see as detected (comma-separated; default
    /// `L1_DETECTED_HARDWARE`, else the catalog's CPU profiles): fixed, so the answer does not
    /// depend on the machine that computes it.
    #[arg(long, value_delimiter = ',', value_name = "PROFILES")]
    pub hardware: Option<Vec<String>>,
    /// The budget in trials: whole affected targets are kept, in order, while their trials fit;
    /// the rest are left out and listed (the JSON's `budget`, the Markdown). Trials stand in for
    /// GPU time: nothing known before a run predicts a trial's duration.
    #[arg(long, value_name = "N")]
    pub max_trials: Option<usize>,
    /// Write the pull request's "What this pull request runs" section (Markdown) to PATH (`-`:
    /// stdout, after what `--format` prints).
    #[arg(long, value_name = "PATH|-")]
    pub markdown: Option<String>,
    /// Write `affected.json` (the `--json` document), `filterset` (the nextest filterset) and
    /// `selection.md` (the Markdown section) into DIR, created if needed.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn run(json: bool, root: &Path, args: &Args) -> Result<ExitCode> {
    if json && args.markdown.as_deref() == Some("-") {
        anyhow::bail!(
            "`--json` and `--markdown -` both print to stdout: give `--markdown` a file, or use `--out DIR`"
        );
    }
    let fixed = FixedContext {
        hardware: args
            .hardware
            .clone()
            .or_else(|| l1_harness::settings::env().detected_hardware.clone())
            // A blank `L1_DETECTED_HARDWARE` (an unset CI variable) means unset.
            .filter(|h| !h.is_empty()),
        env: RenderContext::env_from_process(),
    };
    let mut sel = affected::affected(root, &args.base, &args.head, &fixed)?;
    if let Some(max) = args.max_trials {
        sel.apply_budget(max);
    }
    let document =
        || -> Result<String> { Ok(serde_json::to_string_pretty(&affected::json(&sel))? + "\n") };
    if let Some(dir) = &args.out {
        let write = |name: &str, text: &str| -> Result<()> {
            let path = dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
        };
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        write("affected.json", &document()?)?;
        write("filterset", &(affected::nextest_filterset(&sel) + "\n"))?;
        write("selection.md", &affected::markdown(&sel))?;
    }
    if let Some(path) = args.markdown.as_deref().filter(|p| *p != "-") {
        std::fs::write(path, affected::markdown(&sel))
            .with_context(|| format!("writing {path}"))?;
    }
    print(json, args, &sel, &document)?;
    if args.markdown.as_deref() == Some("-") {
        out!("{}", affected::markdown(&sel).trim_end());
    }
    Ok(ExitCode::SUCCESS)
}

fn print(
    json: bool,
    args: &Args,
    sel: &affected::Selection,
    document: &dyn Fn() -> Result<String>,
) -> Result<()> {
    if json {
        out!("{}", document()?.trim_end());
        return Ok(());
    }
    match args.format {
        Format::Text => out!("{}", affected::text(sel).trim_end()),
        Format::Nextest => out!("{}", affected::nextest_filterset(sel)),
        Format::Libtest => {
            for f in affected::libtest_filters(sel) {
                out!("{f}");
            }
        }
        Format::Names => {
            for n in sel.kept_trials() {
                out!("{n}");
            }
        }
        Format::Outputs => {
            let left_out = sel.budget.as_ref().map_or(0, |b| b.left_out_trials);
            out!("trials={}", sel.kept_trials().len());
            out!("left_out={left_out}");
        }
    }
    Ok(())
}
