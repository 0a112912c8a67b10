//! [`Entrypoint`]: runs a program's services around its main future, and
//! shuts them down in order on a signal (aiomisc `entrypoint` and `run`).
//! The core has the logic; an adapter supplies the signals
//! (`machina_tokio::entrypoint()`).
//!
//! # When each hook runs
//!
//! Every hook gets a [`HookContext`]: the services involved, and the
//! entrypoint's shared [`Context`], supervisor and runtime.
//!
//! | hook | runs | services involved |
//! | --- | --- | --- |
//! | `pre_start` | before any service starts | every service |
//! | `post_start` | after every service is ready (not after a failed or interrupted start) | every service |
//! | `pre_stop` | when the main future ends, a signal comes, or a background task fails — before any service stops (not after a failed or interrupted start) | the running services |
//! | `post_stop` | after the services stopped — also after a failed start's rollback, an interrupted start and a forced exit | the services that were stopped, in order |
//!
//! `pre_stop`, the stops and `post_stop` all run within the shutdown
//! timeout; a hook that hangs is cut off with the rest (if only
//! `post_stop` was cut off, every service having stopped, the exit is not
//! forced). After a forced exit, a `post_stop` that had not begun still
//! runs, for at most one second more. A panicking hook is
//! logged and the next one runs. Changes made through
//! [`Entrypoint::services`] fire the same hooks with `[name]` (see
//! [`ServiceControl`]).
//!
//! # Stop reasons
//!
//! Services are told why they stop: [`StopReason::Shutdown`] when the main
//! future ended, [`StopReason::Signal`] on a shutdown request (also one
//! that interrupts the start), [`StopReason::TaskFailed`] when a background
//! task failed, [`StopReason::StartFailed`] during a rollback.
//!
//! # Exit codes
//!
//! 0 after a clean stop; 1 when the start failed, a background task
//! failed (also during the start), the main future panicked, or a
//! service's stop failed or ran past its own timeout ([`Outcome::failure`]
//! keeps what failed); [`FORCED_EXIT_CODE`] (70, as aiomisc) when the
//! shutdown timeout ran out before every service stopped, or a signal came
//! during the shutdown — the second one after a signal started it, the
//! first during the rollback of a failed start. What did not stop is
//! logged (on standard error if nothing else logs), what the not-reached
//! services still run is aborted, and the stops that did finish stay in
//! the report; [`Outcome::exit`] then ends the process without waiting
//! for the runtime.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;

mod hooks;
mod run;

pub use hooks::HookContext;
use hooks::{Hook, Hooks, run_hooks};

use super::env_config::EnvConfig;
use super::supervisor::{
    ChangeError, GraphError, Service, StopReport, Supervisor, SupervisorBuilder,
};
use crate::error::BoxError;
use crate::rt::Runtime;

/// The exit code after a forced shutdown.
pub const FORCED_EXIT_CODE: i32 = 70;

/// Each item is one shutdown request (SIGINT, SIGTERM, …).
pub type Signals = Pin<Box<dyn Stream<Item = ()> + Send>>;

