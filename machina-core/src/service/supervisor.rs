//! [`Supervisor`]: starts services in dependency order (independent ones in
//! parallel), rolls back a failed start, and stops everything in reverse.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;

use super::context::Context;

mod dynamic;
mod plan;
mod readiness;
mod service_context;
mod start;
mod stop;
mod stop_context;
use crate::error::BoxError;
use crate::rt::{JoinError, JoinHandle, PanicPayload, Runtime};
pub use dynamic::ChangeError;
pub use plan::StackPlan;
pub use readiness::{Readiness, ReadyState};
use service_context::FailureSink;
pub use service_context::{RestartPolicy, ServiceContext};
use start::News;
pub use start::StartOutcome;
pub(crate) use start::Starting;
pub use stop_context::StopContext;

/// What a service's `start` and `stop` return.
pub type ServiceFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send + 'static>>;

/// Why a service is being stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// An orderly shutdown: the program's main work ended.
    Shutdown,
    /// A shutdown requested from outside (SIGINT, SIGTERM, Ctrl+C).
    Signal,
    /// The start of the stack failed (this service had started).
    StartFailed {
        /// The service whose start failed.
        service: String,
    },
    /// A background task of a service failed.
    TaskFailed {
        /// The service the task belonged to.
        service: String,
    },
    /// The service alone was stopped on a running stack
    /// ([`Supervisor::stop_service`]).
    Removed,
}

/// A long-running part of a program (facet's and aiomisc's services).
///
/// `start` returning `Ok` means the service is ready. A service that must
/// keep running after it is ready calls [`ServiceContext::ready`] and goes
/// on; the rest of its `start` then runs in the background and is
/// cancelled at shutdown. Configuration comes through the service's own
/// constructor.
pub trait Service: Send + Sync + 'static {
    /// Starts the service.
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture;

    /// Stops it, told why in `ctx` (with the runtime and the shared
    /// context); the default does nothing. Called only for a service that
    /// started, before its background work is cancelled (tasks it spawns
    /// from here on are dropped), and bounded by its timeout. Services
    /// with no dependency between them stop at the same time. A `stop`
    /// must not stop other services of its own supervisor: during a full
    /// stop that is refused at once ([`ChangeError::ShuttingDown`]);
    /// during a [`Supervisor::stop_service`] it would wait for its own
    /// stop until the timeout.
    fn stop(self: Arc<Self>, ctx: StopContext) -> ServiceFuture {
        let _ = ctx;
        Box::pin(async { Ok(()) })
    }

    /// How long `stop` may take (default: the supervisor's).
    fn graceful_shutdown_timeout(&self) -> Option<Duration> {
        None
    }
}

/// A shared service is a service: lists such as
/// [`SupervisorBuilder::stages`] and [`run`](super::run) hold them.
impl Service for Arc<dyn Service> {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        <dyn Service as Service>::start(Arc::clone(&*self), ctx)
    }

    fn stop(self: Arc<Self>, ctx: StopContext) -> ServiceFuture {
        <dyn Service as Service>::stop(Arc::clone(&*self), ctx)
    }

    fn graceful_shutdown_timeout(&self) -> Option<Duration> {
        (**self).graceful_shutdown_timeout()
    }
}

/// A panic caught in a service's future, as an error.
pub(super) fn panic_error(payload: Box<dyn std::any::Any + Send>) -> BoxError {
    Box::new(JoinError::Panicked(PanicPayload::new(payload)))
}

/// A supervisor that could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// Two services share a name.
    #[error("duplicate service name {0:?}")]
    Duplicate(String),
    /// A service depends on one that is not registered.
    #[error("service {service:?} depends on {missing:?}, which is not registered")]
    UnknownDependency {
        /// The dependent.
        service: String,
        /// The missing dependency.
        missing: String,
    },
    /// The dependencies form a cycle.
    #[error("services depend on each other in a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
}

/// A start that failed and was rolled back.
#[derive(Debug, thiserror::Error)]
#[error("service {service:?} failed to start: {error}; rolled back: {rolled_back:?}")]
pub struct StartError {
    /// The service whose start failed.
    pub service: String,
    /// Its error.
    pub error: BoxError,
    /// The services that had started and were stopped again, in the order
    /// they were stopped.
    pub rolled_back: Vec<String>,
    /// What stopping them reported.
    pub stop_report: StopReport,
}

