//! One trait for every report format written from the report model ([`RunReport`]), as
//! criterion's `Report` and hyperfine's exporters do: the HTML page, `results.json`, JUnit XML
//! and the Prometheus textfile, and the Markdown summary that `l1 report --markdown` writes
//! when asked. The harness builds the model once and hands it to a list of reporters
//! (`l1_harness::report_model::write_all`); adding a format is one implementation here and one
//! entry in that list.

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use crate::model::RunReport;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Html(#[from] crate::html::HtmlError),
    #[error("failed to render JUnit XML: {0}")]
    Junit(#[from] quick_junit::SerializeError),
    #[error(transparent)]
    Metrics(#[from] crate::prometheus::MetricsError),
    #[error(transparent)]
    Write(#[from] crate::atomic::WriteError),
}

/// What one reporter wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct Wrote {
    /// What was written, as the commands name it (`HTML report`).
    pub what: &'static str,
    pub path: PathBuf,
    /// Problems that did not stop the report (a failed push).
    pub warnings: Vec<String>,
}

/// A report format.
pub trait Reporter {
    /// What it writes, as the commands name it (`HTML report`, `JSON results`, `metrics`).
    fn name(&self) -> &'static str;
    /// Write `report` to `out` (atomically: readers never see half a report).
    fn write(&self, report: &RunReport, out: &Path) -> Result<Wrote, ReportError>;
}

fn wrote(what: &'static str, out: &Path) -> Wrote {
    Wrote {
        what,
        path: out.to_path_buf(),
        warnings: Vec::new(),
    }
}

/// The self-contained HTML page (`report.html`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Html;

impl Reporter for Html {
    fn name(&self) -> &'static str {
        "HTML report"
    }
    fn write(&self, report: &RunReport, out: &Path) -> Result<Wrote, ReportError> {
        let text = crate::html::render_html(report)?;
        crate::atomic::write(out, text.as_bytes())?;
        Ok(wrote(self.name(), out))
    }
}

/// The versioned JSON results (`results.json`): the model itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct Json;

impl Reporter for Json {
    fn name(&self) -> &'static str {
        "JSON results"
    }
    fn write(&self, report: &RunReport, out: &Path) -> Result<Wrote, ReportError> {
        crate::atomic::write(out, report.to_json().as_bytes())?;
        Ok(wrote(self.name(), out))
    }
}

/// JUnit XML (`junit.xml`), a case per trial (see [`crate::junit::from_report`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Junit;

impl Reporter for Junit {
    fn name(&self) -> &'static str {
        "JUnit XML"
    }
    fn write(&self, report: &RunReport, out: &Path) -> Result<Wrote, ReportError> {
        let run = crate::junit::from_report(report);
        let xml = crate::junit::render_junit(&run)?;
        crate::atomic::write(out, xml.as_bytes())?;
        Ok(wrote(self.name(), out))
    }
}

pub use crate::markdown::Markdown;

/// The Markdown summary (`l1 report --markdown`), for a CI step summary or a pull-request
/// comment (see [`crate::markdown`]).
impl Reporter for Markdown {
    fn name(&self) -> &'static str {
        "Markdown summary"
    }
    fn write(&self, report: &RunReport, out: &Path) -> Result<Wrote, ReportError> {
        crate::atomic::write(out, self.render(report).as_bytes())?;
        Ok(wrote(self.name(), out))
    }
}

/// The run's contribution to the Prometheus textfile (`l1.prom`, cumulative over runs), pushed
/// to a Pushgateway when one is given. What the model does not hold comes with the reporter.
#[derive(Clone, Debug, Default)]
pub struct Prometheus {
    /// The run's sweep mode label (`exhaustive`, `quick`, `tune`, `mixed`, `none`).
    pub mode: String,
    /// The run's wall-clock span in seconds.
    pub wall_s: f64,
    /// Tune trials per outcome, and each tune session's budget used (`spec::target` -> [0, 1]).
    pub tune_trials: BTreeMap<String, u64>,
    pub tune_budget_used: BTreeMap<String, f64>,
    /// The Pushgateway to push the exposition to (`L1_PUSHGATEWAY`), if any.
    pub pushgateway: Option<String>,
}

impl Reporter for Prometheus {
    fn name(&self) -> &'static str {
        "metrics"
    }
    fn write(&self, report: &RunReport, out: &Path) -> Result<Wrote, ReportError> {
        use crate::prometheus;
        let mut contribution =
            prometheus::RunContribution::from_report(report, &self.mode, self.wall_s);
        contribution.tune_trials = self.tune_trials.clone();
        contribution.tune_budget_used = self.tune_budget_used.clone();
        let exposition = prometheus::update_textfile(out, &report.run_id, contribution)?;
        let mut w = wrote(self.name(), out);
        if let Some(g) = &self.pushgateway
            && let Err(e) = prometheus::push(g, &prometheus::instance_name(), &exposition)
        {
            w.warnings.push(e.to_string());
        }
        Ok(w)
    }
}
