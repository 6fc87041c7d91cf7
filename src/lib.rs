//! replicate: clone one Airbyte connection onto many sources, declaratively.
//!
//! The pipeline, one module per stage:
//! `plan` (load) → `resolve` (remote reads; `select`, `owner`, `orphans` and `duplicates` decide what
//! the plan covers) → `build` (per target: `existing`, `copy` and `diff`, pure) → `execute` (bounded,
//! concurrent writes) → `report` (human, JSON, progress); `apply` runs them in order. `client` talks to Airbyte; `wire` holds Airbyte's types,
//! shared with `sandbox`, the local emulator of the API. `cli` owns the terminal.

pub mod apply;
pub mod build;
pub mod cli;
pub mod client;
pub mod clock;
pub mod copy;
pub mod cron;
pub mod diff;
pub mod duplicates;
pub mod duration;
pub mod execute;
pub mod existing;
pub mod input;
pub mod lease;
pub mod listing;
pub mod orphans;
pub mod owner;
pub mod plan;
pub mod report;
pub mod resolve;
pub mod sandbox;
pub mod secret;
pub mod select;
pub mod status;
pub mod suggest;
pub mod sync;
pub mod wire;
pub mod yaml;
