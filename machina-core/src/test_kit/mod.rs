//! The unit tests' shared kit (compiled for tests only): durations in
//! short, a log that tasks append to and the test reads back, and
//! [`log_capture`], which keeps what Machina logs through `tracing`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) mod log_capture;

/// `n` seconds.
pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `n` milliseconds.
pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A list that tasks append to and the test reads back.
pub(crate) type Log<T> = Arc<Mutex<Vec<T>>>;

/// A new, empty [`Log`].
pub(crate) fn log<T>() -> Log<T> {
    Arc::new(Mutex::new(Vec::new()))
}

/// Appends `value` to `log`.
pub(crate) fn push<T>(log: &Log<T>, value: T) {
    log.lock().unwrap().push(value);
}

/// What `log` holds now.
pub(crate) fn entries<T: Clone>(log: &Log<T>) -> Vec<T> {
    log.lock().unwrap().clone()
}
