//! `l1 preview`: how many combos each mode would run for a spec, which ones (with the sim
//! engine's predicted metrics), and what the rules rejected.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use l1_harness::expand;
use l1_harness::profiles::Catalogs;
use l1_harness::spec::{self, Mode};
use l1_harness::suite::combo_slug;

use crate::common::context;

pub fn run(json: bool, root: &Path, path: &Path, combos: bool) -> Result<ExitCode> {
    let cats = Catalogs::load(root).map_err(|d| anyhow::anyhow!("{d}"))?;
    let ctx = context(&cats);
    let ls = match spec::load(path, &ctx) {
        Ok(l) => l,
        Err(d) => {
            eprintln!("{d}");
            return Ok(ExitCode::from(1));
        }
    };
    let mut out = Vec::new();
    for mode in [Mode::Exhaustive, Mode::Quick] {
        let mut l = ls.clone();
        // A tune spec searches every legal combo whatever the mode (validation refuses a
        // written `mode: quick`), so only a sweep's mode is set.
        if l.doc.kind == spec::KindName::Sweep {
            l.doc.space.mode = Some(mode);
        }
        let ex = match expand::expand(&l, &cats) {
            Ok(e) => e,
            Err(d) => {
                eprintln!("{d}");
                return Ok(ExitCode::from(1));
            }
        };
        for t in &ex.targets {
            let mut rejected: BTreeMap<String, usize> = BTreeMap::new();
            for r in &t.rejected(&cats) {
                for x in &r.rejections {
                    *rejected
                        .entry(format!("{} ({})", x.rule, x.reason))
                        .or_default() += 1;
                }
            }
            // The sim engine's prediction for each combo on the target's declared
            // hardware, model and workload: what the sweep would find, before it runs.
            let sim_target = l1_engines::sim::SimTarget {
                model: &cats.models[&t.id.model],
                hardware: &cats.hardware[&t.id.hardware],
                workload: &cats.workloads[&t.id.workload],
            };
            let predicted: Vec<serde_json::Value> = t
                .combos()
                .iter()
                .map(|c| {
                    let m = l1_engines::sim::truth(&sim_target, c).ok();
                    let get = |k: &str| m.as_ref().and_then(|m| m.get(k).copied());
                    serde_json::json!({
                        "combo": combo_slug(&cats, c),
                        "baseline": *c == t.baseline,
                        "predicted_output_tokens_per_s": get("output_tokens_per_s"),
                        "predicted_ttft_p95_ms": get("ttft_p95_ms"),
                    })
                })
                .collect();
            out.push(serde_json::json!({
                "mode": mode.to_string(),
                "target": t.id.to_string(),
                "selected": t.combo_count(),
                "legal": t.legal,
                "rejected": rejected,
                "combos": predicted,
            }));
        }
    }
    if json {
        out!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for o in &out {
            out!(
                "{:<10} {}: {} of {} legal combos",
                o["mode"].as_str().unwrap_or(""),
                o["target"].as_str().unwrap_or(""),
                o["selected"],
                o["legal"]
            );
            if let Some(r) = o["rejected"].as_object() {
                for (rule, n) in r {
                    out!("           rejected {n}: {rule}");
                }
            }
            if combos {
                out!(
                    "           {:>14} {:>14}  combo (sim prediction on the declared hardware)",
                    "tok/s",
                    "ttft p95 ms"
                );
                for c in o["combos"].as_array().into_iter().flatten() {
                    let num =
                        |k: &str| c[k].as_f64().map_or("-".to_string(), |v| format!("{v:.1}"));
                    out!(
                        "           {:>14} {:>14}  {}{}",
                        num("predicted_output_tokens_per_s"),
                        num("predicted_ttft_p95_ms"),
                        c["combo"].as_str().unwrap_or(""),
                        if c["baseline"].as_bool() == Some(true) {
                            " (baseline)"
                        } else {
                            ""
                        }
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
