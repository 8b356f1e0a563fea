//! l1: declarative kernel-configuration sweeps for LLM inference engines, run as ordinary tests.
//!
//! Data flows one way: a spec file is rendered ([`render`]) and parsed ([`spec`]), checked in
//! one stage ([`validate`]) and expanded against the catalogs ([`catalog`], [`profiles`]) into
//! targets and legal combos ([`expand`]),
//! planned as named trials ([`suite`]), measured into result records ([`record`]), and judged by
//! gates ([`gates`]) using robust statistics ([`stats`]).
//!
//! The saved formats — target ids, records, verdicts, calibrations, events — live in [`model`],
//! which depends on nothing else in the crate; every module may use it, so modules import each
//! other without cycles (`tests/architecture.rs` checks both).

pub mod ab;
pub mod accounting;
pub mod accuracy;
pub mod affected;
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
pub mod model;
pub mod profiles;
pub mod progress;
pub mod record;
pub mod render;
pub mod report_model;
pub mod results;
pub mod run_reader;
pub mod selection;
pub mod settings;
pub mod spec;
pub mod stats;
pub mod suite;
pub mod tuning;
pub mod validate;
pub mod yaml;
