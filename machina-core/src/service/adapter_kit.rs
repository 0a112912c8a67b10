//! The adapter kit: what every adapter's `entrypoint()` does, written once
//! — an entrypoint on a runtime and a stream of shutdown requests, with
//! the default logging set-up — and (feature `io`) the OS shutdown signals
//! for adapters on async-io. An adapter is then its `runtime()`, its
//! signals and its own docs.

use super::entrypoint::{Entrypoint, EntrypointBuilder, Signals};
use super::env_config::EnvConfig;
use crate::rt::Runtime;

/// An entrypoint builder on `runtime` whose shutdown requests are
/// `signals`, under the settings `env` (an adapter passes
/// [`EnvConfig::from_env`]): the first request stops the services
/// gracefully, a second forces the exit. With the feature `logging`, it
/// sets up logging (`LogConfig::new()` under `MACHINA_LOG_LEVEL` /
/// `MACHINA_LOG_FORMAT`) unless the program set up `tracing` itself;
/// `.logging(config)` or `.no_logging()` change that. With the feature
/// `systemd` it notifies systemd ([`Systemd::from_env`](super::Systemd::from_env)):
/// a no-op unless `NOTIFY_SOCKET` is set. With the feature `sentry` it
/// reports errors to Sentry ([`default_sentry`](EntrypointBuilder::default_sentry)):
/// a no-op unless `SENTRY_DSN` is set. This is what the adapters'
/// `entrypoint()` return.
///
/// # Examples
///
/// ```
/// use machina_core::service::{EnvConfig, entrypoint_with};
/// use machina_core::testing::MockRuntime;
///
/// let mock = MockRuntime::new();
/// // No OS signals on the mock runtime: a stream that never asks.
/// let no_signals = Box::pin(futures::stream::pending());
/// let entry = entrypoint_with(&mock.runtime(), no_signals, EnvConfig::default())
///     .build()
///     .unwrap();
/// let outcome = mock.block_on(entry.run(async { 7 })).unwrap();
/// assert_eq!(outcome.value, Some(7));
/// ```
pub fn entrypoint_with(runtime: &Runtime, signals: Signals, env: EnvConfig) -> EntrypointBuilder {
    #[cfg(all(unix, feature = "systemd"))]
    let systemd = super::Systemd::from_env(&env);
    let builder = Entrypoint::builder(runtime).signals(signals).env(env);
    #[cfg(all(unix, feature = "systemd"))]
    let builder = builder.plugin(systemd);
    #[cfg(feature = "logging")]
    let builder = builder.default_logging();
    #[cfg(feature = "sentry")]
    let builder = builder.default_sentry();
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

/// [`entrypoint_with`] on `runtime`, with the OS signals ([`os_signals`])
/// and the process environment ([`EnvConfig::from_env`]): the whole
/// `entrypoint()` of an adapter on async-io (feature `io`).
///
/// # Errors
/// The I/O error of installing the signal handlers.
#[cfg(feature = "io")]
pub fn io_entrypoint(runtime: &Runtime) -> Result<EntrypointBuilder, std::io::Error> {
    Ok(entrypoint_with(
        runtime,
        os_signals()?,
        EnvConfig::from_env(),
    ))
}

/// Defines an async-io adapter's `entrypoint()` and `run(main, services)`
/// over its `runtime()` function (feature `io`): the two functions every
/// such adapter has, written once. `machina-smol` and `machina-async-std`
/// use it; a new adapter on async-io would too.
///
/// # Examples
///
/// ```
/// mod my_adapter {
///     use machina_core::Runtime;
///     /// This adapter's runtime.
///     pub fn runtime() -> Runtime {
///         machina_core::testing::MockRuntime::new().runtime()
///     }
///     machina_core::io_adapter_entrypoints!(runtime);
/// }
/// // `my_adapter::entrypoint()` and `my_adapter::run(main, services)` now exist.
/// let _: fn() -> Result<machina_core::service::EntrypointBuilder, std::io::Error> =
///     my_adapter::entrypoint;
/// ```
#[cfg(feature = "io")]
#[macro_export]
macro_rules! io_adapter_entrypoints {
    ($runtime:path) => {
        /// An [`Entrypoint`]($crate::service::Entrypoint) builder on this
        /// adapter's runtime, with SIGINT and SIGTERM and the environment's
        /// settings, read here once
        /// ([`io_entrypoint`]($crate::service::io_entrypoint)).
        ///
        /// # Errors
        /// The I/O error of installing the signal handlers.
        pub fn entrypoint()
        -> ::std::result::Result<$crate::service::EntrypointBuilder, ::std::io::Error> {
            $crate::service::io_entrypoint(&$runtime())
        }

        /// aiomisc's `run(main, *services)` on [`entrypoint`]: starts the
        /// services, runs `main`, stops them
        /// ([`run_on`]($crate::service::run_on)).
        ///
        /// # Errors
        /// As [`run_on`]($crate::service::run_on).
        pub async fn run<F: ::std::future::Future>(
            main: F,
            services: $crate::service::ServiceList<'_>,
        ) -> $crate::service::RunResult<F::Output, ::std::io::Error> {
            $crate::service::run_on(entrypoint(), main, services).await
        }
    };
}
