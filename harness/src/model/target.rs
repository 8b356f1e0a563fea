//! The target id: engine@version × model × hardware × workload, as records carry it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// engine@version × model × hardware × workload.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TargetId {
    pub engine: String,
    pub version: String,
    pub model: String,
    pub hardware: String,
    pub workload: String,
}

impl fmt::Display for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{}::{}::{}::{}",
            self.engine, self.version, self.model, self.hardware, self.workload
        )
    }
}
