//! The adapter kit: what every adapter's `entrypoint()` does, written once
//! — an entrypoint on a runtime and a stream of shutdown requests, with
//! the default logging set-up — and (feature `io`) the OS shutdown signals
//! for adapters on async-io. An adapter is then its `runtime()`, its
//! signals and its own docs.

use super::entrypoint::{Entrypoint, EntrypointBuilder, Signals};
use crate::rt::Runtime;

/// An entrypoint builder on `runtime` whose shutdown requests are
/// `signals`: the first stops the services gracefully, a second forces the
/// exit. With the feature `logging`, it sets up logging
/// (`LogConfig::new()` under `MACHINA_LOG_LEVEL` / `MACHINA_LOG_FORMAT`)
/// unless the program set up `tracing` itself. This is what the adapters'
/// `entrypoint()` return.
///
/// # Examples
///
/// ```
/// use machina_core::service::entrypoint_with;
/// use machina_core::testing::MockRuntime;
///
/// let mock = MockRuntime::new();
/// // No OS signals on the mock runtime: a stream that never asks.
/// let entry = entrypoint_with(&mock.runtime(), Box::pin(futures::stream::pending()))
///     .build()
///     .unwrap();
/// let outcome = mock.block_on(entry.run(async { 7 })).unwrap();
/// assert_eq!(outcome.value, Some(7));
/// ```
pub fn entrypoint_with(runtime: &Runtime, signals: Signals) -> EntrypointBuilder {
    let builder = Entrypoint::builder(runtime).signals(signals);
    #[cfg(feature = "logging")]
    let builder = builder.default_logging();
    builder
}

/// The operating system's shutdown requests, SIGINT (Ctrl+C) and SIGTERM
/// (SIGINT alone off Unix), through `async-signal`: for adapters on
/// async-io (feature `io`).
///
/// # Errors
/// The I/O error of installing the signal handlers.
#[cfg(feature = "io")]
pub fn os_signals() -> Result<Signals, std::io::Error> {
    use async_signal::{Signal, Signals as OsSignals};
    use futures::StreamExt;
    #[cfg(unix)]
    let kinds = [Signal::Int, Signal::Term];
    #[cfg(not(unix))]
    let kinds = [Signal::Int];
    let signals = OsSignals::new(kinds)?;
    Ok(Box::pin(signals.map(|_| ())))
}
