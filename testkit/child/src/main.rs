//! `l1-test-child`: the child process of the harness tests that need a fresh process per run
//! (a run resumed after SIGKILL, the store and cache across runs, SIGTERM delivery). It plans
//! every spec under `<dir>/specs` exactly as a test runner's process of the `kernels` target
//! would (results under `<dir>/target`, the run id from `L1_RUN_ID`), runs the trials in order
//! and prints one `TRIAL\t<name>\t<pass|fail>\t<message>` line per trial (see
//! `l1_testkit::child`).
//!
//! Usage: `l1-test-child --root <repo> --dir <scratch> [--engines <dir>]`. Exit status 0 when
//! every spec planned (trial failures are reported in the lines, not the status), 2 on bad
//! arguments or spec errors. Test-only: a workspace member that l1's install never includes.

use std::path::PathBuf;
use std::process::ExitCode;

use l1_harness::suite::{self, Settings};

struct Args {
    root: PathBuf,
    dir: PathBuf,
    engines: Option<PathBuf>,
}

fn parse(mut args: impl Iterator<Item = std::ffi::OsString>) -> Result<Args, String> {
    let (mut root, mut dir, mut engines) = (None, None, None);
    while let Some(flag) = args.next() {
        let slot = match flag.to_str() {
            Some("--root") => &mut root,
            Some("--dir") => &mut dir,
            Some("--engines") => &mut engines,
            _ => return Err(format!("unknown argument {flag:?}")),
        };
        let value = args
            .next()
            .ok_or_else(|| format!("{flag:?} needs a value"))?;
        *slot = Some(PathBuf::from(value));
    }
    Ok(Args {
        root: root.ok_or("--root is required")?,
        dir: dir.ok_or("--dir is required")?,
        engines,
    })
}

fn main() -> ExitCode {
    let args = match parse(std::env::args_os().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "l1-test-child: {e}\nusage: l1-test-child --root <repo> --dir <scratch> [--engines <dir>]"
            );
            return ExitCode::from(2);
        }
    };
    let mut settings = Settings::new(&args.root, args.dir.join("specs"), args.dir.join("target"));
    if let Some(e) = args.engines {
        settings.engines_dir = e;
    }
    let (trials, errors) = suite::plan(&settings, None);
    if !errors.is_empty() {
        for (name, e) in &errors {
            eprintln!("l1-test-child: {name}: {e}");
        }
        return ExitCode::from(2);
    }
    for t in trials {
        let name = t.name.clone();
        let result = t.execute().map_err(|e| e.to_string());
        println!("{}", l1_testkit::trial_line(&name, &result));
    }
    ExitCode::SUCCESS
}
