//! The saved formats: what a run writes and every reader (reports, the store, `l1 runs`)
//! reads back — target ids, measurement and trial records, plans and start markers, gate
//! verdicts and their rows, stop reasons, calibrations, fidelity verdicts and the event stream.
//!
//! This layer depends on nothing else in the crate (only std, serde and `l1_engines`' data
//! types): every other module may use it, so it can never be part of an import cycle
//! (`harness/tests/architecture.rs` checks both). Serialized field names and order are the
//! record format; changing them is a schema change ([`RECORD_SCHEMA_VERSION`]).

pub mod calibration;
pub mod design;
pub mod event;
pub mod fidelity;
pub mod measurement;
pub mod run;
pub mod target;
pub mod trial;
pub mod verdict;

pub use calibration::Calibration;
pub use design::{Design, StopReason};
pub use event::Event;
pub use fidelity::{ComboFidelity, Limits, Measures, PRECISION_NAMES, Precision};
pub use measurement::{CacheHit, Fingerprints, MeasurementRecord};
pub use run::{PlanRecord, PlanStatus, PlannedEntry, StartedMarker};
pub use target::TargetId;
pub use trial::{TrialRecord, UsedSettings};
pub use verdict::{Arm, FIDELITY_METRIC, GateVerdict, Inconclusive, MissingMetric, Row};

/// Bumped on any breaking change of the record format.
pub const RECORD_SCHEMA_VERSION: u32 = 1;

/// The harness version, recorded with every result.
pub const HARNESS_VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(test)]
mod tests {
    use super::*;

    /// A trial record as the harness wrote it before records said what the run used: it reads,
    /// and writes back byte for byte (a NaN trimmed mean is `null` both ways).
    const OLD_TRIAL: &str = r#"{
  "schema_version": 1,
  "run_id": "r1",
  "name": "s::sim@1.0::m::h::w::gate",
  "spec": "s",
  "target": {
    "engine": "sim",
    "version": "1.0",
    "model": "m",
    "hardware": "h",
    "workload": "w"
  },
  "kind": "gate",
  "passed": false,
  "message": "topk5 failed",
  "measurement": null,
  "gates": [
    {
      "method": "topk5",
      "passed": false,
      "message": "topk5 failed",
      "winner": "a=1",
      "p_best": 0.5,
      "rows": [
        {
          "combo": "a=1",
          "metric": "fidelity",
          "trimmed_mean": null,
          "improvement": 1.02,
          "improvement_ci": [
            0.99,
            1.05
          ],
          "yuen_p": 0.3,
          "adjusted_p": null,
          "hedges_g": 0.4,
          "mde": 0.08,
          "reps": 7,
          "on_frontier": false,
          "note": "",
          "fidelity": null
        }
      ],
      "established_winner": null,
      "inconclusive": {
        "combo": "a=1",
        "metric": "output_tokens_per_s",
        "mde": 0.2,
        "max_mde": 0.1,
        "suggestion": {
          "reps": 20,
          "launches": 1
        },
        "message": "inconclusive"
      }
    }
  ],
  "simulated": true,
  "duration_s": 1.5
}"#;

    #[test]
    fn an_old_trial_record_reads_and_writes_back_unchanged() {
        let r: TrialRecord = serde_json::from_str(OLD_TRIAL).unwrap();
        assert!(r.used.is_none());
        assert!(r.gates[0].rows[0].trimmed_mean.is_nan());
        assert_eq!(serde_json::to_string_pretty(&r).unwrap(), OLD_TRIAL);
    }

    #[test]
    fn what_the_run_used_round_trips() {
        let mut r: TrialRecord = serde_json::from_str(OLD_TRIAL).unwrap();
        let used = UsedSettings {
            trim: 0.2,
            mode: "quick".into(),
            reps: 9,
            gates: vec!["topk5".into(), "fidelity".into()],
            spec_digest: "0123456789abcdef".into(),
        };
        r.used = Some(used.clone());
        let text = serde_json::to_string_pretty(&r).unwrap();
        assert!(
            text.starts_with(&OLD_TRIAL[..OLD_TRIAL.len() - 2]),
            "{text}"
        );
        let back: TrialRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back.used, Some(used));
    }
}
