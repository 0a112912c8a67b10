//! The unit tests' shared kit (compiled for tests only): durations in
//! short, a log that tasks append to and the test reads back, a runtime
//! on the real clock that spawns nothing, and [`log_capture`], which
//! keeps what Machina logs through `tracing`.

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

/// A spawner for a runtime whose clock alone is under test.
#[derive(Debug)]
struct NoSpawn;

impl crate::rt::Spawn for NoSpawn {
    fn spawn_detached(&self, _: crate::rt::BoxFuture) -> Result<(), crate::rt::SpawnError> {
        unreachable!("nothing is spawned")
    }
    fn spawn_blocking(&self, _: crate::rt::BlockingFn) -> Result<(), crate::rt::SpawnError> {
        unreachable!("nothing is spawned")
    }
}

/// A runtime on the real clock ([`SystemTimer`](crate::rt::SystemTimer))
/// that spawns nothing, for tests of what reads the clock.
pub(crate) fn system_clock_runtime() -> crate::rt::Runtime {
    crate::rt::Runtime::new(
        "system",
        Arc::new(NoSpawn),
        Arc::new(crate::rt::SystemTimer::new()),
    )
}

/// What `log` holds now.
pub(crate) fn entries<T: Clone>(log: &Log<T>) -> Vec<T> {
    log.lock().unwrap().clone()
}
