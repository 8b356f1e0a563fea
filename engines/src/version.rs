//! Engine versions and version ranges, for translators whose flags change between releases.
//!
//! A version is a dot-separated list of numeric components with an optional leading letter
//! prefix and an optional suffix after `+` or `-` (`0.13.0`, `2.51`, `b4000`, `1.0.0rc3` is
//! read as `1.0.0`, `0.32.0+cpu` as `0.32.0`). Comparison is numeric per component, and a
//! shorter version is a prefix: `0.13` ≤ `0.13.2` < `0.14`. A [`VersionRange`] is inclusive at
//! both ends by prefix, so `0.11..=0.33` contains `0.33.1`.

use std::cmp::Ordering;
use std::fmt;

/// A parsed engine version.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Version {
    /// A leading letter prefix such as `b` in llama.cpp's `b4000` (compared for equality only).
    pub prefix: String,
    pub parts: Vec<u64>,
}

impl Version {
    /// Parse `text`; `None` when it has no leading numeric component.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().trim_start_matches('v');
        let prefix: String = text.chars().take_while(char::is_ascii_alphabetic).collect();
        let rest = &text[prefix.len()..];
        let rest = rest.split(['+', '-']).next().unwrap_or(rest);
        let mut parts = Vec::new();
        for comp in rest.split('.') {
            let digits: String = comp.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() {
                break;
            }
            parts.push(digits.parse().ok()?);
            if digits.len() != comp.len() {
                break; // `0rc3`: keep 0, drop the pre-release tail
            }
        }
        (!parts.is_empty()).then_some(Self { prefix, parts })
    }

    /// Compare as prefixes: the shorter version equals any longer one it is a prefix of.
    fn cmp_prefix(&self, other: &Self) -> Ordering {
        for (a, b) in self.parts.iter().zip(&other.parts) {
            match a.cmp(b) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        Ordering::Equal
    }

    /// Whether `self` is at least `min` (by prefix: `0.13.2` is at least `0.13`).
    pub fn at_least(&self, min: &str) -> bool {
        Version::parse(min).is_some_and(|m| self.cmp_prefix(&m) != Ordering::Less)
    }

    /// Whether `self` is at most `max` (by prefix: `0.13.2` is at most `0.13`, `0.14` is not).
    pub fn at_most(&self, max: &str) -> bool {
        Version::parse(max).is_some_and(|m| self.cmp_prefix(&m) != Ordering::Greater)
    }

    /// Whether `self` is below `bound` (by prefix: `0.12.9` is below `0.13`, `0.13.0` is not).
    pub fn below(&self, bound: &str) -> bool {
        !self.at_least(bound)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.parts.iter().map(u64::to_string).collect();
        write!(f, "{}{}", self.prefix, parts.join("."))
    }
}

/// An inclusive range of versions, both ends compared by prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionRange {
    pub min: &'static str,
    pub max: &'static str,
}

impl VersionRange {
    pub const fn new(min: &'static str, max: &'static str) -> Self {
        Self { min, max }
    }

    /// Whether `version` lies in the range.
    pub fn contains(&self, version: &str) -> bool {
        let (Some(v), Some(lo), Some(hi)) = (
            Version::parse(version),
            Version::parse(self.min),
            Version::parse(self.max),
        ) else {
            return false;
        };
        v.prefix == lo.prefix
            && v.cmp_prefix(&lo) != Ordering::Less
            && v.cmp_prefix(&hi) != Ordering::Greater
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}..={}", self.min, self.max)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::check_supported;

    #[test]
    fn parses_engine_versions() {
        assert_eq!(Version::parse("0.13.0").unwrap().parts, vec![0, 13, 0]);
        assert_eq!(Version::parse("0.32.0+cpu").unwrap().parts, vec![0, 32, 0]);
        assert_eq!(Version::parse("1.0.0rc3").unwrap().parts, vec![1, 0, 0]);
        assert_eq!(Version::parse("v2.51").unwrap().parts, vec![2, 51]);
        let b = Version::parse("b4000").unwrap();
        assert_eq!((b.prefix.as_str(), b.parts.clone()), ("b", vec![4000]));
        assert!(Version::parse("latest").is_none());
        assert_eq!(
            Version::parse("2026.10.11549").unwrap().to_string(),
            "2026.10.11549"
        );
    }

    #[test]
    fn bounds_compare_by_prefix() {
        let v = Version::parse("0.13.2").unwrap();
        assert!(v.at_least("0.13") && v.at_least("0.12.9") && v.below("0.14"));
        assert!(!v.at_least("0.14") && !v.below("0.13"));
        assert!(
            Version::parse("0.9").unwrap().below("0.10"),
            "numeric, not lexical"
        );
    }

    #[test]
    fn ranges_are_inclusive_by_prefix() {
        let r = VersionRange::new("0.11", "0.33");
        assert!(r.contains("0.11") && r.contains("0.33.1") && r.contains("0.20.0+cpu"));
        assert!(!r.contains("0.10.2") && !r.contains("0.34") && !r.contains("b20"));
        let e = check_supported("vllm", "0.9", &[r])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("vllm") && e.contains("0.9") && e.contains("0.11..=0.33"),
            "{e}"
        );
        assert!(check_supported("vllm", "0.32.0", &[r]).is_ok());
    }
}
