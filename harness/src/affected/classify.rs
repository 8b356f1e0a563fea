//! What kind of path a change touched: data that expanding both revisions judges (specs,
//! catalogs, profiles), an engine's translator, documentation, or something l1 cannot classify.

use serde::Serialize;

/// The kind of a changed path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PathKind {
    /// Under `specs/`: judged by expanding both revisions.
    Spec,
    /// Under `catalogs/` (kernels, profiles, datasets, probes, snapshots): judged by expanding
    /// both revisions.
    Catalog,
    /// An engine's own module (`engines/src/<engine>.rs` or `engines/src/<engine>/`): its
    /// translation and launch, so every trial of that engine.
    Translator { engine: String },
    /// Documentation (`docs/`, any `*.md`): no trial.
    Docs,
    /// Anything else (the harness, shared engine code, `Cargo.lock`, CI files, …): l1 cannot
    /// tell which trials it changes, so it selects every trial.
    Unclassified,
}

/// Classify `path` (relative to the l1 root, `/`-separated); `engines` are the engine names of
/// this build's table.
pub fn classify(path: &str, engines: &[&str]) -> PathKind {
    let lower = path.to_ascii_lowercase();
    if path.starts_with("docs/") || lower.ends_with(".md") {
        return PathKind::Docs;
    }
    if path.starts_with("specs/") {
        return PathKind::Spec;
    }
    if path.starts_with("catalogs/") {
        return PathKind::Catalog;
    }
    if let Some(rest) = path.strip_prefix("engines/src/") {
        let module = match rest.split_once('/') {
            Some((dir, _)) => Some(dir),
            None => rest.strip_suffix(".rs"),
        };
        if let Some(m) = module.filter(|m| engines.contains(m)) {
            return PathKind::Translator {
                engine: m.to_string(),
            };
        }
    }
    PathKind::Unclassified
}

/// The engine names of this build's engine table.
pub fn engine_names() -> Vec<&'static str> {
    l1_engines::registry::ENGINES
        .iter()
        .map(|e| e.name())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_classified_by_role() {
        let engines = ["sim", "vllm", "triton"];
        let c = |p: &str| classify(p, &engines);
        assert_eq!(c("docs/src/ci.md"), PathKind::Docs);
        assert_eq!(c("README.md"), PathKind::Docs);
        assert_eq!(c("harness/NOTES.MD"), PathKind::Docs);
        assert_eq!(c("specs/sim/a.yaml"), PathKind::Spec);
        assert_eq!(c("catalogs/models.yaml"), PathKind::Catalog);
        assert_eq!(
            c("engines/src/vllm.rs"),
            PathKind::Translator {
                engine: "vllm".into()
            }
        );
        assert_eq!(
            c("engines/src/triton/config.rs"),
            PathKind::Translator {
                engine: "triton".into()
            }
        );
        // Shared engine code, the harness, the lock file: every trial.
        for p in [
            "engines/src/server.rs",
            "engines/src/translate.rs",
            "engines/src/vllm_extra/x.rs",
            "harness/src/expand/mod.rs",
            "Cargo.lock",
            "ci/github/pr.yml",
        ] {
            assert_eq!(c(p), PathKind::Unclassified, "{p}");
        }
    }
}
