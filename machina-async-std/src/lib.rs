//! # machina-async-std
//!
//! Machina on [async-std](https://docs.rs/async-std): a [`Runtime`] over
//! `async_std::task::spawn`, `async_std::task::spawn_blocking` and the
//! async-io timers async-std itself sleeps on.
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

use machina_core::rt::{BlockingFn, BoxFuture, Spawn, SpawnError};

/// A [`Runtime`] on async-std's global executor.
pub fn runtime() -> Runtime {
    Runtime::new(
        "async-std",
        Arc::new(AsyncStdSpawner::new()),
        Arc::new(AsyncStdTimer::new()),
    )
}

/// An [`Entrypoint`](machina_core::service::Entrypoint) builder on
/// async-std whose shutdown requests are SIGINT and SIGTERM (through
/// `async-signal`): the first stops the services gracefully, a second
/// forces the exit.
///
/// With the feature `logging`, the entrypoint sets up logging
/// (`LogConfig::new()` under `MACHINA_LOG_LEVEL` / `MACHINA_LOG_FORMAT`)
/// unless the program set up `tracing` itself; `.logging(config)` or
/// `.no_logging()` change that.
///
/// # Errors
/// The I/O error of installing the signal handlers.
pub fn entrypoint() -> Result<machina_core::service::EntrypointBuilder, std::io::Error> {
    Ok(machina_core::service::entrypoint_with(
        &runtime(),
        machina_core::service::os_signals()?,
    ))
}

/// aiomisc's `run(main, *services)` on async-std: starts `services` (no
/// dependencies between them) under [`entrypoint`]'s signals, runs `main`,
/// then stops them in reverse. For dependencies, hooks or a shutdown
/// timeout, use [`entrypoint`] itself.
///
/// # Errors
/// [`RunError::Setup`](machina_core::service::RunError::Setup) as
/// [`entrypoint`]; [`RunError::Entrypoint`](machina_core::service::RunError::Entrypoint)
/// for two services with one name or a bad `MACHINA_SHUTDOWN_TIMEOUT`.
pub async fn run<F: std::future::Future>(
    main: F,
    services: Vec<(&str, Arc<dyn machina_core::service::Service>)>,
) -> Result<
    machina_core::service::Outcome<F::Output>,
    machina_core::service::RunError<std::io::Error>,
> {
    let entry = entrypoint().map_err(machina_core::service::RunError::Setup)?;
    Ok(machina_core::service::run(entry, main, services).await?)
}

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

    fn spawn_blocking(&self, f: BlockingFn) -> Result<(), SpawnError> {
        drop(async_std::task::spawn_blocking(f));
        Ok(())
    }
}

/// The [`Timer`](machina_core::rt::Timer) half of the async-std adapter: async-io's reactor, as async-std
/// uses — the core's shared [`IoTimer`](machina_core::rt::IoTimer).
pub type AsyncStdTimer = machina_core::rt::IoTimer;
