//! [`Supervisor`]: starts services in dependency order (independent ones in
//! parallel), rolls back a failed start, and stops everything in reverse.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, StreamExt};

use super::context::Context;

mod dynamic;
use crate::retry::BoxError;
use crate::rt::{JoinError, JoinHandle, PanicPayload, Runtime};
pub use dynamic::ChangeError;

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

    /// Stops it; the default does nothing. Called only for a service that
    /// started, before its background work is cancelled.
    fn stop(self: Arc<Self>, reason: StopReason) -> ServiceFuture {
        let _ = reason;
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

    fn stop(self: Arc<Self>, reason: StopReason) -> ServiceFuture {
        <dyn Service as Service>::stop(Arc::clone(&*self), reason)
    }

    fn graceful_shutdown_timeout(&self) -> Option<Duration> {
        (**self).graceful_shutdown_timeout()
    }
}

/// What a background task of a service does when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RestartPolicy {
    /// The failure brings the whole stack down (facet's behaviour).
    #[default]
    Never,
    /// Run the task again after `backoff`, doubling each time (at most 64×),
    /// up to `max_restarts` times; a failure after that brings the stack
    /// down.
    OnFailure {
        /// The first wait before a restart.
        backoff: Duration,
        /// How many restarts are allowed.
        max_restarts: u32,
    },
}

/// What a service gets while it starts: its name, the shared [`Context`],
/// the runtime, a way to say it is ready, and background tasks.
pub struct ServiceContext {
    name: Arc<str>,
    context: Context,
    runtime: Runtime,
    ready: Arc<Mutex<Option<oneshot::Sender<()>>>>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    failures: mpsc::UnboundedSender<(Arc<str>, BoxError)>,
}

/// A panic caught in a service's future, as an error.
fn panic_error(payload: Box<dyn std::any::Any + Send>) -> BoxError {
    Box::new(JoinError::Panicked(PanicPayload::new(payload)))
}

impl ServiceContext {
    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The values shared by all services.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Declares the service ready; the rest of its `start` runs on in the
    /// background.
    pub fn ready(&self) {
        if let Some(tx) = self.ready.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(());
        }
    }

    /// Runs `task` in the background for as long as the service runs; if it
    /// fails (an error or a panic), the whole stack is brought down. When
    /// the service stops, the task is cancelled and awaited.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let (name, failures) = (self.name.clone(), self.failures.clone());
        let guarded = async move {
            let failure = match AssertUnwindSafe(task).catch_unwind().await {
                Ok(Ok(())) => return,
                Ok(Err(error)) => error,
                Err(payload) => panic_error(payload),
            };
            let _ = failures.unbounded_send((name, failure));
        };
        match self.runtime.spawn_named(&self.name, guarded) {
            Ok(handle) => {
                let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
                // A service that spawns many short tasks must not pile up
                // handles of finished ones.
                tasks.retain(|t| !t.is_finished());
                tasks.push(handle);
            }
            Err(error) => {
                let _ = self
                    .failures
                    .unbounded_send((self.name.clone(), Box::new(error)));
            }
        }
    }
}

impl ServiceContext {
    /// Runs the task that `make` produces in the background, under
    /// `policy`: with [`RestartPolicy::OnFailure`], a failed (or panicked)
    /// run is replaced by a fresh one from `make` after a backoff; once the
    /// restarts are used up, the failure brings the stack down.
    pub fn spawn_restarting<M, F>(&self, policy: RestartPolicy, mut make: M)
    where
        M: FnMut() -> F + Send + 'static,
        F: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let runtime = self.runtime.clone();
        let name = self.name.clone();
        self.spawn(async move {
            let mut restarts = 0u32;
            loop {
                // Aborted with this task when the service stops.
                let run = runtime.spawn_named(&name, make())?.abort_on_drop();
                let error: BoxError = match run.await {
                    Ok(Ok(())) => return Ok(()),
                    Ok(Err(error)) => error,
                    Err(join) => Box::new(join),
                };
                match policy {
                    RestartPolicy::OnFailure {
                        backoff,
                        max_restarts,
                    } if restarts < max_restarts => {
                        let wait = backoff.saturating_mul(1 << restarts.min(6));
                        restarts += 1;
                        tracing::warn!(service = %name, %error, restart = restarts, ?wait, "background task failed; restarting");
                        runtime.sleep(wait).await;
                    }
                    _ => return Err(error),
                }
            }
        });
    }
}

