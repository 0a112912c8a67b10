//! What the behaviour suites share beyond the public test kit
//! (`machina-test`, whose `cross_runtime!` and `real_runtimes!` declare
//! their tests): an ordered log of what happened, and the nginx fixture.

#![allow(
    dead_code,
    reason = "each test binary uses its own share of the harness"
)]

use std::sync::Arc;

pub(crate) mod nginx;

/// An ordered record of what happened, shared between tasks.
pub(crate) type Log = Arc<std::sync::Mutex<Vec<String>>>;

/// A new, empty [`Log`].
pub(crate) fn log() -> Log {
    Arc::new(std::sync::Mutex::new(Vec::new()))
}

/// Appends to a [`Log`].
pub(crate) fn push(log: &Log, entry: impl Into<String>) {
    log.lock().expect("log").push(entry.into());
}

/// What a [`Log`] holds now.
pub(crate) fn entries(log: &Log) -> Vec<String> {
    log.lock().expect("log").clone()
}
