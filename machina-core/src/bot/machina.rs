//! [`Machina`]: a bot — concurrent groups, executes and emits registered
//! by name, run until every emit has ended and every execute it started
//! has finished, and shut down without losing track of anything.
//!
//! This file owns registration and the bot's book of what is running
//! ([`BotCore`]); emits, executes and events are in their own files.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::{Future, poll_fn};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Poll, Waker};
use std::time::Duration;

use super::book::{EntryId, ExecuteBook};
use super::emit::{Emit, EmitBuilder, IntoSchedule};
use super::error::{BotError, ExecuteError};
use super::execute::{Execute, ExecuteBuilder, GroupRef, Handler, signature};
use super::loops::{Loop, LoopEnd, SharedError};
use crate::call::CallStack;
use crate::error::BoxError;
use crate::limit::{Group, IntoGroup};
use crate::rt::{AbortHandle, Runtime};
use crate::schedule::ScheduleError;

type HookFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;
type Hook = Arc<dyn Fn(Machina) -> HookFuture + Send + Sync>;

/// An execute with its types erased, for calls by name.
pub(crate) struct ErasedExecute {
    pub(crate) handle: Box<dyn Any + Send + Sync>,
    pub(crate) signature: String,
}

/// What the bot has registered: fixed once built.
#[derive(Default)]
pub(crate) struct Registry {
    groups: HashMap<String, Group>,
    executes: HashMap<String, ErasedExecute>,
    /// In registration order (the order they start in).
    emits: Vec<Emit>,
    /// Their positions by name: registering many emits stays linear, and
    /// finding one by name is a lookup.
    emit_index: HashMap<String, usize>,
}

/// What is running now, and what has happened.
#[derive(Default)]
struct Activity {
    executes: ExecuteBook,
    emits_running: usize,
    emit_errors: Vec<(String, SharedError)>,
    stats: RunStats,
    idle_wakers: Vec<Waker>,
}

/// Counters of a bot's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RunStats {
    /// Spawned executes that returned a value.
    pub executes_ok: u64,
    /// Spawned executes that failed or panicked (each is also logged).
    pub executes_failed: u64,
    /// Spawned executes that were cancelled.
    pub executes_cancelled: u64,
    /// Emit runs that ended (however they ended).
    pub emit_runs: u64,
}

/// The shared heart of a bot: its runtime, registry and activity.
pub(crate) struct BotCore {
    pub(crate) runtime: Runtime,
    registry: OnceLock<Registry>,
    activity: Mutex<Activity>,
}

impl BotCore {
    fn activity(&self) -> MutexGuard<'_, Activity> {
        self.activity.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn registry(&self) -> &Registry {
        // Events and spawns exist only once the bot is built, which sets it.
        self.registry.get_or_init(Registry::default)
    }

    pub(crate) fn emit(&self, name: &str) -> Result<Emit, BotError> {
        let registry = self.registry();
        registry
            .emit_index
            .get(name)
            .map(|&i| registry.emits[i].clone())
            .ok_or_else(|| BotError::Unknown {
                kind: "emit",
                name: name.to_owned(),
                known: registry.emits.iter().map(|e| e.name().to_owned()).collect(),
            })
    }

    pub(crate) fn execute(&self, name: &str) -> Result<&ErasedExecute, BotError> {
        let executes = &self.registry().executes;
        executes.get(name).ok_or_else(|| {
            let mut known: Vec<_> = executes.keys().cloned().collect();
            known.sort();
            BotError::Unknown {
                kind: "execute",
                name: name.to_owned(),
                known,
            }
        })
    }

    /// Starts `emit` and watches its run. A running emit is left alone.
    pub(crate) fn start_emit(self: &Arc<Self>, emit: &Emit) -> Result<(), BotError> {
        if emit.lp.is_running() {
            tracing::warn!(emit = emit.name(), "emit is already running; start ignored");
            return Ok(());
        }
        let run = match emit.lp.start() {
            Ok(run) => run,
            Err(super::loops::LoopError::AlreadyRunning { .. }) => return Ok(()),
            Err(super::loops::LoopError::Spawn { source, .. }) => return Err(source.into()),
        };
        self.activity().emits_running += 1;
        let core = self.clone();
        let name = emit.name().to_owned();
        let watcher = self.runtime.spawn_named("emit-watcher", async move {
            let outcome = run.await;
            core.emit_finished(name, outcome);
        });
        match watcher {
            Ok(handle) => {
                handle.detach();
                Ok(())
            }
            Err(err) => {
                emit.lp.cancel();
                self.emit_finished(emit.name().to_owned(), Ok(Ok(LoopEnd::Cancelled)));
                Err(err.into())
            }
        }
    }

