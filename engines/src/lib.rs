//! Engines for l1: the profiles an engine runs against (hardware, model, workload), the metrics a
//! rep produces, the [`Engine`] trait every engine implements (the built-in sim, the server
//! engines, the in-process ONNX Runtime) and the engine table that registers them
//! ([`registry::ENGINES`]).
//!
//! The harness crate decides *what* to run; this crate knows *how* an engine is described and
//! measured.

pub mod combo;
pub mod dataset;
pub mod engine;
pub mod error;
pub mod field;
pub mod install;
pub mod launch;
pub mod llamacpp;
pub mod metrics;
pub mod onnxruntime;
pub mod probe;
pub mod process;
pub mod profile;
pub mod registry;
pub mod server;
pub mod sglang;
pub mod sim;
#[cfg(test)]
mod testing;
pub mod tgi;
pub mod translate;
pub mod triton;
pub mod trtllm;
pub mod version;
pub mod vllm;

pub use combo::Combo;
pub use engine::{Engine, EngineKind};
pub use error::{EngineError, LaunchError, RepError};
pub use metrics::{Direction, METRICS, MetricInfo, Metrics};
pub use profile::{Arrival, DeviceKind, Dist, HardwareProfile, ModelProfile, Slo, Workload};
pub use registry::ENGINES;