impl fmt::Debug for ServiceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceContext")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
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
}

impl StopReport {
    /// Whether every stop ended cleanly and in time.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty() && self.timed_out.is_empty()
    }

    fn absorb(&mut self, other: StopReport) {
        self.stopped.extend(other.stopped);
        self.errors.extend(other.errors);
        self.timed_out.extend(other.timed_out);
    }
}

/// Locks `mutex`, ignoring poisoning (the data stays consistent: every
/// section below is a single push, pop or take).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Clone)]
struct Entry {
    name: Arc<str>,
    service: Arc<dyn Service>,
    deps: Vec<String>,
}

/// Registers services and their dependencies.
#[must_use = "call .build() to get the supervisor"]
pub struct SupervisorBuilder {
    runtime: Runtime,
    entries: Vec<Entry>,
    stop_timeout: Duration,
    context: Context,
}

impl SupervisorBuilder {
    /// Adds `service` named `name`, started only after every service in
    /// `depends_on` is ready.
    pub fn service(mut self, name: &str, service: impl Service, depends_on: &[&str]) -> Self {
        self.entries.push(Entry {
            name: name.into(),
            service: Arc::new(service),
            deps: depends_on.iter().map(|d| (*d).to_owned()).collect(),
        });
        self
    }

    /// facet's nested form: each inner list starts in parallel, after the
    /// whole previous list.
    pub fn stages(mut self, stages: Vec<Vec<(&str, Arc<dyn Service>)>>) -> Self {
        let mut previous: Vec<String> = Vec::new();
        for stage in stages {
            let names: Vec<String> = stage.iter().map(|(n, _)| (*n).to_owned()).collect();
            for (name, service) in stage {
                self.entries.push(Entry {
                    name: name.into(),
                    service,
                    deps: previous.clone(),
                });
            }
            previous = names;
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
        let mut names = HashSet::new();
        for entry in &self.entries {
            if !names.insert(entry.name.to_string()) {
                return Err(GraphError::Duplicate(entry.name.to_string()));
            }
        }
        for entry in &self.entries {
            if let Some(missing) = entry.deps.iter().find(|d| !names.contains(*d)) {
                return Err(GraphError::UnknownDependency {
                    service: entry.name.to_string(),
                    missing: missing.clone(),
                });
            }
        }
        // Depth-first search for a cycle.
        let index: HashMap<&str, usize> = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (&*e.name, i))
            .collect();
        let mut color = vec![0u8; self.entries.len()];
        fn visit(
            i: usize,
            entries: &[Entry],
            index: &HashMap<&str, usize>,
            color: &mut [u8],
            path: &mut Vec<String>,
        ) -> Option<Vec<String>> {
            color[i] = 1;
            path.push(entries[i].name.to_string());
            for dep in &entries[i].deps {
                let j = index[dep.as_str()];
                if color[j] == 1 {
                    let start = path.iter().position(|n| n == dep).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(dep.clone());
                    return Some(cycle);
                }
                if color[j] == 0
                    && let Some(cycle) = visit(j, entries, index, color, path)
                {
                    return Some(cycle);
                }
            }
            path.pop();
            color[i] = 2;
            None
        }
        for i in 0..self.entries.len() {
            if color[i] == 0
                && let Some(cycle) = visit(i, &self.entries, &index, &mut color, &mut Vec::new())
            {
                return Err(GraphError::Cycle(cycle));
            }
        }
        let (failures_tx, failures_rx) = mpsc::unbounded();
        Ok(Supervisor {
            runtime: self.runtime,
            entries: Mutex::new(self.entries),
            stop_timeout: self.stop_timeout,
            context: self.context,
            running: Mutex::new(Vec::new()),
            stopping: Mutex::new(Vec::new()),
            progress: Mutex::new(StopReport::default()),
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
                &self.entries.iter().map(|e| &*e.name).collect::<Vec<_>>(),
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
}

impl Launched {
    /// Cancels the start task and the background tasks, and waits until
    /// every one of them has ended (their futures dropped).
    async fn cancel(self) {
        let tasks: Vec<JoinHandle<()>> = self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        tasks.iter().for_each(JoinHandle::abort);
        self.task.abort();
        for task in tasks {
            let _ = task.await;
        }
        let _ = self.task.await;
    }
}

/// Starts and stops a graph of services; see the module docs.
///
/// # Examples
///
/// ```
/// use machina_core::service::{Service, ServiceContext, ServiceFuture, StopReason, Supervisor};
/// use machina_core::testing::MockRuntime;
/// use std::sync::{Arc, Mutex};
///
/// struct Named(&'static str, Arc<Mutex<Vec<String>>>);
/// impl Service for Named {
///     fn start(self: Arc<Self>, _ctx: ServiceContext) -> ServiceFuture {
///         Box::pin(async move { self.1.lock().unwrap().push(format!("start {}", self.0)); Ok(()) })
///     }
///     fn stop(self: Arc<Self>, _reason: StopReason) -> ServiceFuture {
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
    /// Registered services; [`Supervisor::start_service`] adds to them.
    entries: Mutex<Vec<Entry>>,
    stop_timeout: Duration,
    context: Context,
    /// Services that are ready, in the order they became ready.
    running: Mutex<Vec<Launched>>,
    /// Services whose stop is under way.
    stopping: Mutex<Vec<Arc<str>>>,
    /// What the stops of the shutdown under way reported so far.
    progress: Mutex<StopReport>,
    failures_tx: mpsc::UnboundedSender<(Arc<str>, BoxError)>,
    failures_rx: futures::lock::Mutex<mpsc::UnboundedReceiver<(Arc<str>, BoxError)>>,
}

/// How [`Supervisor::start_until`] ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Started {
    /// Every service is ready.
    All,
    /// Interrupted: the services not yet ready were cancelled.
    Interrupted,
}

/// A service whose start is under way. If the start is abandoned (its
/// future dropped) the start task and its background tasks are aborted, so
/// nothing keeps running unowned.
struct Starting(Option<Launched>);

impl Starting {
    fn take(&mut self) -> Launched {
        self.0.take().expect("a Starting is taken once")
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some(launched) = self.0.take() {
            launched.task.abort();
            for task in lock(&launched.tasks).iter() {
                task.abort();
            }
        }
    }
}

/// A start's news for the supervisor.
enum News {
    Ready(usize),
    Failed(usize, BoxError),
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

    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Vec<Launched>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The services running, in the order they became ready.
    pub fn started(&self) -> Vec<String> {
        self.running().iter().map(|s| s.name.to_string()).collect()
    }

