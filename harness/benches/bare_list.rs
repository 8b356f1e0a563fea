//! The floor for listing: a bare libtest-mimic binary with nothing but trials.
//!
//! `scripts/bench-list.py` runs it with `--list` beside the generated suite (`kernels --list`) on
//! the same trial names, so the suite's listing cost reads as a multiple of what libtest-mimic
//! itself pays. The names come from the file named by `L1_BARE_NAMES` (one per line, as
//! `kernels --list` prints them minus the `: test` suffix); without it, `L1_BARE_TRIALS` names of
//! `L1_BARE_NAME_LEN` characters are made up.

use libtest_mimic::{Arguments, Trial};

fn names() -> Vec<String> {
    if let Some(path) = std::env::var_os("L1_BARE_NAMES") {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            eprintln!("bare_list: cannot read {}: {e}", path.to_string_lossy());
            std::process::exit(2)
        });
        return text
            .lines()
            .filter_map(|l| l.strip_suffix(": test").or(Some(l)))
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
    }
    let number = |var: &str, default: usize| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (n, len) = (
        number("L1_BARE_TRIALS", 15_376),
        number("L1_BARE_NAME_LEN", 120),
    );
    (0..n)
        .map(|i| {
            let mut s = format!("trial-{i}-");
            s.extend(std::iter::repeat_n('x', len.saturating_sub(s.len())));
            s
        })
        .collect()
}

fn main() {
    let args = Arguments::from_args();
    let trials = names()
        .into_iter()
        .map(|n| Trial::test(n, || Ok(())))
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
