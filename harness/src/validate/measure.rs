//! Range checks of `measure`: reps, trim, warm-up, early termination, launches, noise
//! overrides and the startup timeout.

use super::at;
use crate::diag::Diagnostic;
use crate::spec::LoadedSpec;
use crate::stats;

/// The most reps a measurement may plan (`reps`, `min_reps`, `max_reps`): each rep is a whole
/// workload run against a launched engine, and 10,000 reps already narrow an interval about 38
/// times compared with the default 7; a larger number is a typo or a study to split into runs.
pub const MAX_REPS: u32 = 10_000;

/// The most warm-up reps per launch: whole reps whose results are discarded.
pub const MAX_WARMUP_REPS: u32 = 1_000;

/// Every problem of `measure` is pushed to `errs`.
pub(super) fn check(ls: &LoadedSpec, errs: &mut Vec<Diagnostic>) {
    let m = &ls.doc.measure;
    let at_field = |message: String, field: &str| ls.diag_key(message, &at!["measure", field]);
    let out_of_range = |field: &str, value: String, expected: String| {
        at_field(format!("measure.{field} {value} is out of range"), field)
            .field(format!("measure.{field}"))
            .expected(expected)
    };
    let trim_ok = (0.0..0.5).contains(&m.trim);
    if !trim_ok {
        errs.push(
            at_field(format!("trim fraction {} is out of range", m.trim), "trim")
                .field("measure.trim")
                .expected("a fraction in [0, 0.5)"),
        );
    }
    if m.reps > MAX_REPS {
        errs.push(out_of_range(
            "reps",
            m.reps.to_string(),
            format!("at most {MAX_REPS} reps (each rep is a whole workload run; split a longer study into several runs)"),
        ));
    } else if trim_ok && let Err(e) = stats::check_reps(m.reps as usize, m.trim) {
        errs.push(
            at_field(e.to_string(), "reps")
                .field("measure.reps")
                .expected("enough reps to keep at least 2 after trimming"),
        );
    }
    if m.warmup_reps > MAX_WARMUP_REPS {
        errs.push(out_of_range(
            "warmup_reps",
            m.warmup_reps.to_string(),
            format!("0 to {MAX_WARMUP_REPS} warm-up reps per launch (whole reps, discarded)"),
        ));
    }
    for (field, v) in [("min_reps", m.min_reps), ("max_reps", m.max_reps)] {
        if let Some(v) = v
            && v > MAX_REPS
        {
            errs.push(out_of_range(
                field,
                v.to_string(),
                format!("at most {MAX_REPS} reps (each rep is a whole workload run)"),
            ));
        }
    }
    let seq_in_range =
        m.min_reps.is_none_or(|v| v <= MAX_REPS) && m.max_reps.is_none_or(|v| v <= MAX_REPS);
    if m.min_reps.is_some() && m.max_reps.is_none() {
        errs.push(
            at_field("`min_reps` without `max_reps`".into(), "min_reps")
                .field("measure.min_reps")
                .expected(
                    "`max_reps` as well: early termination runs between min_reps and max_reps",
                ),
        );
    }
    if let Some((lo, hi)) = m.sequential()
        && seq_in_range
    {
        if lo < 3 || lo > hi {
            errs.push(
                at_field(
                    format!("early termination between {lo} and {hi} reps is not a valid plan"),
                    "min_reps",
                )
                .field("measure.min_reps")
                .expected("3 <= min_reps <= max_reps"),
            );
        } else if trim_ok && let Err(e) = stats::check_reps(lo as usize, m.trim) {
            errs.push(
                at_field(format!("min_reps: {e}"), "min_reps")
                    .field("measure.min_reps")
                    .expected("enough reps at the first look to keep at least 2 after trimming"),
            );
        }
    }
    // Every launch runs at least one rep (rep i runs on launch i mod launches).
    let full = m.full_reps();
    if m.launches == 0 || (m.launches > full && full <= MAX_REPS) {
        errs.push(out_of_range(
            "launches",
            m.launches.to_string(),
            format!(
                "1 to {} launches (at most one per rep: the reps are spread over the launches, so every launch runs at least one)",
                full.clamp(1, MAX_REPS)
            ),
        ));
    }
    for (field, v) in [("noise_floor", m.noise_floor), ("launch_cv", m.launch_cv)] {
        if v.is_some_and(|x| !(0.0..0.5).contains(&x)) {
            errs.push(
                at_field(
                    format!("measure.{field} {} is out of range", v.unwrap_or_default()),
                    field,
                )
                .field(format!("measure.{field}"))
                .expected("a coefficient of variation in [0, 0.5), e.g. 0.02 for 2 %"),
            );
        }
    }
    if let Some(t) = m.startup_timeout_s
        && !(t > 0.0 && t <= 86_400.0)
    {
        errs.push(
            at_field(
                format!("measure.startup_timeout_s {t} is out of range"),
                "startup_timeout_s",
            )
            .field("measure.startup_timeout_s")
            .expected("seconds in (0, 86400], e.g. 600 for a large model"),
        );
    }
}
