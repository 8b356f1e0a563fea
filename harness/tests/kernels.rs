//! The generated kernel-configuration suite: one test per legal combo of every target of every
//! spec under `specs/` (or `L1_SPECS`), plus a baseline and a gate test per target.
//! See the book (docs/src/test-names.md) for the name grammar.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    l1_harness::harness::main(root)
}
