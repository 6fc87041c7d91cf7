//! The integration tests, one binary (just's habit: it builds and links once): a module per
//! topic, all on the shared harness in `support`. Each test starts its own sandbox on a random
//! loopback port, so they run in parallel.
//!
//! `cargo test --test it` runs them all; `cargo test --test it hostile::` one topic.

// Helpers outside `#[test]` fns are test code too; clippy's test allowance does not see them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod cli;
mod conformance;
mod conventions;
mod copy_rules;
mod drift;
mod duplicates;
mod faults;
mod hostile;
mod hostile_files;
mod hostile_server;
mod interrupt;
mod lease;
mod ownership;
mod paging;
mod plans;
mod progress;
mod sandbox;
mod sandbox_faults;
mod schema;
mod signals;
mod status_reads;
mod sync;
