//! `l1 report`: summarize a run (default: the newest) and write its reports (with `--markdown`,
//! also the Markdown summary for CI); ingest it into the store and record its status.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use l1_harness::harness;
use l1_harness::record::{self, RunDir};
use l1_harness::run_reader::relative;
use l1_harness::settings::Settings;
use l1_reports::reporter::Reporter as _;

use crate::common::newest_run;

pub fn run(
    json: bool,
    settings: &Settings,
    run: Option<&str>,
    junit: Option<&Path>,
    markdown: Option<(&Path, Option<&str>)>,
) -> Result<ExitCode> {
    // `--markdown -` takes stdout; the text summary then goes to stderr.
    let md_stdout = markdown.is_some_and(|(p, _)| p == Path::new("-"));
    if json && md_stdout {
        bail!("`--json` and `--markdown -` would both write to stdout: give --markdown a file");
    }
    let say = |line: String| {
        if md_stdout {
            eprintln!("{line}");
        } else {
            out!("{line}");
        }
    };
    let runs_dir = settings.target_dir.join("l1").join("runs");
    let id = match run {
        Some(r) => r.to_string(),
        None => newest_run(&runs_dir)
            .with_context(|| format!("no runs under {}", runs_dir.display()))?,
    };
    let dir = RunDir::new(&settings.target_dir, &id);
    // A run measured elsewhere (a shared PostgreSQL store) is restored from the store.
    if !dir.path.is_dir() {
        let restored =
            l1_harness::results::with_store(&settings.target_dir, |s| Ok(s.run(&id)?.is_some()))
                .map_err(anyhow::Error::msg)?;
        if !restored {
            bail!(
                "unknown run `{id}` (no directory {} and not in the store {})",
                dir.path.display(),
                l1_harness::results::location(&settings.target_dir).display()
            );
        }
        let n = l1_harness::results::with_store(&settings.target_dir, |s| {
            Ok(l1_harness::results::restore(&dir, s))
        })
        .map_err(anyhow::Error::msg)?
        .map_err(anyhow::Error::msg)?;
        eprintln!(
            "run {id}: restored {n} records from the store into {}",
            dir.path.display()
        );
    }
    // The run's accounting: its plans (what the runner selected, ignored, filtered
    // out), start markers and trial records.
    let acc = l1_harness::accounting::Accounting::of(&dir);
    let mut summary = harness::summarize(&dir, &acc);
    // The store gets every record of the run (idempotent) and the run's verdict. A
    // store error does not stop the reports; it makes the run unreadable (exit 2).
    let store_error = harness::finish_in_store(settings, &dir, &summary.status).err();
    if let Some(e) = &store_error {
        summary.notes.push(format!("results store: {e}"));
    }
    record::write_json_atomic(&dir.path.join("summary.json"), &summary)
        .map_err(anyhow::Error::msg)?;
    let junit_path = junit
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.path.join("junit.xml"));
    let sources = l1_harness::report_model::Sources {
        specs: Some(settings.specs.clone()),
        root: Some(settings.root.clone()),
        ignored: BTreeMap::new(),
        now_unix_s: None,
    };
    // Every format from one report model, built from the accounting read above.
    let written = l1_harness::report_model::write_all(
        &dir,
        &acc,
        &settings.target_dir,
        &sources,
        Some(&junit_path),
    );
    // Problems beyond the table's unreadable trial records (measurement records, foreign
    // files), named by file.
    let problems = match &written {
        Ok((report, _)) => report.records.problems(),
        Err(_) => Vec::new(),
    };
    let extra: Vec<&String> = problems
        .iter()
        .filter(|p| !(summary.unreadable.iter()).any(|u| relative(&dir, u) == **p))
        .collect();
    if json {
        out!("{}", serde_json::to_string_pretty(&summary)?);
        for p in &extra {
            eprintln!("unreadable record: {p}");
        }
    } else {
        say(l1_reports::render_table(&summary).trim_end().to_string());
        for p in &extra {
            say(format!("  unreadable record: {p}"));
        }
    }
    let report_error = match &written {
        Ok((_, w)) => {
            for x in &w.warnings {
                eprintln!("l1: {x}");
            }
            if !json {
                let junit = w.junit.iter().map(|p| ("JUnit XML", p));
                let rest = ["HTML report", "JSON results", "metrics"]
                    .into_iter()
                    .zip([&w.html, &w.json, &w.metrics]);
                for (what, p) in junit.chain(rest) {
                    say(format!("  {what}: {}", p.display()));
                }
            }
            false
        }
        Err(e) => {
            eprintln!("l1: failed to write the reports: {e}");
            true
        }
    };
    // The Markdown summary, from the same report model.
    let markdown_error = match (&written, markdown) {
        (Ok((report, w)), Some((path, url))) => {
            let base = if md_stdout { Path::new(".") } else { path };
            let md = l1_reports::reporter::Markdown {
                report_link: Some(url.map_or_else(|| relative_link(&w.html, base), str::to_string)),
                ..Default::default()
            };
            if md_stdout {
                out!("{}", md.render(report).trim_end());
                false
            } else {
                match md.write(report, path) {
                    Ok(m) => {
                        if !json {
                            say(format!("  {}: {}", m.what, m.path.display()));
                        }
                        false
                    }
                    Err(e) => {
                        eprintln!("l1: failed to write the Markdown summary: {e}");
                        true
                    }
                }
            }
        }
        (Err(_), Some(_)) => {
            eprintln!("l1: the Markdown summary was not written (no report model)");
            true
        }
        _ => false,
    };
    if let Some(e) = &store_error {
        eprintln!("l1: results store: {e}");
    }
    // One table for every command that judges a run (the book's
    // docs/src/reference/accounting.md, "Exit codes").
    Ok(ExitCode::from(l1_harness::accounting::exit_code(
        acc.verdict(),
        !summary.unreadable.is_empty() || !extra.is_empty(),
        store_error.is_some() || report_error || markdown_error,
    )))
}

/// The link from the Markdown summary at `from` (a file; `.` for the current directory) to the
/// HTML report `html`: a relative path with `/` separators, else `html` as given.
fn relative_link(html: &Path, from: &Path) -> String {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let html = abs(html);
    let from = abs(from);
    let base: PathBuf = if from.is_dir() {
        from
    } else {
        from.parent().map_or(from.clone(), Path::to_path_buf)
    };
    let (h, b): (Vec<Component>, Vec<Component>) =
        (html.components().collect(), base.components().collect());
    let common = h.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if common == 0 {
        return html.display().to_string();
    }
    let ups = std::iter::repeat_n("..".to_string(), b.len() - common);
    let rest = h[common..]
        .iter()
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    ups.chain(rest).collect::<Vec<_>>().join("/")
}
