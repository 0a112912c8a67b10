//! What the Redis test binaries share: a tokio runtime to block on, and
//! this very test binary started again as a child process for one test
//! (the replica or consumer that a test kills).

#![allow(dead_code, reason = "each test binary uses part of it")]

use std::process::{Command, Stdio};

/// A tokio runtime with every driver: on `workers` threads, or on the
/// current thread for 0.
pub(crate) fn tokio(workers: usize) -> tokio::runtime::Runtime {
    let mut builder = if workers == 0 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(workers);
        builder
    };
    builder.enable_all().build().expect("tokio runtime")
}

/// This test binary, to run only `test` with `var` set to `value`, its
/// standard output piped (the child's lines are what the parent reads).
pub(crate) fn child(test: &str, var: &str, value: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(var, value)
        .stdout(Stdio::piped());
    command
}
