//! A combo: one value per catalog dimension plus the engine-specific knobs a spec pins or sweeps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The value a dimension takes for an engine that does not expose it.
pub const UNSET: &str = "unset";

/// One kernel configuration. Ordered maps keep names and hashes stable.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Combo {
    /// Catalog dimension -> value (`unset` where the engine does not expose the dimension).
    pub dims: BTreeMap<String, String>,
    /// Engine-specific knob -> value (e.g. `block_size` -> `16`).
    #[serde(default)]
    pub knobs: BTreeMap<String, String>,
}

impl Combo {
    /// The value of a dimension, `unset` when absent.
    pub fn dim(&self, name: &str) -> &str {
        self.dims.get(name).map(String::as_str).unwrap_or(UNSET)
    }

    /// The value of a knob, if pinned.
    pub fn knob(&self, name: &str) -> Option<&str> {
        self.knobs.get(name).map(String::as_str)
    }

    /// A canonical text form: `dim=value;...|knob=value;...`. Hashes are taken over this.
    pub fn canonical(&self) -> String {
        let dims: Vec<String> = self.dims.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let knobs: Vec<String> = self.knobs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{}|{}", dims.join(";"), knobs.join(";"))
    }
}
