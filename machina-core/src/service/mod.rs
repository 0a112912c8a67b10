//! Services and what they share (facet's and aiomisc's services).
//!
//! - [`Service`]: start (ready when it returns, or when it says so and
//!   keeps running), stop with a reason, an optional stop timeout.
//! - [`Supervisor`]: a dependency graph of services — independent ones
//!   start in parallel, a failed start is rolled back, everything stops
//!   dependents first (independent services in parallel) with timeouts,
//!   and a failing background task is
//!   reported so the stack can be brought down; services can be added
//!   and removed while it runs (`start_service`, `stop_service`). Its
//!   graph, start stages and stop stages are a pure [`StackPlan`]; a
//!   bounded [`Supervisor::shutdown`] says what did and did not stop.
//! - [`Context`]: values shared under typed keys; `get` waits until set.
//! - [`PeriodicService`]: a callback every interval or at cron times,
//!   never overlapping.
//! - `ProcessService` (feature `process`, Unix): an external command as a
//!   service, restarted or bringing the stack down when it exits.
//! - [`StatsReporter`]: logs a summary of a `Stats` set every so often.
//! - [`RecurringService`]: a callback whose waits an async strategy
//!   chooses.
//! - [`Systemd`]: `READY=1`, `STOPPING=1`, `STATUS=` and watchdog pings
//!   for a program under systemd, as an entrypoint plugin.
//! - [`Entrypoint`]: hooks, plugins, signals, shutdown timeout, logging,
//!   and the settings an adapter reads from the environment ([`EnvConfig`]);
//!   [`ServiceControl`] for changes with hooks; the [`run`] shorthand.

mod adapter_kit;
mod context;
mod entrypoint;
mod env_config;
#[cfg(feature = "logging")]
mod log_writer;
#[cfg(feature = "logging")]
mod logging;
mod periodic;
#[cfg(all(unix, feature = "process"))]
mod process;
mod recurring;
#[cfg(feature = "sentry")]
mod sentry;
mod stats_reporter;
mod supervisor;
mod systemd;

pub use adapter_kit::entrypoint_with;
#[cfg(feature = "io")]
pub use adapter_kit::io_entrypoint;
#[cfg(feature = "io")]
pub use adapter_kit::os_signals;
pub use context::{Context, Key};
pub use entrypoint::{
    Entrypoint, EntrypointBuilder, EntrypointError, FORCED_EXIT_CODE, HookContext, Outcome, Plugin,
    RunError, RunResult, ServiceControl, ServiceList, Signals, run, run_on,
};
pub use env_config::EnvConfig;
#[cfg(feature = "logging")]
pub use logging::{LogConfig, LogError, LogFormat, LogGuard};
pub use periodic::PeriodicService;
#[cfg(all(unix, feature = "process"))]
pub use process::ProcessService;
pub use recurring::{RecurringService, RecurringState, Strategy};
#[cfg(feature = "sentry")]
pub use sentry::{SentryConfig, SentryError, SentryGuard, TAG_FIELDS, sentry_layer, what_to_send};
pub use stats_reporter::StatsReporter;
pub use supervisor::{
    ChangeError, CutShort, GraphError, Readiness, ReadyState, RestartPolicy, Service,
    ServiceContext, ServiceFuture, StackPlan, StartError, StartOutcome, StopContext, StopReason,
    StopReport, Supervisor, SupervisorBuilder,
};
#[cfg(all(unix, feature = "systemd"))]
pub use systemd::NotifySocket;
pub use systemd::{SdMessage, SdSink, Systemd};

#[cfg(all(test, feature = "test-util"))]
mod tests;
