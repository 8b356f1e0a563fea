//! Real external validators the tests (and CI) run on the reports: a headless Chromium for the
//! HTML page, Python's `jsonschema` for `results.json`, `promtool` for metrics and alert rules,
//! `markdownlint-cli2` for the Markdown summary.
//!
//! Each returns [`CheckError::Missing`] when its tool is not installed; [`require_or_skip`]
//! turns that into a printed skip, or a failure under `L1_REQUIRE_ENGINES=1` (how CI runs).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The Chromium driver script (Node, playwright-core).
pub const BROWSER_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/browser/check-report.cjs"
);

/// The results schema file.
pub const RESULTS_SCHEMA_PATH: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/schema/results-v1.schema.json");

/// Why a check did not pass.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{0} is not installed")]
    Missing(String),
    #[error("failed to run {tool}: {source}")]
    Io {
        tool: &'static str,
        source: std::io::Error,
    },
    #[error("{tool} rejected it:\n{output}")]
    Failed { tool: &'static str, output: String },
}

/// Whether a missing tool fails a check: `L1_REQUIRE_ENGINES` is `1` or `true` (any case), the
/// rule the harness's settings (`l1_harness::settings::flag`) and `l1_testkit` apply (this crate
/// depends on neither, so it reads the variable itself).
pub fn engines_required() -> bool {
    std::env::var("L1_REQUIRE_ENGINES")
        .is_ok_and(|v| v.trim() == "1" || v.trim().eq_ignore_ascii_case("true"))
}

/// With `L1_REQUIRE_ENGINES=1` a missing tool is a failure; otherwise print why the check is
/// skipped and return `false`. Other errors panic (the check failed). `true` when it passed.
pub fn require_or_skip(what: &str, r: Result<(), CheckError>) -> bool {
    match r {
        Ok(()) => true,
        Err(CheckError::Missing(tool)) if !engines_required() => {
            eprintln!(
                "skipping {what}: {tool} is not installed (see .ci/run; required when L1_REQUIRE_ENGINES=1)"
            );
            false
        }
        Err(e) => panic!("{what} failed: {e}"),
    }
}

/// Where the Node modules for the browser check live: `L1_NODE_MODULES`, else
/// `~/.cache/l1/node/node_modules` (what `.ci/run` installs).
pub fn node_modules() -> PathBuf {
    std::env::var_os("L1_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            Path::new(&home).join(".cache/l1/node/node_modules")
        })
}

/// What [`check_in_browser`] checks besides the defaults.
#[derive(Clone, Debug, Default)]
pub struct BrowserOptions<'a> {
    /// The page must show the simulated banner.
    pub expect_sim: bool,
    /// The run's `results.json`: the summary's verdict lines must show its numbers (winner,
    /// change vs baseline, interval).
    pub results: Option<&'a Path>,
    /// Also write a screenshot of the summary section here.
    pub summary_shot: Option<&'a Path>,
}

/// Open `html` in headless Chromium, check it (no console errors, no network, key elements,
/// sorting by click, nothing overflowing its box, no serious or critical axe-core violation,
/// verdict lines equal to `results.json`) and write a full-page screenshot. Returns the
/// driver's JSON report.
pub fn check_in_browser(
    html: &Path,
    screenshot: &Path,
    opts: &BrowserOptions<'_>,
) -> Result<serde_json::Value, CheckError> {
    let chromium = std::env::var_os("L1_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/chromium".into());
    if !chromium.exists() {
        return Err(CheckError::Missing(format!(
            "chromium ({}; Debian package chromium)",
            chromium.display()
        )));
    }
    let modules = node_modules();
    for module in ["playwright-core", "axe-core"] {
        if !modules.join(module).is_dir() {
            return Err(CheckError::Missing(format!(
                "{module} (npm, under {})",
                modules.display()
            )));
        }
    }
    let profile = std::env::temp_dir().join(format!(
        "l1-chromium-{}-{}",
        std::process::id(),
        screenshot
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let _ = std::fs::remove_dir_all(&profile);
    if let Some(dir) = screenshot.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let mut cmd = Command::new("node");
    cmd.arg(BROWSER_SCRIPT)
        .arg(html)
        .arg(screenshot)
        .arg(&profile)
        .env("NODE_PATH", &modules);
    if opts.expect_sim {
        cmd.arg("--expect-sim");
    }
    if let Some(r) = opts.results {
        cmd.arg("--results").arg(r);
    }
    if let Some(s) = opts.summary_shot {
        cmd.arg("--summary-shot").arg(s);
    }
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CheckError::Missing("node (Node.js)".into()));
        }
        Err(source) => {
            return Err(CheckError::Io {
                tool: "node",
                source,
            });
        }
    };
    let _ = std::fs::remove_dir_all(&profile);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Option<serde_json::Value> = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok());
    match report {
        Some(r) if out.status.success() && r["ok"] == true => Ok(r),
        Some(r) if r.get("missing").is_some() => Err(CheckError::Missing(format!(
            "{} (npm)",
            r["missing"].as_str().unwrap_or("a node module")
        ))),
        _ => Err(CheckError::Failed {
            tool: "chromium",
            output: format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)),
        }),
    }
}

