//! A trial's fingerprint: a hash of everything that decides what it measures or judges, so two
//! revisions' trials of one name can be compared. Computed by this binary for both revisions,
//! so any stable text of the inputs serves (it is never stored).
//!
//! - every trial of a target: the engine and version, the model, hardware and workload profile
//!   entries (as loaded, datasets and probes included; for a workload without its own probe
//!   file, the revision's bundled default probe prompts, which the binary compiles in) and the
//!   spec's `measure` settings;
//! - a combo or baseline trial: its combo (every dimension an engine exposes, and its knobs).
//!   The engine's translation of it (argv, environment, config files) is a function of the
//!   engine, version, combo and profiles computed by the same code for both revisions, so these
//!   inputs stand for it; a change of the translator's code is a changed path
//!   ([`super::classify`]). The translation itself is not run: some translators reserve free
//!   ports, which would make fingerprints differ between two runs;
//! - a gate or tune trial: the spec's settings other than its name, description, targets and
//!   space (gates, baseline, tune settings, …) and the fingerprints of every combo and the
//!   baseline of the target.
//!
//! Not in it: the catalog's version and snapshot id (a catalog edit that leaves a combo's
//! legality and translation alone does not change what it measures), the spec's description,
//! and whether the trial runs on this machine.

use std::fmt::Write as _;

use l1_engines::combo::UNSET;
use l1_engines::{Combo, Workload};
use sha2::{Digest, Sha256};

use crate::expand::TargetId;
use crate::profiles::Catalogs;

/// A short hex digest of `text`.
pub fn digest(text: &str) -> String {
    let d = Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(24);
    for b in &d[..12] {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The bundled default probe prompts of a revision (`catalogs/probes/default.jsonl`, which
/// `l1_engines::probe` compiles in), as a digest; empty when the revision has none.
pub fn default_probes(cats: &Catalogs) -> String {
    std::fs::read_to_string(cats.root.join(DEFAULT_PROBES))
        .map(|t| digest(&t))
        .unwrap_or_default()
}

/// Where the bundled default probe prompts live in a revision.
pub const DEFAULT_PROBES: &str = "catalogs/probes/default.jsonl";

/// Whether a workload's probes are the bundled default (no `probes:`, or one without a file).
pub fn uses_default_probes(w: &Workload) -> bool {
    w.probes.as_ref().is_none_or(|p| p.prompts.is_empty())
}

/// The part common to every trial of target `id`; `default_probes` is the revision's
/// [`default_probes`].
pub fn target_part(cats: &Catalogs, id: &TargetId, measure: &str, default_probes: &str) -> String {
    let workload = cats.workloads.get(&id.workload);
    let probes = if workload.is_some_and(uses_default_probes) {
        default_probes
    } else {
        ""
    };
    format!(
        "target={id}\nmodel={:?}\nhardware={:?}\nworkload={workload:?}\ndefault_probes={probes}\nmeasure={measure}\n",
        cats.models.get(&id.model),
        cats.hardware.get(&id.hardware),
    )
}

/// A combo's (or the baseline's) fingerprint.
pub fn combo(target: &str, combo: &Combo, leaf: &str) -> String {
    digest(&format!(
        "{target}leaf={leaf}\ncombo={:?} {:?}\n",
        // `unset` dimensions are left out, as in trial names: a catalog dimension an engine
        // does not expose changes nothing it measures.
        combo
            .dims
            .iter()
            .filter(|(_, v)| v.as_str() != UNSET)
            .collect::<Vec<_>>(),
        combo.knobs
    ))
}

/// A gate's or tune session's fingerprint: the spec's judging settings and every measurement
/// it reads.
pub fn judge(target: &str, leaf: &str, settings: &str, members: &[String]) -> String {
    let mut sorted: Vec<&String> = members.iter().collect();
    sorted.sort();
    digest(&format!(
        "{target}leaf={leaf}\nsettings={settings}\nmembers={sorted:?}\n"
    ))
}
