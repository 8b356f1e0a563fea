//! The one validation stage: every check of a parsed spec document — targets, space, baseline,
//! measure, gates (fidelity thresholds included) and the kind's own settings — against the
//! catalogs, each error located from the parsed document's spans; what passes becomes the typed
//! [`Spec`], whose kind carries the settings only that kind takes. It collects every
//! independent error of a spec (up to [`MAX_ERRORS_PER_FILE`](crate::diag::MAX_ERRORS_PER_FILE))
//! in one pass; checks that depend on an earlier part (knobs on the engines) are skipped when
//! that part is wrong. Expansion runs only on what passes, and reads the typed spec and the
//! resolved parts from [`Valid`].

mod gates;
mod measure;
mod space;
mod targets;
mod tune;

use std::collections::BTreeMap;

use crate::diag::Diagnostic;
use crate::profiles::Catalogs;
use crate::selection::Selection;
use crate::spec::{LoadedSpec, Spec};

pub use measure::{MAX_REPS, MAX_WARMUP_REPS};

/// A path into the spec document: `at!["gates", i, "margin"]`.
macro_rules! at {
    ($($step:expr),* $(,)?) => {
        [$(crate::yaml::Step::from($step)),*]
    };
}
pub(crate) use at;

/// What expansion needs from a spec that passed validation.
#[derive(Clone, Debug)]
pub struct Valid {
    /// The typed spec: its kind with that kind's settings.
    pub spec: Spec,
    /// The target engines as `(name, version)`, in the spec's order.
    pub engines: Vec<(String, String)>,
    /// Dimension -> selection, from `dims` and `pins` together.
    pub selections: BTreeMap<String, Selection>,
    /// The baseline combo's dimensions (empty for `engine-default`).
    pub baseline_dims: BTreeMap<String, String>,
}

/// Check `ls` against `cats` and type it: every error of the spec in one diagnostic, or the
/// typed spec and what expansion needs.
pub fn validate(ls: &LoadedSpec, cats: &Catalogs) -> Result<Valid, Diagnostic> {
    let mut errs: Vec<Diagnostic> = Vec::new();
    let (engines, engines_ok) = targets::engines(ls, cats, &mut errs);
    targets::names(ls, cats, &mut errs);
    let space = space::Checker {
        ls,
        cat: &cats.kernels,
        dims: cats.kernels.catalog.dimensions.keys().cloned().collect(),
        engines: &engines,
    };
    let selections = space.selections(&mut errs);
    if engines_ok {
        space.exposed(&selections, &mut errs);
        space.knobs(&mut errs);
    }
    measure::check(ls, &mut errs);
    let kind = tune::kind(ls);
    if let Err(d) = &kind {
        errs.push(d.clone());
    }
    gates::check(ls, &mut errs);
    let baseline_dims = space.baseline(&mut errs);
    match (Diagnostic::combine(errs), kind) {
        (None, Ok(kind)) => Ok(Valid {
            spec: Spec::new(&ls.doc, kind),
            engines,
            selections,
            baseline_dims,
        }),
        (Some(d), _) | (None, Err(d)) => Err(d),
    }
}

#[cfg(test)]
mod tests;
