//! Skips that CI turns into failures: a test whose engine, tool or server is not installed
//! prints why and passes as a skip on a developer's machine, but fails under
//! `L1_REQUIRE_ENGINES=1` (how CI runs), where nothing may pass unchecked.

/// Whether missing engines and tools fail tests: `L1_REQUIRE_ENGINES` is `1` or `true` (any
/// case), the rule the harness's settings apply to the same variable (`l1_harness::settings::flag`).
pub fn require_engines() -> bool {
    std::env::var("L1_REQUIRE_ENGINES")
        .is_ok_and(|v| v.trim() == "1" || v.trim().eq_ignore_ascii_case("true"))
}

/// Skip for `why` (printed), returning `None`.
///
/// # Panics
///
/// Under [`require_engines`], with `why` in the message.
pub fn skip<T>(why: &str) -> Option<T> {
    if require_engines() {
        panic!("L1_REQUIRE_ENGINES is set but {why}");
    }
    eprintln!("skipped: {why}");
    None
}