/// What stopping reported: nothing is dropped silently.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct StopReport {
    /// Services stopped, in order.
    pub stopped: Vec<String>,
    /// Services whose `stop` failed, with the error.
    pub errors: Vec<(String, BoxError)>,
    /// Services whose `stop` ran past their timeout.
    pub timed_out: Vec<String>,
    /// Services a [`Supervisor::shutdown`] cut short did not stop: their
    /// stop was under way (then abandoned) or had not begun; what they ran
    /// was aborted. Empty unless `cut_short` is set.
    pub not_stopped: Vec<String>,
    /// Why a [`Supervisor::shutdown`] ended before every service stopped.
    pub cut_short: Option<CutShort>,
}

impl StopReport {
    /// Whether every service stopped, cleanly and in time.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty() && self.timed_out.is_empty() && self.not_stopped.is_empty()
    }
}

/// Why a [`Supervisor::shutdown`] did not wait for every stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CutShort {
    /// The deadline passed.
    Deadline,
    /// The interrupt came (a second shutdown request).
    Interrupted,
}

/// Locks `mutex`, ignoring poisoning (the data stays consistent: every
/// section below is a single push, pop or take).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// A registered service: its name in the plan and the service itself.
#[derive(Clone)]
struct Entry {
    name: Arc<str>,
    service: Arc<dyn Service>,
}

/// Everything about a stack that changes as it runs, behind one lock: the
/// graph and its services, what runs, what is stopping, what the stops
/// reported, and whether a full stop has begun.
struct Lifecycle {
    /// The graph of the registered services ([`Supervisor::start_service`]
    /// adds to it, [`Supervisor::stop_service`] removes from it).
    plan: StackPlan,
    /// The service of each name in the plan, in the same order.
    entries: Vec<Entry>,
    /// Services that are ready, in the order they became ready.
    running: Vec<Launched>,
    /// Services whose stop is under way.
    stopping: Vec<Arc<str>>,
    /// What the stops reported and nobody has taken yet.
    report: StopReport,
    /// Set when a full stop begins (cleared by the next start): dynamic
    /// starts are refused from then on.
    closing: bool,
    /// Services whose dynamic start is under way: they count as
    /// dependents of what they need.
    dynamic_starts: Vec<Arc<str>>,
}

impl Lifecycle {
    /// Removes `name` from the registered services.
    fn forget(&mut self, name: &str) {
        self.plan.remove(name);
        self.entries.retain(|e| &*e.name != name);
    }
}

/// Registers services and their dependencies.
#[must_use = "call .build() to get the supervisor"]
pub struct SupervisorBuilder {
    runtime: Runtime,
    entries: Vec<(Entry, Vec<String>)>,
    stop_timeout: Duration,
    context: Context,
}

impl SupervisorBuilder {
    /// Adds `service` named `name`, started only after every service in
    /// `depends_on` is ready.
    pub fn service(mut self, name: &str, service: impl Service, depends_on: &[&str]) -> Self {
        let entry = Entry {
            name: name.into(),
            service: Arc::new(service),
        };
        let deps = depends_on.iter().map(|d| (*d).to_owned()).collect();
        self.entries.push((entry, deps));
        self
    }

    /// facet's nested form: each inner list starts in parallel, after the
    /// whole previous list.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::service::{Service, ServiceContext, ServiceFuture, Supervisor};
    /// use machina_core::testing::MockRuntime;
    /// use std::sync::Arc;
    ///
    /// struct Noop;
    /// impl Service for Noop {
    ///     fn start(self: Arc<Self>, _ctx: ServiceContext) -> ServiceFuture {
    ///         Box::pin(async { Ok(()) })
    ///     }
    /// }
    /// let noop = || Arc::new(Noop) as Arc<dyn Service>;
    /// let mock = MockRuntime::new();
    /// let stack = Supervisor::builder(&mock.runtime())
    ///     .stages(vec![
    ///         vec![("config", noop())],
    ///         vec![("db", noop()), ("cache", noop())],
    ///         vec![("api", noop())],
    ///     ])
    ///     .build()
    ///     .unwrap();
    /// let plan = stack.plan();
    /// assert_eq!(plan.start_stages(), [vec!["config"], vec!["db", "cache"], vec!["api"]]);
    /// assert_eq!(plan.dependencies("api"), ["db", "cache"]);
    /// ```
    pub fn stages(mut self, stages: Vec<Vec<(&str, Arc<dyn Service>)>>) -> Self {
        let mut previous: Vec<String> = Vec::new();
        for stage in stages {
            let names: Vec<String> = stage.iter().map(|(n, _)| (*n).to_owned()).collect();
            for (name, service) in stage {
                let entry = Entry {
                    name: name.into(),
                    service,
                };
                self.entries.push((entry, previous.clone()));
            }
            // An empty stage adds nothing to wait for.
            if !names.is_empty() {
                previous = names;
            }
        }
        self
    }

