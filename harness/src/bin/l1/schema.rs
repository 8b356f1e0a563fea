//! `l1 schema`: print the JSON Schema of spec files, generated from the spec document types
//! (the committed copy, `docs/src/specs/spec.schema.json`, is this output).

use std::io::Write as _;
use std::process::ExitCode;

pub fn run() -> ExitCode {
    // A closed stdout (`l1 schema | head`) ends the program quietly, as `out!` does.
    let _ = std::io::stdout().write_all(l1_harness::spec::schema::text().as_bytes());
    ExitCode::SUCCESS
}