    /// The services not yet stopped: those whose stop is under way, then
    /// those still running (newest first, the order they would stop in).
    pub fn not_stopped(&self) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.stopping)
            .iter()
            .map(ToString::to_string)
            .collect();
        names.extend(self.running().iter().rev().map(|s| s.name.to_string()));
        names
    }

    /// What the shutdown under way has reported so far, taken out: after a
    /// shutdown was cut short (a stop future dropped), the stops that did
    /// finish are still accounted for.
    pub fn take_stop_report(&self) -> StopReport {
        std::mem::take(&mut *lock(&self.progress))
    }

    /// Starts every service once its dependencies are ready, independent
    /// ones in parallel. If one fails, the others still starting are
    /// cancelled, the started ones are stopped in reverse order (the
    /// failing one's `stop` is not called), and the error says what was
    /// rolled back.
    ///
    /// # Errors
    /// [`StartError`] as described.
    pub async fn start(&self) -> Result<(), StartError> {
        match self.start_until(futures::future::pending()).await {
            Ok(Started::All | Started::Interrupted) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// [`start`](Self::start), unless `interrupt` completes first: then the
    /// services still starting are cancelled (and awaited), the ones that
    /// are ready keep running — stop them with [`stop`](Self::stop) or
    /// [`stop_because`](Self::stop_because) — and the result is
    /// [`Started::Interrupted`].
    ///
    /// # Errors
    /// [`StartError`] as [`start`](Self::start).
    pub async fn start_until(
        &self,
        interrupt: impl Future<Output = ()>,
    ) -> Result<Started, StartError> {
        let mut interrupt = std::pin::pin!(interrupt.fuse());
        let entries = self.entries().clone();
        let n = entries.len();
        let position: HashMap<&str, usize> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (&*e.name, i))
            .collect();
        let mut ready = vec![false; n];
        let mut launched = vec![false; n];
        let mut starting: HashMap<usize, Starting> = HashMap::new();
        let (news_tx, mut news_rx) = mpsc::unbounded::<News>();
        let mut done = 0;
        while done < n {
            for (i, entry) in entries.iter().enumerate() {
                let deps_ready = entry.deps.iter().all(|d| ready[position[d.as_str()]]);
                if !launched[i] && deps_ready {
                    launched[i] = true;
                    match self.launch(entry, i, news_tx.clone()) {
                        Ok(started) => {
                            starting.insert(i, Starting(Some(started)));
                        }
                        Err(error) => {
                            let _ = news_tx.unbounded_send(News::Failed(i, error));
                        }
                    }
                }
            }
            let news = futures::select_biased! {
                news = news_rx.next() => news,
                () = interrupt => {
                    for (_, mut sibling) in starting.drain() {
                        sibling.take().cancel().await;
                    }
                    return Ok(Started::Interrupted);
                }
            };
            match news {
                Some(News::Ready(i)) => {
                    ready[i] = true;
                    done += 1;
                    if let Some(mut started) = starting.remove(&i) {
                        self.running().push(started.take());
                    }
                }
                Some(News::Failed(i, error)) => {
                    let service = entries[i].name.to_string();
                    // The failed start has ended on its own; cancel the
                    // siblings still starting, then undo what started.
                    if let Some(mut failed) = starting.remove(&i) {
                        // Its start task has ended; nothing to cancel.
                        drop(failed.take());
                    }
                    for (_, mut sibling) in starting.drain() {
                        sibling.take().cancel().await;
                    }
                    let stop_report = self
                        .stop_with(StopReason::StartFailed {
                            service: service.clone(),
                        })
                        .await;
                    return Err(StartError {
                        service,
                        error,
                        rolled_back: stop_report.stopped.clone(),
                        stop_report,
                    });
                }
                None => break,
            }
        }
        Ok(Started::All)
    }

    /// Spawns the start of service `i`, reporting its readiness or failure.
    fn launch(
        &self,
        entry: &Entry,
        i: usize,
        news: mpsc::UnboundedSender<News>,
    ) -> Result<Launched, BoxError> {
        use std::sync::atomic::{AtomicBool, Ordering};

        let (ready_tx, ready_rx) = oneshot::channel();
        let tasks = Arc::new(Mutex::new(Vec::new()));
        let ctx = ServiceContext {
            name: entry.name.clone(),
            context: self.context.clone(),
            runtime: self.runtime.clone(),
            ready: Arc::new(Mutex::new(Some(ready_tx))),
            tasks: tasks.clone(),
            failures: self.failures_tx.clone(),
        };
        let start = entry.service.clone().start(ctx);
        // Readiness is announced once: by `ctx.ready()` or by `start`
        // returning `Ok`, whichever comes first.
        let announced = Arc::new(AtomicBool::new(false));
        let (flag, news_from_task) = (announced.clone(), news.clone());
        let (name, failures) = (entry.name.clone(), self.failures_tx.clone());
        let task = self.runtime.spawn_named(&entry.name, async move {
            let outcome = AssertUnwindSafe(start)
                .catch_unwind()
                .await
                .unwrap_or_else(|payload| Err(panic_error(payload)));
            match outcome {
                Ok(()) => {
                    if !flag.swap(true, Ordering::SeqCst) {
                        let _ = news_from_task.unbounded_send(News::Ready(i));
                    }
                }
                Err(error) if flag.swap(true, Ordering::SeqCst) => {
                    // It failed after it was ready: a background failure.
                    let _ = failures.unbounded_send((name, error));
                }
                Err(error) => {
                    let _ = news_from_task.unbounded_send(News::Failed(i, error));
                }
            }
        })?;
        self.runtime
            .spawn(async move {
                if ready_rx.await.is_ok() && !announced.swap(true, Ordering::SeqCst) {
                    let _ = news.unbounded_send(News::Ready(i));
                }
            })?
            .detach();
        Ok(Launched {
            name: entry.name.clone(),
            service: entry.service.clone(),
            task,
            tasks,
        })
    }

    /// Stops every started service in reverse order of readiness: its
    /// `stop` (bounded by its timeout), then its background work; the
    /// services are told [`StopReason::Shutdown`].
    pub async fn stop(&self) -> StopReport {
        self.stop_with(StopReason::Shutdown).await
    }

    /// [`stop`](Self::stop), telling the services `reason`.
    pub async fn stop_because(&self, reason: StopReason) -> StopReport {
        self.stop_with(reason).await
    }

    async fn stop_with(&self, reason: StopReason) -> StopReport {
        // One at a time from the end, so that a stop cut short leaves the
        // services not yet stopped listed, and what did stop reported.
        loop {
            let next = self.running().pop();
            let Some(started) = next else { break };
            let mut one = StopReport::default();
            self.stop_one(started, reason.clone(), &mut one).await;
            lock(&self.progress).absorb(one);
        }
        self.take_stop_report()
    }

    /// Stops one started service: its `stop` bounded by its timeout, then
    /// its background work; the outcome goes into `report`.
    async fn stop_one(&self, started: Launched, reason: StopReason, report: &mut StopReport) {
        lock(&self.stopping).push(started.name.clone());
        let limit = started
            .service
            .graceful_shutdown_timeout()
            .unwrap_or(self.stop_timeout);
        let stopping = AssertUnwindSafe(started.service.clone().stop(reason)).catch_unwind();
        match self.runtime.timeout(limit, stopping).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => {
                tracing::error!(service = %started.name, %error, "service stop failed");
                report.errors.push((started.name.to_string(), error));
            }
            Ok(Err(payload)) => {
                let error = panic_error(payload);
                tracing::error!(service = %started.name, %error, "service stop panicked");
                report.errors.push((started.name.to_string(), error));
            }
            Err(_) => {
                tracing::warn!(service = %started.name, ?limit, "service did not stop in time");
                report.timed_out.push(started.name.to_string());
            }
        }
        let name = started.name.clone();
        started.cancel().await;
        report.stopped.push(name.to_string());
        lock(&self.stopping).retain(|n| !Arc::ptr_eq(n, &name));
    }

    /// Waits until a service's background work fails; returns which and
    /// why. A program usually stops the stack then.
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
            .field(
                "services",
                &self
                    .entries()
                    .iter()
                    .map(|e| e.name.to_string())
                    .collect::<Vec<_>>(),
            )
            .field("started", &self.started())
            .finish_non_exhaustive()
    }
}
