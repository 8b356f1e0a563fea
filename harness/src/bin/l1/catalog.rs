//! `l1 catalog show | snapshot | snapshots | diff | engines [ENGINE]`: the kernel catalog, its
//! recorded snapshots (files and those the store recorded with results), their differences, and
//! the book's generated engine tables.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use l1_harness::catalog::{LoadedCatalog, snapshot_path};
use l1_harness::settings::Settings;

use crate::CatalogAction;
use crate::common::{open, stamp};

pub fn run(json: bool, root: &Path, action: &CatalogAction) -> Result<ExitCode> {
    match action {
        CatalogAction::Snapshots => return snapshots(json, root, &Settings::from_env(root)),
        CatalogAction::Diff { a, b } => return diff(json, root, &Settings::from_env(root), a, b),
        CatalogAction::Show | CatalogAction::Snapshot | CatalogAction::Engines { .. } => {}
    }
    let path = root.join("catalogs").join("kernels.yaml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("failed to read {}", path.display()))?;
    let loaded = match LoadedCatalog::from_text(&path, &text) {
        Ok(l) => l,
        Err(d) => {
            eprintln!("{d}");
            return Ok(ExitCode::from(1));
        }
    };
    match action {
        // Read no current catalog (above); repeated here so the match needs no panic.
        CatalogAction::Snapshots => snapshots(json, root, &Settings::from_env(root)),
        CatalogAction::Diff { a, b } => diff(json, root, &Settings::from_env(root), a, b),
        CatalogAction::Engines { engine: None } => {
            out!("{}", l1_harness::engine_table::render(&loaded));
            Ok(ExitCode::SUCCESS)
        }
        CatalogAction::Engines {
            engine: Some(engine),
        } => match l1_harness::engine_table::render_engine(&loaded, engine) {
            Some(md) => {
                out!("{md}");
                Ok(ExitCode::SUCCESS)
            }
            None => {
                let known: Vec<&str> = loaded.catalog.engines.keys().map(String::as_str).collect();
                eprintln!(
                    "error: the catalog has no engine `{engine}` (engines: {})",
                    known.join(", ")
                );
                Ok(ExitCode::from(1))
            }
        },
        CatalogAction::Show => {
            if json {
                out!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"snapshot": loaded.snapshot, "catalog": loaded.catalog})
                    )?
                );
            } else {
                out!("catalog {} (snapshot {})", path.display(), loaded.snapshot);
                for (name, d) in &loaded.catalog.dimensions {
                    out!("  {name} ({}): {}", d.short, d.values.join(", "));
                }
                for r in &loaded.catalog.rules {
                    out!("  rule {} [{:?}]: {}", r.id, r.kind, r.reason);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        CatalogAction::Snapshot => {
            let snap = snapshot_path(&path, loaded.catalog.version);
            if let Ok(existing) = std::fs::read_to_string(&snap) {
                let old = LoadedCatalog::from_text(&snap, &existing)
                    .map_err(|d| anyhow::anyhow!("{d}"))?;
                if old.content_hash != loaded.content_hash {
                    bail!(
                        "{} already records version {} with different content; bump `version` in {} first",
                        snap.display(),
                        loaded.catalog.version,
                        path.display()
                    );
                }
                out!(
                    "snapshot {} already recorded at {}",
                    loaded.snapshot,
                    snap.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            if let Some(dir) = snap.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&snap, &text)?;
            out!(
                "recorded snapshot {} at {}",
                loaded.snapshot,
                snap.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `l1 catalog snapshots`: the snapshot files under `catalogs/snapshots/` and those the store
/// recorded with results.
fn snapshots(json: bool, root: &Path, settings: &Settings) -> Result<ExitCode> {
    let dir = root.join("catalogs").join("snapshots");
    let mut files: Vec<(String, String)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let p = e.path();
            if let Ok(text) = std::fs::read_to_string(&p)
                && let Ok(l) = LoadedCatalog::from_text(&p, &text)
            {
                files.push((l.snapshot, p.display().to_string()));
            }
        }
    }
    files.sort();
    let stored = open(settings)?.catalog_snapshots()?;
    if json {
        out!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "files": files.iter().map(|(s, p)| serde_json::json!({"snapshot": s, "path": p})).collect::<Vec<_>>(),
                "stored": stored.iter().map(|(s, v, t)| serde_json::json!({"snapshot": s, "version": v, "recorded_unix_s": t})).collect::<Vec<_>>(),
            }))?
        );
    } else {
        out!("snapshot files ({}):", dir.display());
        for (s, p) in &files {
            out!("  {s}  {p}");
        }
        out!("recorded with results in the store:");
        for (s, _, t) in &stored {
            out!("  {s}  first used {}", stamp(*t));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A catalog by name: a snapshot id (`v3-…` or `v3`) from the files or the store, `current`, or
/// a path to a catalog file.
fn text(root: &Path, settings: &Settings, name: &str) -> Result<(String, String)> {
    let current = root.join("catalogs").join("kernels.yaml");
    if name == "current" {
        let text = std::fs::read_to_string(&current)
            .with_context(|| format!("failed to read {}", current.display()))?;
        return Ok((current.display().to_string(), text));
    }
    let as_path = PathBuf::from(name);
    if as_path.is_file() {
        let text = std::fs::read_to_string(&as_path)?;
        return Ok((name.to_string(), text));
    }
    let dir = root.join("catalogs").join("snapshots");
    let mut known = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if let Ok(text) = std::fs::read_to_string(&p)
                && let Ok(l) = LoadedCatalog::from_text(&p, &text)
            {
                let version = format!("v{}", l.catalog.version);
                if l.snapshot == name || version == name {
                    return Ok((format!("{} ({})", l.snapshot, p.display()), text));
                }
                known.push(l.snapshot);
            }
        }
    }
    if let Ok(mut store) = open(settings)
        && let Ok(Some(text)) = store.catalog_snapshot(name)
    {
        return Ok((format!("{name} (from the store)"), text));
    }
    bail!(
        "no catalog `{name}`: expected `current`, a file, or a snapshot id ({})",
        known.join(", ")
    )
}

/// `l1 catalog diff A B`: a line diff of two catalogs.
fn diff(json: bool, root: &Path, settings: &Settings, a: &str, b: &str) -> Result<ExitCode> {
    let (la, ta) = text(root, settings, a)?;
    let (lb, tb) = text(root, settings, b)?;
    let diff = similar::TextDiff::from_lines(&ta, &tb);
    if json {
        let changes: Vec<_> = diff
            .iter_all_changes()
            .filter(|c| c.tag() != similar::ChangeTag::Equal)
            .map(|c| {
                serde_json::json!({
                    "op": if c.tag() == similar::ChangeTag::Delete { "-" } else { "+" },
                    "old_line": c.old_index().map(|i| i + 1),
                    "new_line": c.new_index().map(|i| i + 1),
                    "text": c.value().trim_end_matches('\n'),
                })
            })
            .collect();
        out!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"a": la, "b": lb, "changes": changes})
            )?
        );
    } else {
        out!(
            "{}",
            diff.unified_diff()
                .context_radius(2)
                .header(&la, &lb)
                .to_string()
                .trim_end()
        );
    }
    Ok(if ta == tb {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
