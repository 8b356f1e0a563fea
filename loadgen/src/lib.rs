//! The l1 load generator: drives a started engine with a workload and measures it.
//!
//! - [`protocol`]: OpenAI-compatible streaming completions and chat completions, KServe v2
//!   `generate_stream`, and the [`Backend`] trait in-process engines implement.
//! - [`driver`]: closed-loop (fixed concurrency) and open-loop (Poisson, paced by a spinning
//!   thread, latencies from the intended send time) arrival.
//! - [`summary`]: a rep's metrics — throughput, goodput, TTFT/ITL/TPOT/end-to-end percentiles,
//!   errors per kind, and whether the configured load was delivered.
//! - [`prompts`]: seeded synthetic prompts fitted to the engine's tokenizer.
//! - [`prom`]: engines' own Prometheus metrics, scraped before and after.
//! - [`fixture`]: a fixed-latency streaming server with fault injection, for tests and benches.

pub mod driver;
pub mod fixture;
pub mod prom;
pub mod prompts;
pub mod protocol;
pub mod request;
pub mod sse;
pub mod summary;

pub use driver::{Load, RepRun};
pub use protocol::{Backend, BoxFuture, HttpApi, HttpBackend};
pub use request::{ErrorKind, Observation, RequestError, RequestSpec, Streamed};
pub use summary::{RepSummary, Slo, summarize};
