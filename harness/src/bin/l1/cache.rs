//! `l1 cache stats | flush`: the measurement cache in the results store.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Subcommand;
use l1_harness::results;
use l1_harness::settings::Settings;
use l1_reports::dates::parse_since;
use l1_store::CacheFilter;

use crate::common::open;

#[derive(Subcommand)]
pub enum CacheAction {
    /// Valid, expired and flushed entries, hits and misses.
    Stats,
    /// Stop entries from answering lookups (they stay in the history). Give a filter or `--all`.
    Flush {
        /// Only entries of this engine (`vllm`, `sim`, ...).
        #[arg(long)]
        engine: Option<String>,
        /// Only entries of this model.
        #[arg(long)]
        model: Option<String>,
        /// Only entries of this hardware profile.
        #[arg(long)]
        hardware: Option<String>,
        /// Only entries measured for this spec.
        #[arg(long)]
        spec: Option<String>,
        /// Only entries measured before this time (same forms as `runs list --since`).
        #[arg(long)]
        before: Option<String>,
        /// Flush every entry.
        #[arg(long)]
        all: bool,
    },
}

pub fn run(json: bool, settings: &Settings, action: &CacheAction) -> Result<ExitCode> {
    let mut store = open(settings)?;
    let now = l1_store::now_unix();
    match action {
        CacheAction::Stats => {
            let s = store.cache_stats(now)?;
            let mode = results::cache_mode().map_err(anyhow::Error::msg)?;
            let rate = if s.hits + s.misses > 0 {
                s.hits as f64 / (s.hits + s.misses) as f64
            } else {
                0.0
            };
            if json {
                out!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "store": store.location().display(),
                        "mode": format!("{mode:?}").to_lowercase(),
                        "ttl_days": l1_store::CACHE_TTL_S / 86_400.0,
                        "valid": s.valid,
                        "expired": s.expired,
                        "flushed": s.flushed,
                        "hits": s.hits,
                        "misses": s.misses,
                        "hit_rate": rate,
                        "valid_by_engine": s.valid_by_engine.iter().map(|(e, n)| serde_json::json!({"engine": e, "valid": n})).collect::<Vec<_>>(),
                    }))?
                );
            } else {
                out!(
                    "cache in {} (L1_CACHE={}, TTL 30 days)",
                    store.location().display(),
                    format!("{mode:?}").to_lowercase()
                );
                out!(
                    "  entries: {} valid, {} expired, {} flushed",
                    s.valid,
                    s.expired,
                    s.flushed
                );
                out!(
                    "  all time: {} hits, {} real measurements offered to the cache (hit rate {:.1}%)",
                    s.hits,
                    s.misses,
                    rate * 100.0
                );
                for (e, n) in &s.valid_by_engine {
                    out!("  {e}: {n} valid");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        CacheAction::Flush {
            engine,
            model,
            hardware,
            spec,
            before,
            all,
        } => {
            let filter = CacheFilter {
                engine: engine.clone(),
                model: model.clone(),
                hardware: hardware.clone(),
                spec: spec.clone(),
                before_unix_s: before.as_deref().map(|b| parse_since(b, now)).transpose()?,
            };
            let any = filter.engine.is_some()
                || filter.model.is_some()
                || filter.hardware.is_some()
                || filter.spec.is_some()
                || filter.before_unix_s.is_some();
            if !any && !all {
                bail!(
                    "say what to flush: --engine, --model, --hardware, --spec, --before, or --all"
                );
            }
            let n = store.cache_flush(&filter, now)?;
            if json {
                out!("{}", serde_json::json!({"flushed": n}));
            } else {
                out!("flushed {n} cache entries (the measurements stay in the history)");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
