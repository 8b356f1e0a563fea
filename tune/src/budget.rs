//! Budgets: wall-clock minutes, GPU-hours (devices × elapsed) and a maximum number of trials;
//! how much of each a session has used, what remains, and which limit ran out first. A budget
//! of zero (or one with no limit at all) is an error, so it is refused before any engine starts.

use serde::{Deserialize, Serialize};

use crate::error::TuneError;

/// The limits of one tune session; at least one is set, every set one is positive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_clock_minutes: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_hours: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_trials: Option<u32>,
}

/// What a session has used so far (persisted with its state, so a resumed session keeps burning
/// the same budget).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    pub elapsed_s: f64,
    pub device_s: f64,
    pub trials: u32,
}

impl Usage {
    /// Account for one finished trial that took `elapsed_s` on `devices` devices (cache hits
    /// pass 0 seconds: they are free evaluations but still trials).
    pub fn record_trial(&mut self, elapsed_s: f64, devices: u32) {
        let e = if elapsed_s.is_finite() {
            elapsed_s.max(0.0)
        } else {
            0.0
        };
        self.elapsed_s += e;
        self.device_s += e * f64::from(devices);
        self.trials += 1;
    }

    /// Account for time spent outside trials (fitting, waiting), on no device.
    pub fn record_overhead(&mut self, elapsed_s: f64) {
        if elapsed_s.is_finite() && elapsed_s > 0.0 {
            self.elapsed_s += elapsed_s;
        }
    }
}

/// Which limit ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    WallClock,
    GpuHours,
    Trials,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Limit::WallClock => "wall-clock minutes",
            Limit::GpuHours => "GPU-hours",
            Limit::Trials => "maximum trials",
        })
    }
}

/// What is left of each set limit (`None` where unset).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Remaining {
    pub wall_clock_minutes: Option<f64>,
    pub gpu_hours: Option<f64>,
    pub trials: Option<u32>,
    /// The smallest remaining share over the set limits, in [0, 1] ("budget burn" = 1 − this).
    pub fraction: f64,
}

impl Budget {
    /// Validate: at least one limit; every set limit finite and > 0.
    pub fn new(
        wall_clock_minutes: Option<f64>,
        gpu_hours: Option<f64>,
        max_trials: Option<u32>,
    ) -> Result<Self, TuneError> {
        let b = Self {
            wall_clock_minutes,
            gpu_hours,
            max_trials,
        };
        b.validate()?;
        Ok(b)
    }

