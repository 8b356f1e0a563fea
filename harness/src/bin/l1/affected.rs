//! `l1 affected --base REV [--head REV]`: which trials a git change affects and why, as a list,
//! JSON, a nextest filterset or libtest filters (see `docs/src/affected.md`).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
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
    /// One `--exact NAME` per line: the libtest arguments of each selected trial.
    Libtest,
    /// The selected trial names, one per line.
    Names,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The revision the change starts from (e.g. the merge base with main).
    #[arg(long, value_name = "REV")]
    pub base: String,
    /// The revision the change ends at.
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    pub head: String,
    /// What to print (`--json` prints the JSON document instead).
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Hardware profiles spec templates see as detected (comma-separated; default
    /// `L1_DETECTED_HARDWARE`, else the catalog's CPU profiles): fixed, so the answer does not
    /// depend on the machine that computes it.
    #[arg(long, value_delimiter = ',', value_name = "PROFILES")]
    pub hardware: Option<Vec<String>>,
}

pub fn run(json: bool, root: &Path, args: &Args) -> Result<ExitCode> {
    let fixed = FixedContext {
        hardware: args
            .hardware
            .clone()
            .or_else(|| l1_harness::settings::env().detected_hardware.clone()),
        env: RenderContext::env_from_process(),
    };
    let sel = affected::affected(root, &args.base, &args.head, &fixed)?;
    if json {
        out!("{}", serde_json::to_string_pretty(&affected::json(&sel))?);
        return Ok(ExitCode::SUCCESS);
    }
    match args.format {
        Format::Text => out!("{}", affected::text(&sel).trim_end()),
        Format::Nextest => out!("{}", affected::nextest_filterset(&sel)),
        Format::Libtest => {
            for f in affected::libtest_filters(&sel) {
                out!("{f}");
            }
        }
        Format::Names => {
            for n in sel.trials() {
                out!("{n}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
