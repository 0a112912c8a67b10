//! [`Machina`]: a bot — concurrent groups, executes and emits registered
//! by name, run until every emit has ended and every execute it started
//! has finished, and shut down without losing track of anything.
//!
//! This file owns running and shutting down; what a bot is made of is in
//! `registry.rs`, the book of what is running in `core.rs`; emits,
//! executes and events are in their own files.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::book::{EntryId, ExecuteBook};
use super::core::{Activity, BotCore, RunStats};
use super::emit::Emit;
use super::error::BotError;
use super::registry::{MachinaBuilder, Registry};
use crate::error::BoxError;
use crate::limit::Group;
use crate::rt::{AbortHandle, Runtime};

pub(super) type HookFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;
pub(super) type Hook = Arc<dyn Fn(Machina) -> HookFuture + Send + Sync>;

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
    pub(super) core: Arc<BotCore>,
    pub(super) startup: Arc<Vec<Hook>>,
    pub(super) shutdown_hooks: Arc<Vec<Hook>>,
}

impl Machina {
    /// Starts putting a bot together on `runtime`.
    pub fn builder(runtime: &Runtime) -> MachinaBuilder {
        MachinaBuilder {
            core: Arc::new(BotCore {
                runtime: runtime.clone(),
                timeline: Arc::default(),
                registry: OnceLock::new(),
                activity: Mutex::new(Activity::default()),
                executes: ExecuteBook::default(),
                execute_names: Mutex::default(),
                idle_waiting: AtomicBool::new(false),
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
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::bot::{Event, Machina};
    /// use machina_core::testing::MockRuntime;
    ///
    /// let mock = MockRuntime::new();
    /// let mut bot = Machina::builder(&mock.runtime());
    /// bot.emit("tick", "1s")?.count(2).register(|_: Event| async {})?;
    /// let bot = bot.build();
    /// let tick = bot.emit("tick")?;
    /// assert!(tick.is_alive() && !tick.loop_handle().is_running());
    /// mock.block_on(bot.run())??;
    /// assert_eq!(tick.loop_handle().stats().iterations, 2);
    /// let typo = bot.emit("tock").unwrap_err();
    /// assert_eq!(typo.to_string(), r#"unknown emit "tock"; registered: tick"#);
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub fn emit(&self, name: &str) -> Result<Emit, BotError> {
        self.core.emit(name)
    }

    /// The counters so far.
    pub fn stats(&self) -> RunStats {
        self.core.stats(&self.core.activity())
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
    ///
    /// # Examples
    ///
    /// An emit whose body fails ends; the others run on, and the run
    /// reports the failure once they are done:
    ///
    /// ```
    /// use machina_core::bot::{BotError, Event, Machina};
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let mock = MockRuntime::new();
    /// let mut bot = Machina::builder(&mock.runtime());
    /// bot.emit("flaky", "1s")?.register(|event: Event| async move {
    ///     match event.epoch() {
    ///         2 => Err(format!("bad data in run {}", event.epoch())),
    ///         _ => Ok(()),
    ///     }
    /// })?;
    /// bot.emit("steady", "1s")?.count(3).register(|_: Event| async {})?;
    ///
    /// match mock.block_on(bot.build().run())? {
    ///     Err(BotError::EmitsFailed(failed)) => {
    ///         assert_eq!(failed.len(), 1);
    ///         assert_eq!((failed[0].0.as_str(), failed[0].1.to_string()), ("flaky", "bad data in run 2".to_owned()));
    ///     }
    ///     other => panic!("expected EmitsFailed, got {other:?}"),
    /// }
    /// // "flaky" failed at 1 s; the run ended with "steady"'s third run.
    /// assert_eq!(mock.elapsed(), Duration::from_secs(2));
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub async fn run(&self) -> Result<RunReport, BotError> {
        let outcome = self.run_inner().await;
        for hook in self.shutdown_hooks.iter() {
            if let Err(error) = hook(self.clone()).await {
                tracing::error!(%error, "shutdown hook failed");
            }
        }
        outcome
    }

    pub(super) async fn run_inner(&self) -> Result<RunReport, BotError> {
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
                stats: self.core.stats(&activity),
            })
        } else {
            Err(BotError::EmitsFailed(errors))
        }
    }

    /// Stops every emit gracefully and waits up to `grace` for them and
    /// for the executes the bot spawned; whatever is still running then is
    /// cancelled. A [`run`](Self::run) in progress then returns.
    ///
    /// # Examples
    ///
    /// An emit that runs forever, and two executes it spawned — one ends
    /// within the grace period, one is cancelled:
    ///
    /// ```
    /// use machina_core::bot::{BotError, Event, Machina};
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let secs = Duration::from_secs;
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// let mut bot = Machina::builder(&rt);
    /// let takes = |s: u64| {
    ///     let rt = rt.clone();
    ///     move |_: ()| {
    ///         let rt = rt.clone();
    ///         async move { rt.sleep(Duration::from_secs(s)).await; Ok::<_, std::io::Error>(()) }
    ///     }
    /// };
    /// bot.execute("upload", takes(3)).register()?;
    /// bot.execute("backup", takes(60)).register()?;
    /// bot.emit("tick", "1s")?.register(|event: Event| async move {
    ///     if event.epoch() == 1 {
    ///         event.execute::<(), ()>("upload", ())?.detach();
    ///         event.execute::<(), ()>("backup", ())?.detach();
    ///     }
    ///     Ok::<(), BotError>(())
    /// })?;
    /// let bot = bot.build();
    /// let running = rt.spawn({
    ///     let bot = bot.clone();
    ///     async move { bot.run().await }
    /// })?;
    ///
    /// let report = mock.block_on(async {
    ///     rt.sleep(Duration::from_millis(2500)).await;
    ///     bot.shutdown(secs(1)).await
    /// })?;
    /// assert_eq!(report.emits_stopped, ["tick"]);
    /// assert_eq!(report.executes_finished, ["upload"]);
    /// assert_eq!(report.executes_cancelled, ["backup"]);
    /// assert_eq!(mock.elapsed(), Duration::from_millis(3500)); // 2.5 s + the grace
    ///
    /// let run = mock.block_on(running)?.unwrap()?;
    /// assert_eq!((run.stats.executes_ok, run.stats.executes_cancelled), (1, 1));
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
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
            .executes
            .entries()
            .into_iter()
            .map(|(id, name, _)| (id, self.core.execute_name(name).to_string()))
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
            let still: Vec<(EntryId, String, AbortHandle)> = self
                .core
                .executes
                .entries()
                .into_iter()
                .map(|(id, name, abort)| (id, self.core.execute_name(name).to_string(), abort))
                .collect();
            for (_, name, abort) in &still {
                abort.abort();
                report.executes_cancelled.push(name.clone());
            }
            for emit in emits.iter().filter(|e| e.lp.is_running()) {
                emit.lp.cancel();
                report.emits_cancelled.push(emit.name().to_owned());
            }
            self.core.idle().await;
            let cancelled: std::collections::HashSet<EntryId> =
                still.iter().map(|(id, _, _)| *id).collect();
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
        self.core.activity().last_shutdown = Some(report.clone());
        report
    }

    /// What the last [`shutdown`](Self::shutdown) reported (`None` before
    /// one), for whoever did not call it — such as the program around a
    /// [`BotService`](super::BotService).
    pub fn last_shutdown(&self) -> Option<ShutdownReport> {
        self.core.activity().last_shutdown.clone()
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

#[cfg(all(test, feature = "test-util"))]
mod tests {
    use std::sync::Arc;

    use crate::bot::{BotError, Event, Execute, Machina, MachinaBuilder};
    use crate::testing::MockRuntime;

    /// Registers the execute `double` on `bot`.
    fn register_double(bot: &mut MachinaBuilder) -> Execute<u32, u32> {
        bot.execute(
            "double",
            |n: u32| async move { Ok::<_, std::io::Error>(n * 2) },
        )
        .register()
        .unwrap()
    }

    /// An emit's body: asks `double` to double 21.
    async fn ask_double(event: Event) -> Result<(), crate::BoxError> {
        let doubled = event.execute::<u32, u32>("double", 21)?.await?;
        assert_eq!(doubled, 42);
        Ok(())
    }

    /// An emit whose loop was configured onto another executor runs there,
    /// but the executes its body spawns are the bot's tasks, on the bot's
    /// executor (the Event reaches the executor through its loop when the
    /// two are one).
    #[test]
    fn an_emit_on_another_executor_spawns_its_executes_on_the_bots() {
        use crate::loops::Loop;
        use crate::rt::{BlockingFn, BoxFuture, Runtime, Spawn, SpawnError};
        use crate::schedule::Schedule;
        use std::sync::atomic::{AtomicUsize, Ordering};

        struct Counting {
            inner: Arc<dyn Spawn>,
            spawned: Arc<AtomicUsize>,
        }
        impl Spawn for Counting {
            fn spawn_detached(&self, task: BoxFuture) -> Result<(), SpawnError> {
                self.spawned.fetch_add(1, Ordering::SeqCst);
                self.inner.spawn_detached(task)
            }
            fn spawn_blocking(&self, f: BlockingFn) -> Result<(), SpawnError> {
                self.inner.spawn_blocking(f)
            }
        }

        let mock = MockRuntime::new();
        let rt = mock.runtime();
        let spawned = Arc::new(AtomicUsize::new(0));
        let other = Runtime::new(
            "other",
            Arc::new(Counting {
                inner: rt.spawner().clone(),
                spawned: spawned.clone(),
            }),
            rt.timer().clone(),
        );
        let mut bot = Machina::builder(&rt);
        register_double(&mut bot);
        bot.emit("ask", "1s")
            .unwrap()
            .configure(move |_| {
                Loop::builder(&other, "ask", Schedule::after("1s").unwrap()).count(1)
            })
            .register(ask_double)
            .unwrap();
        let bot = bot.build();
        let report = mock.block_on(bot.run()).unwrap().unwrap();
        assert_eq!(report.stats.executes_ok, 1);
        assert_eq!(
            spawned.load(Ordering::SeqCst),
            1,
            "the other executor ran the loop's task alone"
        );
    }

    /// Found by valgrind on the soak test: the registry held each execute
    /// and emit with a strong handle to the bot that holds the registry, so
    /// a bot was never freed.
    #[test]
    fn a_dropped_bot_is_freed_and_its_orphan_emits_say_so() {
        let mock = MockRuntime::new();
        let mut bot = Machina::builder(&mock.runtime());
        let double = register_double(&mut bot);
        bot.emit("ask", "1s")
            .unwrap()
            .count(1)
            .register(ask_double)
            .unwrap();
        let bot = bot.build();
        let report = mock.block_on(bot.run()).unwrap().unwrap();
        assert_eq!(report.stats.executes_ok, 1);
        let emit = bot.emit("ask").unwrap();
        let core = Arc::downgrade(&bot.core);
        drop(bot);
        assert!(core.upgrade().is_some(), "an execute handle keeps the bot");
        drop(double);
        assert!(
            core.upgrade().is_none(),
            "the bot is freed with its last handle"
        );

        // The emit's loop outlived its bot: started by hand, its body is
        // told the bot is gone instead of finding a dangling one.
        let run = emit.loop_handle().start().unwrap();
        let ended = mock.block_on(run).unwrap().unwrap();
        let error = ended.unwrap_err();
        let dropped = crate::error::find_in_chain::<BotError>(&*error);
        assert!(
            matches!(dropped, Some(BotError::Dropped { emit }) if emit == "ask"),
            "{error}"
        );
    }
}