    pub fn validate(&self) -> Result<(), TuneError> {
        if self.wall_clock_minutes.is_none()
            && self.gpu_hours.is_none()
            && self.max_trials.is_none()
        {
            return Err(TuneError::InvalidBudget(
                "no limit set: give wall-clock minutes, GPU-hours or a maximum number of trials"
                    .into(),
            ));
        }
        for (name, v) in [
            ("wall-clock minutes", self.wall_clock_minutes),
            ("GPU-hours", self.gpu_hours),
        ] {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0)
            {
                return Err(TuneError::InvalidBudget(format!(
                    "{name} must be a positive number, got {v}"
                )));
            }
        }
        if self.max_trials == Some(0) {
            return Err(TuneError::InvalidBudget(
                "maximum trials must be at least 1, got 0".into(),
            ));
        }
        Ok(())
    }

    /// The first limit `usage` has reached, if any (checked in the order wall clock, GPU-hours,
    /// trials).
    pub fn exhausted(&self, usage: &Usage) -> Option<Limit> {
        if self
            .wall_clock_minutes
            .is_some_and(|m| usage.elapsed_s >= m * 60.0)
        {
            return Some(Limit::WallClock);
        }
        if self.gpu_hours.is_some_and(|h| usage.device_s >= h * 3600.0) {
            return Some(Limit::GpuHours);
        }
        if self.max_trials.is_some_and(|t| usage.trials >= t) {
            return Some(Limit::Trials);
        }
        None
    }

    /// How many more trials the budget allows, estimated: exactly for `max_trials`; for the
    /// wall-clock and GPU-hour limits, what is left divided by the mean cost of a trial so far.
    /// `None` when no limit gives an estimate yet (time limits only, and no trial has cost
    /// anything).
    pub fn trials_left_estimate(&self, usage: &Usage) -> Option<f64> {
        let trials = f64::from(usage.trials);
        let by_cost = |limit_s: f64, spent_s: f64| {
            (usage.trials > 0 && spent_s > 0.0)
                .then(|| (limit_s - spent_s).max(0.0) / (spent_s / trials))
        };
        [
            self.max_trials
                .map(|t| f64::from(t.saturating_sub(usage.trials))),
            self.wall_clock_minutes
                .and_then(|m| by_cost(m * 60.0, usage.elapsed_s)),
            self.gpu_hours
                .and_then(|h| by_cost(h * 3600.0, usage.device_s)),
        ]
        .into_iter()
        .flatten()
        .reduce(f64::min)
    }

    /// What is left of each set limit.
    pub fn remaining(&self, usage: &Usage) -> Remaining {
        let mut fraction: f64 = 1.0;
        let wall = self.wall_clock_minutes.map(|m| {
            let left = (m - usage.elapsed_s / 60.0).max(0.0);
            fraction = fraction.min(left / m);
            left
        });
        let gpu = self.gpu_hours.map(|h| {
            let left = (h - usage.device_s / 3600.0).max(0.0);
            fraction = fraction.min(left / h);
            left
        });
        let trials = self.max_trials.map(|t| {
            let left = t.saturating_sub(usage.trials);
            fraction = fraction.min(f64::from(left) / f64::from(t));
            left
        });
        Remaining {
            wall_clock_minutes: wall,
            gpu_hours: gpu,
            trials,
            fraction: fraction.clamp(0.0, 1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_negative_nan_and_empty_budgets_are_errors() {
        assert!(Budget::new(None, None, None).is_err());
        assert!(Budget::new(Some(0.0), None, None).is_err());
        assert!(Budget::new(None, Some(-1.0), None).is_err());
        assert!(Budget::new(Some(f64::NAN), None, None).is_err());
        assert!(Budget::new(None, None, Some(0)).is_err());
        assert!(Budget::new(Some(30.0), Some(2.0), Some(50)).is_ok());
    }

    #[test]
    fn remaining_and_exhaustion() {
        let b = Budget::new(Some(10.0), Some(1.0), Some(4)).unwrap();
        let mut u = Usage::default();
        assert_eq!(b.exhausted(&u), None);
        assert_eq!(b.remaining(&u).fraction, 1.0);
        u.record_trial(120.0, 8); // 2 min, 16 device-minutes
        let r = b.remaining(&u);
        assert_eq!(r.trials, Some(3));
        assert!((r.wall_clock_minutes.unwrap() - 8.0).abs() < 1e-12);
        assert!((r.gpu_hours.unwrap() - (1.0 - 16.0 / 60.0)).abs() < 1e-12);
        assert!((r.fraction - 0.7333333333333334).abs() < 1e-9);
        u.record_trial(400.0, 8); // 520 s on 8 devices > 1 GPU-hour, < 10 min
        assert_eq!(b.exhausted(&u), Some(Limit::GpuHours));
        let t = Budget::new(None, None, Some(2)).unwrap();
        assert_eq!(t.exhausted(&u), Some(Limit::Trials));
        u.record_overhead(f64::NAN);
        assert!(u.elapsed_s.is_finite());
    }

    #[test]
    fn trials_left_estimate_uses_the_tightest_limit() {
        let mut u = Usage::default();
        let time_only = Budget::new(Some(10.0), None, None).unwrap();
        assert_eq!(time_only.trials_left_estimate(&u), None, "no cost seen yet");
        u.record_trial(60.0, 1); // one minute per trial: 9 minutes left
        assert!((time_only.trials_left_estimate(&u).unwrap() - 9.0).abs() < 1e-12);
        let both = Budget::new(Some(10.0), None, Some(5)).unwrap();
        assert_eq!(both.trials_left_estimate(&u), Some(4.0));
        let gpu = Budget::new(None, Some(0.5), None).unwrap(); // 30 device-minutes, 1 used
        assert!((gpu.trials_left_estimate(&u).unwrap() - 29.0).abs() < 1e-9);
        u.record_trial(0.0, 0); // a free cache hit lowers the mean cost
        assert!((time_only.trials_left_estimate(&u).unwrap() - 18.0).abs() < 1e-12);
    }
}
