//! The one date formatter and parser of l1, on `jiff`: every time l1 writes or reads is UTC, so
//! no time-zone database is needed. Run ids ([`RUN_ID`]), the reports' times ([`REPORT`]), the
//! store listings' times ([`LISTING`]), and the `--since` / `--before` forms ([`parse_since`]).

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;

/// `20261202T101500Z`: run ids and cache-hit notes.
pub const RUN_ID: &str = "%Y%m%dT%H%M%SZ";
/// `2026-12-02 10:15:00 UTC`: the HTML report and the terminal summary.
pub const REPORT: &str = "%Y-%m-%d %H:%M:%S UTC";
/// `2026-12-02 10:15:00Z`: `l1 runs`, `l1 catalog snapshots`.
pub const LISTING: &str = "%Y-%m-%d %H:%M:%SZ";

/// Unix seconds (truncated to whole seconds) in `format` (a `strftime` pattern, one of the
/// constants above), UTC. `None` for a time that is not finite or outside the years
/// -9999..=9999.
pub fn utc(unix_s: f64, format: &str) -> Option<String> {
    if !unix_s.is_finite() {
        return None;
    }
    let t = Timestamp::from_second(unix_s.trunc() as i64).ok()?;
    Some(t.strftime(format).to_string())
}

/// [`REPORT`] for Unix seconds; `unknown time` for one before the epoch or not representable.
pub fn report_time(unix_s: f64) -> String {
    if unix_s < 0.0 {
        return "unknown time".into();
    }
    utc(unix_s, REPORT).unwrap_or_else(|| "unknown time".into())
}

/// [`RUN_ID`] for whole seconds since the epoch; jiff's latest time (9999-12-30 22:00:00) for
/// one beyond it.
pub fn run_stamp(secs: u64) -> String {
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| Timestamp::from_second(s).ok())
        .unwrap_or(Timestamp::MAX);
    t.strftime(RUN_ID).to_string()
}

/// A time the commands accept, as Unix seconds: a duration ago (`7d`, `12h`, `30m`, `45s`,
/// fractions allowed), Unix seconds, or a UTC date with an optional time (`2026-12-01`,
/// `2026-12-01T10:00`, `2026-12-01T10:00:00Z`).
pub fn parse_since(text: &str, now_unix_s: f64) -> Result<f64, TimeError> {
    let t = text.trim();
    if let Some((n, unit)) = t
        .char_indices()
        .last()
        .filter(|(_, c)| matches!(c, 'd' | 'h' | 'm' | 's'))
        .map(|(i, c)| (&t[..i], c))
        && let Ok(n) = n.parse::<f64>()
    {
        let secs = match unit {
            'd' => 86_400.0,
            'h' => 3_600.0,
            'm' => 60.0,
            _ => 1.0,
        };
        return Ok(now_unix_s - n * secs);
    }
    if let Ok(v) = t.parse::<f64>() {
        return Ok(v);
    }
    let civil = t.strip_suffix('Z').unwrap_or(t);
    let at = match civil.split_once('T') {
        Some(_) => civil.parse::<DateTime>().ok(),
        None => civil.parse::<Date>().ok().map(DateTime::from),
    };
    at.and_then(|dt| dt.to_zoned(TimeZone::UTC).ok())
        .map(|z| z.timestamp().as_second() as f64)
        .ok_or_else(|| TimeError(text.to_string()))
}

/// A time that [`parse_since`] does not accept.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` is not a time: expected a duration ago (`7d`, `12h`, `30m`), a date (`2026-12-01`, `2026-12-01T10:00Z`) or Unix seconds"
)]
pub struct TimeError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_civil_utc() {
        assert_eq!(run_stamp(0), "19700101T000000Z");
        assert_eq!(run_stamp(1_795_000_000), "20261118T110640Z");
        assert_eq!(
            utc(1_795_000_000.9, REPORT).as_deref(),
            Some("2026-11-18 11:06:40 UTC")
        );
        assert_eq!(
            utc(951_782_400.0, LISTING).as_deref(),
            Some("2000-02-29 00:00:00Z")
        );
        assert_eq!(utc(f64::NAN, REPORT), None);
        assert_eq!(utc(1e18, REPORT), None);
        assert_eq!(run_stamp(u64::MAX), "99991230T220000Z");
    }

    #[test]
    fn since_accepts_durations_dates_and_seconds() {
        let now = 1_795_000_000.0;
        assert_eq!(parse_since("7d", now).unwrap(), now - 7.0 * 86_400.0);
        assert_eq!(parse_since(" 1.5h ", now).unwrap(), now - 5_400.0);
        assert_eq!(parse_since("30m", now).unwrap(), now - 1_800.0);
        assert_eq!(parse_since("1790000000", now).unwrap(), 1_790_000_000.0);
        assert_eq!(parse_since("2026-11-18", now).unwrap(), 1_794_960_000.0);
        assert_eq!(
            parse_since("2026-11-18T11:06:40Z", now).unwrap(),
            1_795_000_000.0
        );
        assert_eq!(
            parse_since("2026-11-18T11:06", now).unwrap(),
            1_794_999_960.0
        );
        assert_eq!(parse_since("2000-02-29", now).unwrap(), 951_782_400.0);
        for bad in [
            "yesterday",
            "2026-13-01",
            "2026-02-30",
            "2026-11-18T25:00",
            "",
            "d",
        ] {
            let e = parse_since(bad, now).unwrap_err().to_string();
            assert!(e.starts_with(&format!("`{bad}` is not a time")), "{e}");
        }
    }
}
