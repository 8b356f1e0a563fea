//! Engines for l1: the profiles an engine runs against (hardware, model, workload), the metrics a
//! rep produces, the engine table (what each engine exposes and whether it can run here), and the
//! built-in simulated engine.
//!
//! The harness crate decides *what* to run; this crate knows *how* an engine is described and
//! measured.

pub mod combo;
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
pub mod triton;
pub mod triton_config;
pub mod trtllm;
pub mod version;
pub mod vllm;

pub use combo::Combo;
pub use metrics::{Direction, METRICS, MetricInfo, Metrics};
pub use profile::{Arrival, DeviceKind, Dist, HardwareProfile, ModelProfile, Slo, Workload};
pub use registry::{ENGINES, EngineInfo, EngineKind};
