//! replicate: clone one Airbyte connection onto many sources, declaratively.
//!
//! The pipeline, one module per stage:
//! `plan` (load) → `resolve` (remote reads) → `copy` (build the create bodies, pure)
//! → `existing` + `preview` (what each target needs) → `execute` (bounded, concurrent writes)
//! → `report` (human, JSON, progress). `client` talks to Airbyte; `wire` holds Airbyte's types,
//! shared with `sandbox`, the local emulator of the API. `cli` owns the terminal.

pub mod apply;
pub mod build;
pub mod cli;
pub mod client;
pub mod copy;
pub mod cron;
pub mod diff;
pub mod duration;
pub mod execute;
pub mod existing;
pub mod input;
pub mod listing;
pub mod plan;
pub mod report;
pub mod resolve;
pub mod sandbox;
pub mod secret;
pub mod select;
pub mod suggest;
pub mod wire;
pub mod yaml;
