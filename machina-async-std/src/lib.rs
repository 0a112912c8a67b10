//! # machina-async-std
//!
//! Machina on [async-std](https://docs.rs/async-std): a [`Runtime`] over
//! `async_std::task::spawn`, `async_std::task::spawn_blocking` and the
//! async-io timers async-std itself sleeps on, with async-io's sockets
//! (through `async-net`) for the network services in `net`.
//!
//! **async-std is discontinued upstream** (its authors recommend smol).
//! This adapter stays for programs that already run on async-std; new
//! programs should use `machina-smol` or `machina-tokio`.
//!
//! This crate re-exports [`machina_core`]; depend on it alone.
//!
//! ```
//! let rt = machina_async_std::runtime();
//! let value = async_std::task::block_on(async move {
//!     rt.spawn(async { 6 * 7 }).unwrap().await.unwrap()
//! });
//! assert_eq!(value, 42);
//! ```

#![forbid(unsafe_code)]

use std::sync::Arc;

pub use machina_core;
pub use machina_core::*;

use machina_core::rt::{BlockingFn, BoxFuture, Spawn, SpawnError, Task};

/// A [`Runtime`] on async-std's global executor.
pub fn runtime() -> Runtime {
    Runtime::new(
        "async-std",
        Arc::new(AsyncStdSpawner::new()),
        Arc::new(AsyncStdTimer::new()),
    )
    .with_sockets(Arc::new(machina_core::rt::IoSockets::new()))
}

machina_core::io_adapter_entrypoints!(runtime);

/// The [`Spawn`] half of the async-std adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStdSpawner {
    _private: (),
}

impl AsyncStdSpawner {
    /// A spawner onto async-std's global executor.
    pub fn new() -> Self {
        AsyncStdSpawner { _private: () }
    }
}

impl Spawn for AsyncStdSpawner {
    fn spawn_detached(&self, task: BoxFuture) -> Result<(), SpawnError> {
        // Dropping async-std's JoinHandle detaches the task.
        drop(async_std::task::spawn(task));
        Ok(())
    }

    fn spawn_task(&self, task: Task) -> Result<(), SpawnError> {
        // The task as it is, inside async-std's own allocation.
        drop(async_std::task::spawn(task));
        Ok(())
    }

    fn spawn_blocking(&self, f: BlockingFn) -> Result<(), SpawnError> {
        drop(async_std::task::spawn_blocking(f));
        Ok(())
    }
}

/// The [`Timer`](machina_core::rt::Timer) half of the async-std adapter: async-io's reactor, as async-std
/// uses — the core's shared [`IoTimer`](machina_core::rt::IoTimer).
pub type AsyncStdTimer = machina_core::rt::IoTimer;