    /// How long a service's `stop` may take unless it says otherwise
    /// (default 10 s).
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// Shares `context` with the services (default: a new one).
    pub fn context(mut self, context: Context) -> Self {
        self.context = context;
        self
    }

    /// Checks the graph before anything starts.
    ///
    /// # Errors
    /// [`GraphError`] for duplicate names, unknown dependencies or a cycle.
    pub fn build(self) -> Result<Supervisor, GraphError> {
        let plan = StackPlan::new(self.entries.iter().map(|(e, deps)| (&*e.name, deps)))?;
        let (failures_tx, failures_rx) = mpsc::unbounded();
        Ok(Supervisor {
            runtime: self.runtime,
            stop_timeout: self.stop_timeout,
            context: self.context,
            life: Arc::new(Mutex::new(Lifecycle {
                plan,
                entries: self.entries.into_iter().map(|(e, _)| e).collect(),
                running: Vec::new(),
                stopping: Vec::new(),
                report: StopReport::default(),
                closing: false,
                dynamic_starts: Vec::new(),
            })),
            stop_turn: futures::lock::Mutex::new(()),
            failures_tx,
            failures_rx: futures::lock::Mutex::new(failures_rx),
        })
    }
}

impl fmt::Debug for SupervisorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisorBuilder")
            .field(
                "services",
                &self
                    .entries
                    .iter()
                    .map(|(e, _)| &*e.name)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// A service whose start has been launched: what is needed to cancel or
/// stop it.
struct Launched {
    name: Arc<str>,
    service: Arc<dyn Service>,
    /// The task running `start` (and, after readiness, its remainder).
    task: JoinHandle<()>,
    /// Background tasks the service spawned.
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// Set when its stop begins: failures after that are not reported.
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

/// Starts and stops a graph of services; see the module docs.
///
/// # Examples
///
/// ```
/// use machina_core::service::{Service, ServiceContext, ServiceFuture, StopContext, Supervisor};
/// use machina_core::testing::MockRuntime;
/// use std::sync::{Arc, Mutex};
///
/// struct Named(&'static str, Arc<Mutex<Vec<String>>>);
/// impl Service for Named {
///     fn start(self: Arc<Self>, _ctx: ServiceContext) -> ServiceFuture {
///         Box::pin(async move { self.1.lock().unwrap().push(format!("start {}", self.0)); Ok(()) })
///     }
///     fn stop(self: Arc<Self>, _ctx: StopContext) -> ServiceFuture {
///         Box::pin(async move { self.1.lock().unwrap().push(format!("stop {}", self.0)); Ok(()) })
///     }
/// }
///
/// let log = Arc::new(Mutex::new(Vec::new()));
/// let mock = MockRuntime::new();
/// let stack = Supervisor::builder(&mock.runtime())
///     .service("db", Named("db", log.clone()), &[])
///     .service("api", Named("api", log.clone()), &["db"])
///     .build()
///     .unwrap();
/// mock.block_on(async {
///     stack.start().await.unwrap();
///     stack.stop().await;
/// }).unwrap();
/// assert_eq!(*log.lock().unwrap(), ["start db", "start api", "stop api", "stop db"]);
/// ```
pub struct Supervisor {
    runtime: Runtime,
    stop_timeout: Duration,
    context: Context,
    /// The stack's state, under one lock.
    life: Arc<Mutex<Lifecycle>>,
    /// Held by whichever stop runs: one full or dynamic stop at a time
    /// (within a full stop, independent services stop in parallel).
    stop_turn: futures::lock::Mutex<()>,
    failures_tx: mpsc::UnboundedSender<(Arc<str>, BoxError)>,
    failures_rx: futures::lock::Mutex<mpsc::UnboundedReceiver<(Arc<str>, BoxError)>>,
}

impl Supervisor {
    /// Starts registering services on `runtime`.
    pub fn builder(runtime: &Runtime) -> SupervisorBuilder {
        SupervisorBuilder {
            runtime: runtime.clone(),
            entries: Vec::new(),
            stop_timeout: Duration::from_secs(10),
            context: Context::new(),
        }
    }

    /// The values shared by the services.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The runtime the services run on.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    fn life(&self) -> std::sync::MutexGuard<'_, Lifecycle> {
        lock(&self.life)
    }

    /// The services running, in the order they became ready.
    pub fn running_services(&self) -> Vec<String> {
        self.life()
            .running
            .iter()
            .map(|s| s.name.to_string())
            .collect()
    }

    /// A view of whether the stack is ready (every registered service
    /// running, none stopping), for health probes.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::service::{Service, ServiceContext, ServiceFuture, Supervisor};
    /// use machina_core::testing::MockRuntime;
    /// use std::sync::Arc;
    ///
    /// struct Quick;
    /// impl Service for Quick {
    ///     fn start(self: Arc<Self>, _ctx: ServiceContext) -> ServiceFuture {
    ///         Box::pin(async { Ok(()) })
    ///     }
    /// }
    ///
    /// let mock = MockRuntime::new();
    /// let stack = Supervisor::builder(&mock.runtime()).service("quick", Quick, &[]).build().unwrap();
    /// let readiness = stack.readiness();
    /// assert_eq!(readiness.check().not_running, ["quick"]);
    /// mock.block_on(async { stack.start().await.unwrap() }).unwrap();
    /// assert!(readiness.check().ready);
    /// ```
    pub fn readiness(&self) -> Readiness {
        Readiness {
            life: Arc::downgrade(&self.life),
        }
    }

    /// The graph of the registered services, as it is now.
    pub fn plan(&self) -> StackPlan {
        self.life().plan.clone()
    }

    /// The background failures reported and not yet taken, without
    /// waiting (for a shutdown that no longer waits on
    /// [`failure`](Self::failure)).
    pub(crate) fn take_failures(&self) -> Vec<(String, BoxError)> {
        let mut taken = Vec::new();
        if let Some(mut rx) = self.failures_rx.try_lock() {
            while let Ok((name, error)) = rx.try_recv() {
                taken.push((name.to_string(), error));
            }
        }
        taken
    }

    /// Waits until a service's background work fails; returns which and
    /// why. A program usually stops the stack then.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::service::{Service, ServiceContext, ServiceFuture, Supervisor};
    /// use machina_core::testing::MockRuntime;
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// /// Ready at once; its background job dies after a minute.
    /// struct Worker;
    /// impl Service for Worker {
    ///     fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
    ///         let rt = ctx.runtime().clone();
    ///         ctx.spawn(async move {
    ///             rt.sleep(Duration::from_secs(60)).await;
    ///             Err("the queue went away".into())
    ///         });
    ///         Box::pin(async { Ok(()) })
    ///     }
    /// }
    ///
    /// let mock = MockRuntime::new();
    /// let stack = Supervisor::builder(&mock.runtime()).service("worker", Worker, &[]).build().unwrap();
    /// let (service, error) = mock.block_on(async {
    ///     stack.start().await.unwrap();
    ///     let failed = stack.failure().await.unwrap();
    ///     stack.stop().await;
    ///     failed
    /// }).unwrap();
    /// assert_eq!((service.as_str(), error.to_string().as_str()), ("worker", "the queue went away"));
    /// assert_eq!(mock.elapsed(), Duration::from_secs(60));
    /// ```
    pub async fn failure(&self) -> Option<(String, BoxError)> {
        let mut rx = self.failures_rx.lock().await;
        rx.next()
            .await
            .map(|(name, error)| (name.to_string(), error))
    }
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("services", &self.plan().services().collect::<Vec<_>>())
            .field("started", &self.running_services())
            .finish_non_exhaustive()
    }
}
