//! replicate: clone one Airbyte connection onto many sources, declaratively.
//!
//! The pipeline, one module per stage:
//! `plan` (load) → `resolve` (remote reads) → `copy` (build the create bodies, pure)
//! → `existing` (find copies that already exist, pure) → `execute` (bounded, concurrent writes)
//! → `report` (human, JSON, progress). `client` talks to Airbyte; `wire` holds Airbyte's types,
//! shared with `sandbox`, the local emulator of the API.

pub mod copy;
pub mod cron;
pub mod plan;
pub mod sandbox;
pub mod secret;
pub mod suggest;
pub mod wire;
pub mod yaml;