/// Why an adapter's `run(main, services)` shorthand did not run: the
/// adapter could not set up its entrypoint (`E`, e.g. no runtime or no
/// signal handlers), or the entrypoint could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError<E: std::error::Error + 'static> {
    /// The adapter could not set up the entrypoint.
    #[error("could not set up the entrypoint: {0}")]
    Setup(#[source] E),
    /// The entrypoint could not be built.
    #[error(transparent)]
    Entrypoint(#[from] EntrypointError),
}

/// An entrypoint that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntrypointError {
    /// The service graph is wrong.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// `MACHINA_SHUTDOWN_TIMEOUT` does not parse.
    #[error("invalid MACHINA_SHUTDOWN_TIMEOUT {value:?}: {reason}")]
    ShutdownTimeout {
        /// What the variable holds.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// The default logging set-up is refused (`MACHINA_LOG_LEVEL` or
    /// `MACHINA_LOG_FORMAT` holds something unusable).
    #[cfg(feature = "logging")]
    #[error(transparent)]
    Logging(#[from] super::logging::LogError),
    /// The Sentry set-up is refused (`SENTRY_DSN` does not parse, say).
    #[cfg(feature = "sentry")]
    #[error(transparent)]
    Sentry(#[from] super::sentry::SentryError),
}

/// Adds hooks and services to an entrypoint when it is built (aiomisc's
/// entrypoint plugins, resolved at build time rather than discovered).
///
/// # Examples
///
/// ```
/// use machina_core::service::{Entrypoint, EntrypointBuilder, Plugin};
/// use machina_core::testing::MockRuntime;
///
/// struct Banner;
/// impl Plugin for Banner {
///     fn register(self: Box<Self>, entrypoint: EntrypointBuilder) -> EntrypointBuilder {
///         entrypoint.pre_start(|hook| async move { println!("starting {:?}", hook.services()) })
///     }
/// }
///
/// let mock = MockRuntime::new();
/// let entrypoint = Entrypoint::builder(&mock.runtime()).plugin(Banner).build().unwrap();
/// let outcome = mock.block_on(entrypoint.run(async { 7 })).unwrap();
/// assert_eq!(outcome.value, Some(7));
/// ```
pub trait Plugin {
    /// Registers the plugin's hooks and services on `entrypoint`.
    fn register(self: Box<Self>, entrypoint: EntrypointBuilder) -> EntrypointBuilder;
}

/// Configures an [`Entrypoint`].
#[must_use = "call .build() to get the entrypoint"]
pub struct EntrypointBuilder {
    runtime: Runtime,
    supervisor: SupervisorBuilder,
    names: Vec<String>,
    hooks: Hooks,
    shutdown_timeout: Duration,
    signals: Option<Signals>,
    env: EnvConfig,
    #[cfg(feature = "logging")]
    logging: LogChoice,
    #[cfg(feature = "sentry")]
    sentry: Option<super::sentry::SentryConfig>,
}

/// The logging an entrypoint sets up (feature `logging`).
#[cfg(feature = "logging")]
#[derive(Debug, Clone)]
enum LogChoice {
    /// `LogConfig::new()` under the environment's settings, checked at
    /// build.
    Default,
    /// The builder's configuration (checked), under the environment's
    /// settings at build.
    Custom(super::logging::LogConfig),
    /// None at all.
    Off,
}

/// Why [`Entrypoint::run`] ended as it did, and with which exit code.
#[derive(Debug)]
#[non_exhaustive]
pub struct Outcome<T> {
    /// The main future's value, if it finished.
    pub value: Option<T>,
    /// The process exit code to use.
    pub exit_code: i32,
    /// What stopping the services reported.
    pub stop_report: StopReport,
    /// Services not stopped when the shutdown was forced: the one whose
    /// stop was under way first, then those not reached.
    pub not_stopped: Vec<String>,
    /// What brought the program down, if something failed: the service
    /// whose start or background task failed (or `"main"` for a panic in
    /// the main future), with the error.
    pub failure: Option<(String, BoxError)>,
}

impl<T> Outcome<T> {
    /// Ends the process with [`exit_code`](Self::exit_code) at once. After
    /// a forced shutdown this is the way out: returning from `main`
    /// instead would drop the async runtime, which may wait for blocking
    /// work that never ends.
    pub fn exit(&self) -> ! {
        std::process::exit(self.exit_code)
    }
}

impl EntrypointBuilder {
    /// Adds a service (see [`SupervisorBuilder::service`]).
    pub fn service(mut self, name: &str, service: impl Service, depends_on: &[&str]) -> Self {
        self.supervisor = self.supervisor.service(name, service, depends_on);
        self.names.push(name.to_owned());
        self
    }

    /// Lets `plugin` add its hooks and services.
    pub fn plugin(self, plugin: impl Plugin + 'static) -> Self {
        Box::new(plugin).register(self)
    }

    /// How long the whole shutdown may take (default 30 s; the
    /// environment's `MACHINA_SHUTDOWN_TIMEOUT`, e.g. `10s` or `1m30s`,
    /// overrides it when an adapter's `entrypoint()` handed it in through
    /// [`env`](Self::env), and [`build`](Self::build) refuses a value that
    /// does not parse).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Sets up logging with `config` when the entrypoint runs (feature
    /// `logging`); the environment's `MACHINA_LOG_LEVEL` and
    /// `MACHINA_LOG_FORMAT` (handed in through [`env`](Self::env)) override
    /// `config`.
    ///
    /// # Errors
    /// [`LogError`](super::LogError) for an unknown format or a level that
    /// does not parse, so a typo is caught before anything starts.
    #[cfg(feature = "logging")]
    pub fn logging(
        mut self,
        config: super::logging::LogConfig,
    ) -> Result<Self, super::logging::LogError> {
        self.logging = LogChoice::Custom(config.apply_env(&EnvConfig::default())?);
        Ok(self)
    }

    /// Sets up `LogConfig::new()` when the entrypoint runs, under the
    /// environment's `MACHINA_LOG_LEVEL` and `MACHINA_LOG_FORMAT` (checked
    /// by [`build`](Self::build)) — what the adapters' `entrypoint()` does
    /// with their feature `logging`. Nothing is installed if the program
    /// set up a global `tracing` subscriber itself.
    #[cfg(feature = "logging")]
    pub fn default_logging(mut self) -> Self {
        self.logging = LogChoice::Default;
        self
    }

    /// Sets up no logging at all (the core builder's default; it undoes
    /// [`default_logging`](Self::default_logging) and
    /// [`logging`](Self::logging)).
    #[cfg(feature = "logging")]
    pub fn no_logging(mut self) -> Self {
        self.logging = LogChoice::Off;
        self
    }

    /// Reports errors to Sentry as `config` says (feature `sentry`; see
    /// [`SentryConfig`](super::SentryConfig)): the environment's
    /// `SENTRY_DSN`, `SENTRY_ENVIRONMENT` and `SENTRY_RELEASE` (handed in
    /// through [`env`](Self::env)) override it, [`build`](Self::build)
    /// checks it, and with no DSN nothing is started. The client is started
    /// when the entrypoint runs, its `tracing` layer added to the logging
    /// set up then, and what is queued is flushed within the shutdown
    /// timeout.
    #[cfg(feature = "sentry")]
    pub fn sentry(mut self, config: super::sentry::SentryConfig) -> Self {
        self.sentry = Some(config);
        self
    }

    /// Reports errors to Sentry if the environment's `SENTRY_DSN` is set —
    /// what the adapters' `entrypoint()` does with their feature `sentry`.
    #[cfg(feature = "sentry")]
    pub fn default_sentry(self) -> Self {
        self.sentry(super::sentry::SentryConfig::new())
    }

    /// Reports nothing to Sentry (the core builder's default).
    #[cfg(feature = "sentry")]
    pub fn no_sentry(mut self) -> Self {
        self.sentry = None;
        self
    }

    /// The shutdown requests to listen to (adapters pass OS signals).
    pub fn signals(mut self, signals: Signals) -> Self {
        self.signals = Some(signals);
        self
    }

    /// The settings from the environment (adapters pass
    /// [`EnvConfig::from_env`]); without it, the entrypoint sees none.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::service::{Entrypoint, EntrypointError, EnvConfig};
    /// use machina_core::testing::MockRuntime;
    ///
    /// let mock = MockRuntime::new();
    /// let env = EnvConfig::from_lookup(|name| {
    ///     (name == EnvConfig::SHUTDOWN_TIMEOUT).then(|| "1x".to_owned())
    /// });
    /// let refused = Entrypoint::builder(&mock.runtime()).env(env).build();
    /// assert!(matches!(refused, Err(EntrypointError::ShutdownTimeout { .. })));
    /// ```
    pub fn env(mut self, env: EnvConfig) -> Self {
        self.env = env;
        self
    }

    fn hook<F, Fut>(f: F) -> Hook
    where
        F: Fn(HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Arc::new(move |hook| Box::pin(f(hook)))
    }

    /// Runs `hook` before any service starts.
    pub fn pre_start<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.hooks.pre_start.push(Self::hook(hook));
        self
    }

    /// Runs `hook` once every service is ready.
    pub fn post_start<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.hooks.post_start.push(Self::hook(hook));
        self
    }

    /// Runs `hook` before the services stop.
    pub fn pre_stop<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.hooks.pre_stop.push(Self::hook(hook));
        self
    }

    /// Runs `hook` after the services stopped.
    pub fn post_stop<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.hooks.post_stop.push(Self::hook(hook));
        self
    }

    /// Checks the service graph and the environment's settings.
    ///
    /// # Errors
    /// [`EntrypointError::Graph`] as [`SupervisorBuilder::build`];
    /// [`EntrypointError::ShutdownTimeout`] for a value that does not parse.
    pub fn build(self) -> Result<Entrypoint, EntrypointError> {
        let timeout = self
            .env
            .shutdown_timeout()?
            .unwrap_or(self.shutdown_timeout);
        #[cfg(feature = "logging")]
        let logging = match self.logging {
            LogChoice::Default => Some(super::logging::LogConfig::new().apply_env(&self.env)?),
            LogChoice::Custom(config) => Some(config.apply_env(&self.env)?),
            LogChoice::Off => None,
        };
        #[cfg(feature = "sentry")]
        let sentry = match self.sentry {
            Some(config) => Some(config.apply_env(&self.env)?).filter(|c| c.is_enabled()),
            None => None,
        };
        Ok(Entrypoint {
            runtime: self.runtime,
            supervisor: Arc::new(self.supervisor.build()?),
            names: self.names,
            hooks: Arc::new(self.hooks),
            shutdown_timeout: timeout,
            signals: self
                .signals
                .unwrap_or_else(|| Box::pin(futures::stream::pending())),
            #[cfg(feature = "logging")]
            logging,
            #[cfg(feature = "sentry")]
            sentry,
            #[cfg(feature = "sentry")]
            sentry_guard: None,
        })
    }
}

