//! l1: declarative kernel-configuration sweeps for LLM inference engines, run as ordinary tests.
//!
//! Data flows one way: a spec file is rendered ([`render`]) and parsed ([`spec`]), expanded
//! against the catalogs ([`catalog`], [`profiles`]) into targets and legal combos ([`expand`]),
//! planned as named trials ([`suite`]), measured into result records ([`record`]), and judged by
//! gates ([`gates`]) using robust statistics ([`stats`]).

pub mod accounting;
pub mod accuracy;
pub mod calibration;
pub mod catalog;
pub mod detect;
pub mod device;
pub mod diag;
pub mod engine_table;
pub mod expand;
pub mod fidelity;
pub mod fingerprint;
pub mod gates;
pub mod harness;
pub mod headline;
pub mod profiles;
pub mod progress;
pub mod record;
pub mod render;
pub mod report_model;
pub mod results;
pub mod selection;
pub mod spec;
pub mod stats;
pub mod suite;
pub mod tuning;
pub mod yaml;
