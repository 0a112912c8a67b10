//! # machina-smol
//!
//! Machina on [smol](https://github.com/smol-rs/smol): a [`Runtime`] whose
//! tasks run on smol's global executor or on an
//! [`async_executor::Executor`] you drive, whose timers are
//! async-io timers (the core's [`IoTimer`](machina_core::rt::IoTimer)), whose blocking work runs on the [`blocking`]
//! pool, and whose sockets (for the network services in `net`) are
//! async-io's, through `async-net`.
//!
//! This crate re-exports [`machina_core`]; depend on it alone.
//!
//! ```
//! use std::sync::Arc;
//!
//! let executor = Arc::new(async_executor::Executor::new());
//! let rt = machina_smol::runtime_on(&executor);
//! let value = smol::block_on(executor.run(async move {
//!     rt.spawn(async { 6 * 7 }).unwrap().await.unwrap()
//! }));
//! assert_eq!(value, 42);
//! ```
//!
//! The runtime holds only a weak reference to an executor you pass in: once
//! you drop the executor, spawning fails with
//! [`SpawnError::Shutdown`](machina_core::rt::SpawnError).

#![forbid(unsafe_code)]

use std::future::Future;
use std::sync::{Arc, Weak};

pub use machina_core;
pub use machina_core::*;

use async_executor::Executor;

use machina_core::rt::{BlockingFn, BoxFuture, Spawn, SpawnError, Task};

/// A [`Runtime`] on smol's global executor (`smol::spawn`), which runs on
/// its own threads (`SMOL_THREADS`, one by default).
pub fn runtime() -> Runtime {
    Runtime::new(
        "smol",
        Arc::new(SmolSpawner::global()),
        Arc::new(SmolTimer::new()),
    )
    .with_sockets(Arc::new(machina_core::rt::IoSockets::new()))
}

/// A [`Runtime`] on `executor`. Tasks run wherever the executor is driven
/// (`executor.run(..)`); the runtime does not keep it alive.
pub fn runtime_on(executor: &Arc<Executor<'static>>) -> Runtime {
    Runtime::new(
        "smol",
        Arc::new(SmolSpawner::on(executor)),
        Arc::new(SmolTimer::new()),
    )
    .with_sockets(Arc::new(machina_core::rt::IoSockets::new()))
}

machina_core::io_adapter_entrypoints!(runtime);

/// The [`Spawn`] half of the smol adapter.
#[derive(Debug, Clone)]
pub struct SmolSpawner {
    target: Target,
}

#[derive(Debug, Clone)]
enum Target {
    Global,
    Executor(Weak<Executor<'static>>),
}

impl SmolSpawner {
    /// Spawns on smol's global executor.
    pub fn global() -> Self {
        SmolSpawner {
            target: Target::Global,
        }
    }

    /// Spawns on `executor`, for as long as it is alive.
    pub fn on(executor: &Arc<Executor<'static>>) -> Self {
        SmolSpawner {
            target: Target::Executor(Arc::downgrade(executor)),
        }
    }
}

impl SmolSpawner {
    /// Spawns a concrete future (no box) on the target executor.
    fn spawn_concrete<F>(&self, task: F) -> Result<(), SpawnError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match &self.target {
            Target::Global => smol::spawn(task).detach(),
            Target::Executor(executor) => executor
                .upgrade()
                .ok_or(SpawnError::Shutdown { executor: "smol" })?
                .spawn(task)
                .detach(),
        }
        Ok(())
    }
}

impl Spawn for SmolSpawner {
    fn spawn_detached(&self, task: BoxFuture) -> Result<(), SpawnError> {
        self.spawn_concrete(task)
    }

    fn spawn_task(&self, task: Task) -> Result<(), SpawnError> {
        self.spawn_concrete(task)
    }

    fn spawn_blocking(&self, f: BlockingFn) -> Result<(), SpawnError> {
        blocking::unblock(f).detach();
        Ok(())
    }
}

/// The [`Timer`](machina_core::rt::Timer) half of the smol adapter: async-io's reactor, as smol
/// uses — the core's shared [`IoTimer`](machina_core::rt::IoTimer).
pub type SmolTimer = machina_core::rt::IoTimer;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_global_executor_runs_tasks_timers_and_blocking_work() {
        let rt = runtime();
        let (value, slept, blocking) = smol::block_on(async {
            let start = rt.now();
            let value = rt.spawn(async { 6 * 7 }).unwrap().await.unwrap();
            rt.sleep(std::time::Duration::from_millis(10)).await;
            let slept = rt.now() - start;
            let blocking = rt.spawn_blocking(|| "off the loop").unwrap().await.unwrap();
            (value, slept, blocking)
        });
        assert_eq!(value, 42);
        assert!(slept >= std::time::Duration::from_millis(10));
        assert_eq!(blocking, "off the loop");
        assert_eq!(rt.label(), "smol");
    }

    #[test]
    fn spawn_after_the_executor_is_dropped_is_an_error() {
        let executor = Arc::new(Executor::new());
        let rt = runtime_on(&executor);
        drop(executor);
        let err = rt.spawn(async {}).unwrap_err();
        assert!(matches!(err, SpawnError::Shutdown { executor: "smol" }));
    }
}