impl fmt::Debug for EntrypointBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntrypointBuilder")
            .field("services", &self.names)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish_non_exhaustive()
    }
}

/// A program's services, run around its main future; see the module docs.
///
/// # Examples
///
/// A signal comes 2 s into the main future: the hooks run in order, the
/// services stop dependents first, and the exit code is 0.
///
/// ```
/// use machina_core::service::{Entrypoint, Service, ServiceContext, ServiceFuture};
/// use machina_core::testing::MockRuntime;
/// use futures::StreamExt;
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
///
/// struct Noop;
/// impl Service for Noop {
///     fn start(self: Arc<Self>, _ctx: ServiceContext) -> ServiceFuture {
///         Box::pin(async { Ok(()) })
///     }
/// }
///
/// let mock = MockRuntime::new();
/// let rt = mock.runtime();
/// // A stand-in for SIGTERM: one shutdown request after 2 s.
/// let signal_rt = rt.clone();
/// let signals = futures::stream::once(async move {
///     signal_rt.sleep(Duration::from_secs(2)).await;
/// })
/// .chain(futures::stream::pending());
/// let log = Arc::new(Mutex::new(Vec::new()));
/// let (pre, post) = (log.clone(), log.clone());
/// let entrypoint = Entrypoint::builder(&rt)
///     .signals(Box::pin(signals))
///     .service("db", Noop, &[])
///     .service("api", Noop, &["db"])
///     .post_start(move |hook| {
///         let pre = pre.clone();
///         async move { pre.lock().unwrap().push(format!("started {:?}", hook.services())) }
///     })
///     .post_stop(move |hook| {
///         let post = post.clone();
///         async move { post.lock().unwrap().push(format!("stopped {:?}", hook.services())) }
///     })
///     .build()
///     .unwrap();
/// let outcome = mock.block_on(entrypoint.run_forever()).unwrap();
/// assert_eq!(outcome.exit_code, 0);
/// assert_eq!(mock.elapsed(), Duration::from_secs(2));
/// assert_eq!(
///     *log.lock().unwrap(),
///     [r#"started ["db", "api"]"#, r#"stopped ["api", "db"]"#]
/// );
/// ```
pub struct Entrypoint {
    runtime: Runtime,
    supervisor: Arc<Supervisor>,
    names: Vec<String>,
    hooks: Arc<Hooks>,
    shutdown_timeout: Duration,
    signals: Signals,
    #[cfg(feature = "logging")]
    logging: Option<super::logging::LogConfig>,
    #[cfg(feature = "sentry")]
    sentry: Option<super::sentry::SentryConfig>,
    #[cfg(feature = "sentry")]
    sentry_guard: Option<super::sentry::SentryGuard>,
}