    fn emit_finished(
        &self,
        name: String,
        outcome: Result<Result<LoopEnd, SharedError>, crate::rt::JoinError>,
    ) {
        let wakers = {
            let mut activity = self.activity();
            activity.emits_running -= 1;
            activity.stats.emit_runs += 1;
            match outcome {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => activity.emit_errors.push((name, error)),
                Err(join) => activity.emit_errors.push((name, Arc::new(join))),
            }
            activity.take_idle_wakers()
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    pub(crate) fn begin_execute(&self, name: Arc<str>) -> EntryId {
        self.activity().executes.insert(name)
    }

    pub(crate) fn attach_abort(&self, id: EntryId, abort: AbortHandle) {
        self.activity().executes.attach(id, abort);
    }

    fn end_execute(&self, id: EntryId, outcome: Option<Result<(), &ExecuteError>>) {
        let wakers = {
            let mut activity = self.activity();
            let Some(name) = activity.executes.remove(id) else {
                return;
            };
            match outcome {
                Some(Ok(())) => activity.stats.executes_ok += 1,
                Some(Err(ExecuteError::Cancelled { .. })) | None => {
                    activity.stats.executes_cancelled += 1;
                    tracing::debug!(execute = %name, "execute cancelled");
                }
                Some(Err(error)) => {
                    activity.stats.executes_failed += 1;
                    tracing::warn!(execute = %name, %error, "execute failed");
                }
            }
            activity.take_idle_wakers()
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Completes when no emit runs and no spawned execute is in flight.
    async fn idle(&self) {
        poll_fn(|cx| {
            let mut activity = self.activity();
            if activity.is_idle() {
                return Poll::Ready(());
            }
            if !activity.idle_wakers.iter().any(|w| w.will_wake(cx.waker())) {
                activity.idle_wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await;
    }
}

impl Activity {
    fn is_idle(&self) -> bool {
        self.emits_running == 0 && self.executes.len() == 0
    }

    fn take_idle_wakers(&mut self) -> Vec<Waker> {
        if self.is_idle() {
            std::mem::take(&mut self.idle_wakers)
        } else {
            Vec::new()
        }
    }
}

/// Ends a spawned execute's entry in the bot's book, also when its task is
/// dropped before it finishes (abort, shutdown).
pub(crate) struct ExecuteGuard {
    core: Arc<BotCore>,
    id: EntryId,
    done: bool,
}

impl ExecuteGuard {
    pub(crate) fn new(core: Arc<BotCore>, id: EntryId) -> Self {
        ExecuteGuard {
            core,
            id,
            done: false,
        }
    }

    pub(crate) fn finish(mut self, error: Option<&ExecuteError>) {
        self.done = true;
        self.core
            .end_execute(self.id, Some(error.map_or(Ok(()), Err)));
    }
}

impl Drop for ExecuteGuard {
    fn drop(&mut self) {
        if !self.done {
            self.core.end_execute(self.id, None);
        }
    }
}

/// What a finished [`Machina::run`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunReport {
    /// The run's counters.
    pub stats: RunStats,
}

/// What [`Machina::shutdown`] did: nothing disappears silently.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Emits asked to stop that ended within the grace period.
    pub emits_stopped: Vec<String>,
    /// Emits cancelled when the grace period ran out.
    pub emits_cancelled: Vec<String>,
    /// Spawned executes that finished within the grace period.
    pub executes_finished: Vec<String>,
    /// Spawned executes cancelled when the grace period ran out.
    pub executes_cancelled: Vec<String>,
}

/// A bot (exmachina `Machina`): concurrent groups, executes and emits,
/// registered by name through [`Machina::builder`].
///
/// # Examples
///
/// ```
/// use machina_core::bot::{Event, Machina};
/// use machina_core::limit::Limits;
/// use machina_core::retry::{Retry, Rule};
/// use machina_core::testing::MockRuntime;
/// use std::time::Duration;
///
/// let mock = MockRuntime::new();
/// let mut bot = Machina::builder(&mock.runtime());
/// bot.group("limit", Limits::new().max_in_flight(4).max_starts(3, Duration::from_secs(1))).unwrap();
/// let answer = bot
///     .execute("answer", |n: u32| async move { Ok::<_, std::io::Error>(n * 2) })
///     .groups(["limit"])
///     .retry(Retry::new().rule(Rule::fixed(Duration::from_secs(1)).retries(5)))
///     .register()
///     .unwrap();
/// bot.emit("tick", "1s")
///     .unwrap()
///     .count(3)
///     .register(move |event: Event| {
///         let answer = answer.clone();
///         async move {
///             assert_eq!(answer.call(21).await.unwrap(), 42);
///             let by_name = event.execute::<u32, u32>("answer", 4).unwrap();
///             assert_eq!(by_name.await.unwrap(), 8);
///         }
///     })
///     .unwrap();
/// let bot = bot.build();
/// let report = mock.block_on(bot.run()).unwrap().unwrap();
/// assert_eq!(report.stats.executes_ok, 3);
/// assert_eq!(mock.elapsed(), Duration::from_secs(2));
/// ```
#[derive(Clone)]
pub struct Machina {
    core: Arc<BotCore>,
    startup: Arc<Vec<Hook>>,
    shutdown_hooks: Arc<Vec<Hook>>,
}

/// Registers the parts of a [`Machina`].
pub struct MachinaBuilder {
    pub(crate) core: Arc<BotCore>,
    registry: Registry,
    startup: Vec<Hook>,
    shutdown: Vec<Hook>,
}

impl Machina {
    /// Starts putting a bot together on `runtime`.
    pub fn builder(runtime: &Runtime) -> MachinaBuilder {
        MachinaBuilder {
            core: Arc::new(BotCore {
                runtime: runtime.clone(),
                registry: OnceLock::new(),
                activity: Mutex::new(Activity::default()),
            }),
            registry: Registry::default(),
            startup: Vec::new(),
            shutdown: Vec::new(),
        }
    }

    /// The runtime the bot runs on.
    pub fn runtime(&self) -> &Runtime {
        &self.core.runtime
    }

    /// A registered concurrent group (local or any other limiter).
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.core.registry().groups.get(name)
    }

    /// A registered emit.
    ///
    /// # Errors
    /// [`BotError::Unknown`] for an unknown name.
    pub fn emit(&self, name: &str) -> Result<Emit, BotError> {
        self.core.emit(name)
    }

    /// The counters so far.
    pub fn stats(&self) -> RunStats {
        self.core.activity().stats
    }

    /// Runs the startup hooks in order, starts every `alive` emit, and
    /// waits until every emit has ended and every execute the bot spawned
    /// has finished; then runs the shutdown hooks in order (also when the
    /// run fails).
    ///
    /// # Errors
    /// [`BotError::Startup`] if a startup hook fails (no emit is started);
    /// [`BotError::EmitsFailed`] with every emit's error if any emit ended
    /// with one (the others ran on); [`BotError::Spawn`] if the executor
    /// refuses a task.
    pub async fn run(&self) -> Result<RunReport, BotError> {
        let outcome = self.run_inner().await;
        for hook in self.shutdown_hooks.iter() {
            if let Err(error) = hook(self.clone()).await {
                tracing::error!(%error, "shutdown hook failed");
            }
        }
        outcome
    }

    async fn run_inner(&self) -> Result<RunReport, BotError> {
        for hook in self.startup.iter() {
            hook(self.clone()).await.map_err(BotError::Startup)?;
        }
        for emit in self.core.registry().emits.iter().filter(|e| e.alive) {
            self.core.start_emit(emit)?;
        }
        self.core.idle().await;
        let mut activity = self.core.activity();
        let errors = std::mem::take(&mut activity.emit_errors);
        if errors.is_empty() {
            Ok(RunReport {
                stats: activity.stats,
            })
        } else {
            Err(BotError::EmitsFailed(errors))
        }
    }

    /// Stops every emit gracefully and waits up to `grace` for them and
    /// for the executes the bot spawned; whatever is still running then is
    /// cancelled. A [`run`](Self::run) in progress then returns.
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        let emits: Vec<Emit> = self
            .core
            .registry()
            .emits
            .iter()
            .filter(|e| e.lp.is_running())
            .cloned()
            .collect();
        let executes: Vec<(EntryId, String)> = self
            .core
            .activity()
            .executes
            .iter()
            .map(|(id, name, _)| (id, name.to_string()))
            .collect();
        emits.iter().for_each(|e| e.lp.stop());
        let in_time = self
            .core
            .runtime
            .timeout(grace, self.core.idle())
            .await
            .is_ok();
        let mut report = ShutdownReport::default();
        if !in_time {
            let still: Vec<(EntryId, String, Option<AbortHandle>)> = self
                .core
                .activity()
                .executes
                .iter()
                .map(|(id, name, abort)| (id, name.to_string(), abort.cloned()))
                .collect();
            for (_, name, abort) in &still {
                if let Some(abort) = abort {
                    abort.abort();
                }
                report.executes_cancelled.push(name.clone());
            }
            for emit in emits.iter().filter(|e| e.lp.is_running()) {
                emit.lp.cancel();
                report.emits_cancelled.push(emit.name().to_owned());
            }
            self.core.idle().await;
            let cancelled: Vec<EntryId> = still.iter().map(|(id, _, _)| *id).collect();
            report.executes_finished = executes
                .into_iter()
                .filter(|(id, _)| !cancelled.contains(id))
                .map(|(_, name)| name)
                .collect();
        } else {
            report.executes_finished = executes.into_iter().map(|(_, name)| name).collect();
        }
        report.emits_stopped = emits
            .iter()
            .map(|e| e.name().to_owned())
            .filter(|n| !report.emits_cancelled.contains(n))
            .collect();
        report
    }
}

impl fmt::Debug for Machina {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let registry = self.core.registry();
        f.debug_struct("Machina")
            .field("groups", &registry.groups.keys().collect::<Vec<_>>())
            .field("executes", &registry.executes.keys().collect::<Vec<_>>())
            .field(
                "emits",
                &registry.emits.iter().map(Emit::name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl MachinaBuilder {
    /// Registers a concurrent group (exmachina `create_concurrent_group`):
    /// [`Limits`](crate::limit::Limits) make a local
    /// [`ConcurrentGroup`](crate::limit::ConcurrentGroup) (the handle returned);
    /// any other [`IntoGroup`] (a [`Limiter`](crate::limit::Limiter) kept
    /// elsewhere) is registered as it is.
    ///
    /// # Errors
    /// [`BotError::Duplicate`] for a name already used by a group;
    /// [`BotError::Group`] for limits that could never admit a call.
    pub fn group<G: IntoGroup>(&mut self, name: &str, group: G) -> Result<G::Handle, BotError> {
        if self.registry.groups.contains_key(name) {
            return Err(BotError::Duplicate {
                kind: "concurrent group",
                name: name.to_owned(),
            });
        }
        let (group, handle) = group.into_group(&self.core.runtime, name)?;
        self.registry.groups.insert(name.to_owned(), group);
        Ok(handle)
    }

    /// Starts registering an execute named `name` running `handler`; finish
    /// with [`ExecuteBuilder::register`].
    pub fn execute<A, T, E, F, Fut>(&mut self, name: &str, handler: F) -> ExecuteBuilder<'_, A, T>
    where
        A: Clone + Send + 'static,
        T: Send + 'static,
        E: Into<BoxError>,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        ExecuteBuilder {
            builder: self,
            name: name.to_owned(),
            handler: Arc::new(move |args| {
                let fut = handler(args);
                Box::pin(async move { fut.await.map_err(Into::into) })
            }),
            groups: Vec::new(),
            stack: CallStack::new(),
            _types: PhantomData,
        }
    }

    pub(crate) fn register_execute<A, T>(
        &mut self,
        name: String,
        handler: Handler<A, T>,
        groups: Vec<GroupRef>,
        stack: CallStack,
    ) -> Result<Execute<A, T>, BotError>
    where
        A: Clone + Send + 'static,
        T: Send + 'static,
    {
        if self.registry.executes.contains_key(&name) {
            return Err(BotError::Duplicate {
                kind: "execute",
                name,
            });
        }
        let mut resolved = Vec::with_capacity(groups.len());
        for group in &groups {
            let name = match group {
                GroupRef::Name(name) => name.as_str(),
                GroupRef::Handle(handle) => handle.name(),
            };
            let registered = self
                .registry
                .groups
                .get(name)
                .filter(|registered| match group {
                    GroupRef::Name(_) => true,
                    GroupRef::Handle(handle) => handle.same_group(registered),
                });
            match registered {
                Some(g) => resolved.push(g.clone()),
                None => {
                    let mut known: Vec<_> = self.registry.groups.keys().cloned().collect();
                    known.sort();
                    return Err(BotError::Unknown {
                        kind: "concurrent group",
                        name: name.to_owned(),
                        known,
                    });
                }
            }
        }
        let stack = stack.groups(resolved);
        let execute = Execute::new(self.core.clone(), name.clone(), handler, stack);
        self.registry.executes.insert(
            name,
            ErasedExecute {
                handle: Box::new(execute.clone()),
                signature: signature::<A, T>(),
            },
        );
        Ok(execute)
    }

    /// Starts registering an emit named `name` on `schedule` (a
    /// [`Schedule`](crate::schedule::Schedule), or an interval such as
    /// `"1s"` meaning `After`); finish with [`EmitBuilder::register`].
    ///
    /// # Errors
    /// [`ScheduleError`] for a malformed interval — at registration, not at
    /// start.
    pub fn emit(
        &mut self,
        name: &str,
        schedule: impl IntoSchedule,
    ) -> Result<EmitBuilder<'_>, ScheduleError> {
        let schedule = schedule.into_schedule()?;
        let lp = Loop::builder(&self.core.runtime, name, schedule);
        Ok(EmitBuilder {
            builder: self,
            lp,
            alive: true,
        })
    }

    pub(crate) fn register_emit(&mut self, emit: Emit) -> Result<Emit, BotError> {
        let registry = &mut self.registry;
        if registry.emit_index.contains_key(emit.name()) {
            return Err(BotError::Duplicate {
                kind: "emit",
                name: emit.name().to_owned(),
            });
        }
        registry
            .emit_index
            .insert(emit.name().to_owned(), registry.emits.len());
        registry.emits.push(emit.clone());
        Ok(emit)
    }

    /// Runs `hook` when the bot starts, before any emit (in registration
    /// order).
    pub fn on_startup<F, Fut>(&mut self, hook: F) -> &mut Self
    where
        F: Fn(Machina) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.startup.push(Arc::new(move |bot| Box::pin(hook(bot))));
        self
    }

    /// Runs `hook` when the bot's run ends, however it ends (in
    /// registration order).
    pub fn on_shutdown<F, Fut>(&mut self, hook: F) -> &mut Self
    where
        F: Fn(Machina) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.shutdown.push(Arc::new(move |bot| Box::pin(hook(bot))));
        self
    }

    /// The bot.
    pub fn build(self) -> Machina {
        let MachinaBuilder {
            core,
            registry,
            startup,
            shutdown,
        } = self;
        // Set once: a builder is consumed by `build`.
        let _ = core.registry.set(registry);
        Machina {
            core,
            startup: Arc::new(startup),
            shutdown_hooks: Arc::new(shutdown),
        }
    }
}

impl fmt::Debug for MachinaBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MachinaBuilder")
            .field("groups", &self.registry.groups.keys().collect::<Vec<_>>())
            .field(
                "executes",
                &self.registry.executes.keys().collect::<Vec<_>>(),
            )
            .field(
                "emits",
                &self
                    .registry
                    .emits
                    .iter()
                    .map(Emit::name)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}
