//! Helpers the subcommands share: opening the results store, the repository's render context,
//! the newest run, and the times the commands accept and print.

use anyhow::Result;
use l1_harness::detect::Detected;
use l1_harness::profiles::Catalogs;
use l1_harness::render::RenderContext;
use l1_harness::results;
use l1_harness::settings::Settings;
use l1_store::Store;

/// The results store of `settings` (`L1_STORE`, else the one under the target directory).
pub fn open(settings: &Settings) -> Result<Store> {
    let loc = results::location(&settings.target_dir);
    Ok(Store::open(&loc)?)
}

/// The render context specs are loaded with, on this machine.
pub fn context(cats: &Catalogs) -> RenderContext {
    l1_harness::suite::render_context(cats, &Detected::detect(&cats.hardware))
}

/// `2026-12-02 10:15:00Z` for Unix seconds (a time before the epoch shows as the epoch).
pub fn stamp(t: f64) -> String {
    l1_reports::dates::utc(t.max(0.0), l1_reports::dates::LISTING)
        .unwrap_or_else(|| "unknown time".into())
}

/// The run whose trials, plan or start markers changed last (not the run directory's own time:
/// reporting an older run writes its reports into it, which must not make it the newest).
pub fn newest_run(dir: &std::path::Path) -> Option<String> {
    let activity = |run: &std::path::Path| {
        ["trials", "plan", "started"]
            .iter()
            .filter_map(|sub| std::fs::metadata(run.join(sub)).ok()?.modified().ok())
            .max()
            .or_else(|| std::fs::metadata(run).ok()?.modified().ok())
    };
    let mut runs: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            Some((
                activity(&e.path())?,
                e.file_name().to_string_lossy().into_owned(),
            ))
        })
        .collect();
    runs.sort();
    runs.pop().map(|(_, n)| n)
}