impl Entrypoint {
    /// Starts configuring an entrypoint on `runtime` (adapters add OS
    /// signals: `machina_tokio::entrypoint()`).
    pub fn builder(runtime: &Runtime) -> EntrypointBuilder {
        EntrypointBuilder {
            runtime: runtime.clone(),
            supervisor: Supervisor::builder(runtime),
            names: Vec::new(),
            hooks: Hooks::default(),
            shutdown_timeout: Duration::from_secs(30),
            env: EnvConfig::default(),
            signals: None,
            #[cfg(feature = "logging")]
            logging: LogChoice::Off,
            #[cfg(feature = "sentry")]
            sentry: None,
        }
    }

    /// The supervisor of the services: its `Context`, what runs, and,
    /// cloned into the main future, [`Supervisor::start_service`] /
    /// [`Supervisor::stop_service`] while the program runs — without the
    /// hooks; [`services`](Self::services) makes the same changes with
    /// them. Services added either way are stopped with the rest at
    /// shutdown.
    pub fn supervisor(&self) -> &Arc<Supervisor> {
        &self.supervisor
    }

    /// A handle for the main future that starts and stops single services
    /// while the program runs, firing this entrypoint's hooks around each
    /// change (aiomisc `start_services` / `stop_services`).
    pub fn services(&self) -> ServiceControl {
        ServiceControl {
            supervisor: self.supervisor.clone(),
            hooks: self.hooks.clone(),
        }
    }