const JSONSCHEMA_PY: &str = r#"
import json, sys
try:
    import jsonschema
except ImportError:
    print("MISSING"); sys.exit(3)
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
doc = json.load(sys.stdin)
errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
for e in errors:
    print("/" + "/".join(str(p) for p in e.path) + ": " + e.message)
sys.exit(1 if errors else 0)
"#;

/// Validate `json` against `schema` (a file) with Python's `jsonschema` (Draft 2020-12).
pub fn validate_json_schema(json: &str, schema: &Path) -> Result<(), CheckError> {
    let mut cmd = Command::new("python3");
    cmd.args(["-c", JSONSCHEMA_PY]).arg(schema);
    let (ok, text) = run_tool(cmd, "python3", "python3", Some(json.as_bytes()))?;
    if ok {
        Ok(())
    } else if text.trim() == "MISSING" {
        Err(CheckError::Missing(
            "python3-jsonschema (pip install jsonschema)".into(),
        ))
    } else {
        Err(CheckError::Failed {
            tool: "jsonschema",
            output: text,
        })
    }
}

/// `promtool check <kind> FILE` (`metrics` reads stdin, so it gets the file's text there).
pub fn promtool(kind: &str, file: &Path) -> Result<(), CheckError> {
    let mut cmd = Command::new("promtool");
    cmd.args(["check", kind]);
    let input = if kind == "metrics" {
        Some(std::fs::read(file).map_err(|source| CheckError::Io {
            tool: "promtool",
            source,
        })?)
    } else {
        cmd.arg(file);
        None
    };
    let (ok, text) = run_tool(
        cmd,
        "promtool",
        "promtool (Debian package prometheus)",
        input.as_deref(),
    )?;
    // `check metrics` prints lint findings (and still exits 0 for some): any output is a finding.
    let clean = kind != "metrics" || text.trim().is_empty();
    if ok && clean {
        Ok(())
    } else {
        Err(CheckError::Failed {
            tool: "promtool",
            output: text,
        })
    }
}

/// The rules the Markdown summary is linted with: markdownlint's defaults, less the line
/// length (tables and names are long by nature), `<sub>` allowed (the legend), and no top-level
/// heading first (the summary is a fragment of a step summary or a comment).
pub const MARKDOWNLINT_CONFIG: &str = r#"{ "config": { "default": true, "MD013": false, "MD033": { "allowed_elements": ["sub"] }, "MD041": false } }"#;

/// `markdownlint-cli2` (npm, under [`node_modules`]) on a Markdown file, with
/// [`MARKDOWNLINT_CONFIG`].
pub fn markdownlint(file: &Path) -> Result<(), CheckError> {
    let bin = node_modules().join(".bin/markdownlint-cli2");
    if !bin.exists() {
        return Err(CheckError::Missing(format!(
            "markdownlint-cli2 (npm, under {})",
            node_modules().display()
        )));
    }
    let io = |source| CheckError::Io {
        tool: "markdownlint-cli2",
        source,
    };
    let dir = tempfile::tempdir().map_err(io)?;
    let config = dir.path().join(".markdownlint-cli2.jsonc");
    std::fs::write(&config, MARKDOWNLINT_CONFIG).map_err(io)?;
    let mut cmd = Command::new(&bin);
    cmd.arg("--config").arg(&config).arg(file);
    let (ok, text) = run_tool(cmd, "markdownlint-cli2", "markdownlint-cli2 (npm)", None)?;
    if ok {
        Ok(())
    } else {
        Err(CheckError::Failed {
            tool: "markdownlint-cli2",
            output: text,
        })
    }
}

/// Run `cmd` with `input` on its stdin (none: stdin closed at once): whether it exited 0, and its
/// stdout then stderr. A missing program is [`CheckError::Missing`] naming `package`.
fn run_tool(
    mut cmd: Command,
    tool: &'static str,
    package: &str,
    input: Option<&[u8]>,
) -> Result<(bool, String), CheckError> {
    let io = |source| CheckError::Io { tool, source };
    let mut child = match cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CheckError::Missing(package.into()));
        }
        Err(source) => return Err(io(source)),
    };
    if let Some(mut stdin) = child.stdin.take()
        && let Some(bytes) = input
    {
        stdin.write_all(bytes).map_err(io)?;
    }
    let out = child.wait_with_output().map_err(io)?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}