    /// Runs until a shutdown signal, then stops the services.
    pub async fn run_forever(self) -> Outcome<()> {
        self.run(futures::future::pending::<()>()).await
    }
}

impl fmt::Debug for Entrypoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entrypoint")
            .field("services", &self.names)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish_non_exhaustive()
    }
}

/// Starts and stops services on a running entrypoint, with its hooks:
/// `pre_start` and `post_start` around a start (`post_start` only if it
/// succeeded), `pre_stop` and `post_stop` around a stop (neither if the
/// stop is refused up front; if a change made meanwhile refuses it after
/// `pre_stop` ran, `post_stop` hears that nothing stopped). Abandoning a
/// change (dropping its future, as a shutdown does to the main future)
/// aborts the service's tasks and forgets it. From
/// [`Entrypoint::services`].
#[derive(Clone)]
pub struct ServiceControl {
    supervisor: Arc<Supervisor>,
    hooks: Arc<Hooks>,
}

impl ServiceControl {
    /// See [`Supervisor::start_service`]; the hooks receive `[name]`.
    ///
    /// # Errors
    /// As [`Supervisor::start_service`].
    pub async fn start_service(
        &self,
        name: &str,
        service: impl Service,
        depends_on: &[&str],
    ) -> Result<(), ChangeError> {
        self.supervisor.check_startable(name, depends_on)?;
        let names = [name.to_string()];
        run_hooks(&self.hooks.pre_start, &names, &self.supervisor).await;
        self.supervisor
            .start_service(name, service, depends_on)
            .await?;
        run_hooks(&self.hooks.post_start, &names, &self.supervisor).await;
        Ok(())
    }

    /// See [`Supervisor::stop_service`]; `pre_stop` receives `[name]`,
    /// `post_stop` what was stopped.
    ///
    /// # Errors
    /// As [`Supervisor::stop_service`].
    pub async fn stop_service(&self, name: &str) -> Result<StopReport, ChangeError> {
        self.supervisor.check_stoppable(name)?;
        run_hooks(&self.hooks.pre_stop, &[name.to_string()], &self.supervisor).await;
        let stopped = self.supervisor.stop_service(name).await;
        // A change made meanwhile may still refuse the stop; `post_stop`
        // then hears that nothing stopped, so the hooks stay paired.
        let names = stopped.as_ref().map_or(&[][..], |r| &r.stopped[..]);
        run_hooks(&self.hooks.post_stop, names, &self.supervisor).await;
        stopped
    }
}

impl std::fmt::Debug for ServiceControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceControl")
            .field("supervisor", &self.supervisor)
            .finish_non_exhaustive()
    }
}

/// aiomisc's `run(main, *services)` on a given entrypoint builder (the
/// adapters' `run(main, services)` use theirs): starts `services` (together, no
/// dependencies between them) on `entry`, runs `main`, then stops them in
/// reverse; `entry`'s signals, hooks and shutdown timeout apply.
///
/// # Errors
/// [`EntrypointError`] when two services share a name, or the
/// environment's `MACHINA_SHUTDOWN_TIMEOUT` does not parse.
///
/// # Examples
///
/// ```
/// use machina_core::service::{self, Entrypoint, Service, ServiceContext, ServiceFuture};
/// use machina_core::testing::MockRuntime;
/// use std::sync::Arc;
///
/// struct Noop;
/// impl Service for Noop {
///     fn start(self: Arc<Self>, _ctx: ServiceContext) -> ServiceFuture {
///         Box::pin(async { Ok(()) })
///     }
/// }
/// let mock = MockRuntime::new();
/// let entry = Entrypoint::builder(&mock.runtime());
/// let services: Vec<(&str, Arc<dyn Service>)> = vec![("a", Arc::new(Noop)), ("b", Arc::new(Noop))];
/// let outcome = mock.block_on(service::run(entry, async { 42 }, services)).unwrap().unwrap();
/// assert_eq!((outcome.value, outcome.exit_code), (Some(42), 0));
/// ```
pub async fn run<F: Future>(
    entry: EntrypointBuilder,
    main: F,
    services: Vec<(&str, Arc<dyn Service>)>,
) -> Result<Outcome<F::Output>, EntrypointError> {
    let entry = services.into_iter().fold(entry, |entry, (name, service)| {
        entry.service(name, service, &[])
    });
    Ok(entry.build()?.run(main).await)
}

/// Named services with no dependency between them, as [`run`] takes them.
pub type ServiceList<'a> = Vec<(&'a str, Arc<dyn Service>)>;

/// What an adapter's `run(main, services)` shorthand returns: the outcome
/// of a main future of output `T`, or why it could not run (the adapter's
/// set-up error `E`, or the entrypoint's).
pub type RunResult<T, E> = Result<Outcome<T>, RunError<E>>;

/// [`run`] on an adapter's entrypoint, which may have failed to set up:
/// the body of every adapter's `run(main, services)` shorthand.
///
/// # Errors
/// [`RunError::Setup`] with the adapter's error; [`RunError::Entrypoint`]
/// as [`run`].
pub async fn run_on<F: Future, E: std::error::Error + 'static>(
    entry: Result<EntrypointBuilder, E>,
    main: F,
    services: ServiceList<'_>,
) -> RunResult<F::Output, E> {
    let entry = entry.map_err(RunError::Setup)?;
    Ok(run(entry, main, services).await?)
}
