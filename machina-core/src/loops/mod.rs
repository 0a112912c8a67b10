//! [`Loop`]: the one periodic engine of Machina (discord.ext.tasks' `Loop`;
//! exmachina's emits and aiomisc's periodic services run on it).
//!
//! This module owns the public handle and its builder. When each run is
//! due — the count, the schedule, missed ticks, retries, a new interval —
//! is decided by the pure [`Cadence`] (`cadence.rs`); the task in
//! `engine.rs` only waits for what it answers, runs the body and the hooks,
//! and reacts to control requests. The shared state is in `state.rs`, error
//! kinds and the reconnect backoff in `kinds.rs`. Periodic, recurring and
//! cron services ([`crate::service`]) and bot emits ([`crate::bot`]) all run
//! on a `Loop`.
//!
//! # How a run ends, and which hooks run
//!
//! | ending | what happens, in order |
//! | --- | --- |
//! | `count` iterations done | `before_loop`, the bodies, `after_loop` |
//! | [`stop`](Loop::stop) | the running body finishes (a stop during a sleep ends it at once, with no further run), then `after_loop` |
//! | [`cancel`](Loop::cancel) | the running body is dropped at its next await point, then `after_loop`, during which [`is_being_cancelled`](Loop::is_being_cancelled) is true |
//! | an error not of a handled kind, or a panic (in the body or `before_loop`) | [`failed`](Loop::failed) becomes true, `on_error` (default: a `tracing` error event), then `after_loop`; the run's handle gives the error |
//!
//! After every ending `current_loop` is back to 0 and `next_iteration` is
//! `None`. An error of a handled kind (with `reconnect` on) is not an
//! ending: the iteration is run again after a backoff delay, without
//! counting toward `count` and without moving the schedule.

mod cadence;
mod engine;
mod kinds;
mod state;
#[cfg(all(test, feature = "test-util"))]
mod tests;

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

pub use cadence::{Cadence, Due, Next, RunOutcome};
pub use kinds::{ErrorKinds, ReconnectBackoff};
use state::{CANCEL, Done, INTERVAL, LoopState, Pulse, STOP, lock};

use crate::error::BoxError;
use crate::rt::{JoinHandle, Runtime, SpawnError};
use crate::schedule::{IntoInterval, Schedule, ScheduleError};

/// An error shared between the loop's handle, its `on_error` hook and the
/// log.
pub type SharedError = Arc<dyn Error + Send + Sync + 'static>;

type BodyFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;
type BodyFn = Arc<dyn Fn(Loop) -> BodyFuture + Send + Sync>;
type HookFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
type HookFn = Arc<dyn Fn(Loop) -> HookFuture + Send + Sync>;
type ErrorHookFn = Arc<dyn Fn(Loop, SharedError) -> HookFuture + Send + Sync>;

/// Counters of a loop over all its runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LoopStats {
    /// Runs started.
    pub runs: u64,
    /// Iterations that succeeded.
    pub iterations: u64,
    /// Iterations that failed with a handled error and were retried.
    pub retried_errors: u64,
    /// Runs that ended with an error.
    pub failed_runs: u64,
    /// Total lateness of iteration starts against their due times.
    pub lateness_total: Duration,
    /// The largest such lateness.
    pub lateness_max: Duration,
    /// How many starts were late by less than 1 µs, 2 µs, 4 µs, … 2³⁰ µs
    /// (about 18 minutes), and (last) by more: the distribution behind
    /// [`lateness_quantile`](Self::lateness_quantile).
    lateness_buckets: [u64; LATENESS_BUCKETS],
}

/// Buckets of the lateness histogram: powers of two of microseconds.
const LATENESS_BUCKETS: usize = 32;

impl LoopStats {
    /// Counts one start `late` after its due time.
    pub(crate) fn record_lateness(&mut self, late: Duration) {
        self.lateness_total += late;
        self.lateness_max = self.lateness_max.max(late);
        let micros = late.as_micros();
        // Bucket k holds lateness below 2^k µs; the last one everything else.
        let bucket = if micros == 0 {
            0
        } else {
            (128 - micros.leading_zeros()) as usize
        };
        self.lateness_buckets[bucket.min(LATENESS_BUCKETS - 1)] += 1;
    }

    /// An upper bound of the `q`-quantile of the starts' lateness (`q` in
    /// `[0, 1]`: 0.5 for the median, 0.99 for p99), within a factor of two
    /// (the histogram's buckets are powers of two of microseconds, capped
    /// by the largest lateness seen); `None` before any scheduled start.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::loops::{Loop, LoopEnd};
    /// use machina_core::schedule::Schedule;
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let mock = MockRuntime::new();
    /// // Every 10 ms, with a body of 15 ms on the fourth run: the next
    /// // start is 5 ms late, the others on time.
    /// let lp = Loop::builder(&mock.runtime(), "tick", Schedule::fixed_rate("10ms", Default::default()).unwrap())
    ///     .count(10)
    ///     .build(|lp: Loop| async move {
    ///         if lp.current_loop() == 3 {
    ///             lp.runtime().sleep(Duration::from_millis(15)).await;
    ///         }
    ///     });
    /// mock.block_on(lp.start().unwrap()).unwrap().unwrap().unwrap();
    /// let stats = lp.stats();
    /// assert_eq!(stats.lateness_quantile(0.5), Some(Duration::ZERO));
    /// assert_eq!(stats.lateness_quantile(1.0), Some(Duration::from_millis(5)));
    /// ```
    pub fn lateness_quantile(&self, q: f64) -> Option<Duration> {
        let total: u64 = self.lateness_buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (k, count) in self.lateness_buckets.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let bound = match k {
                    0 => Duration::ZERO,
                    k => Duration::from_micros(1u64 << k),
                };
                return Some(bound.min(self.lateness_max));
            }
        }
        Some(self.lateness_max)
    }
}

/// How a run of a loop ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LoopEnd {
    /// `count` iterations were done.
    Completed,
    /// [`Loop::stop`] ended it.
    Stopped,
    /// [`Loop::cancel`] ended it.
    Cancelled,
}

/// Why a loop could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoopError {
    /// It was already running.
    #[error("loop {name:?} is already running; stop or cancel it first, or use restart")]
    AlreadyRunning {
        /// The loop's name.
        name: String,
    },
    /// The executor refused the loop's task.
    #[error("loop {name:?} could not start: {source}")]
    Spawn {
        /// The loop's name.
        name: String,
        /// What the executor said.
        source: SpawnError,
    },
}

/// A body or hook that panicked, as an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} of loop {name:?} panicked: {message}")]
pub struct LoopPanicked {
    /// `"body"` or `"before_loop"`.
    pub what: &'static str,
    /// The loop's name.
    pub name: String,
    /// The panic message.
    pub message: String,
}

/// What a loop body may return: `()` or `Result<(), E>`.
pub trait IntoBodyResult {
    /// The body's outcome.
    fn into_body_result(self) -> Result<(), BoxError>;
}

impl IntoBodyResult for () {
    fn into_body_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<E: Into<BoxError>> IntoBodyResult for Result<(), E> {
    fn into_body_result(self) -> Result<(), BoxError> {
        self.map_err(Into::into)
    }
}

/// A loop's allocation. `repr(C)`: what every tick touches comes first,
/// next to the reference counts — the pulse, the runtime, the body, then
/// the lock (whose state keeps its per-tick fields first).
#[repr(C)]
pub(crate) struct LoopShared {
    pulse: Pulse,
    runtime: Runtime,
    body: BodyFn,
    state: Mutex<LoopState>,
    /// What the loop belongs to, held weakly (a bot, for an emit's loop):
    /// a body reaches it through its `Loop`, with no handle of its own to
    /// count per tick. After the lock: read only when a body asks.
    owner: Option<Weak<dyn Any + Send + Sync>>,
    name: String,
    before_loop: Option<HookFn>,
    after_loop: Option<HookFn>,
    on_error: Option<ErrorHookFn>,
}

/// A background task that runs a body on a [`Schedule`], with a count,
/// hooks, stop-vs-cancel, a new interval on the fly and reconnection after
/// handled errors (discord.ext.tasks' `Loop`). See the module docs for how
/// runs end.
///
/// Cloning gives another handle to the same loop.
///
/// # Examples
///
/// ```
/// use machina_core::loops::{Loop, LoopEnd};
/// use machina_core::schedule::Schedule;
/// use machina_core::testing::MockRuntime;
/// use std::time::Duration;
///
/// let mock = MockRuntime::new();
/// let rt = mock.runtime();
/// let ticks = Loop::builder(&rt, "printer", Schedule::after("5s").unwrap())
///     .count(3)
///     .build(|lp: Loop| async move {
///         println!("iteration {}", lp.current_loop());
///     });
/// let run = ticks.start().unwrap();
/// assert_eq!(mock.block_on(run).unwrap().unwrap().unwrap(), LoopEnd::Completed);
/// assert_eq!(mock.elapsed(), Duration::from_secs(10)); // runs at 0, 5 and 10 s
/// ```
#[derive(Clone)]
pub struct Loop {
    shared: Arc<LoopShared>,
}

/// The handle to one run of a loop: awaiting it gives how the run ended,
/// or the error that ended it.
pub type LoopRun = JoinHandle<Result<LoopEnd, SharedError>>;

/// Configures a [`Loop`].
#[must_use = "call .build(body) to get the Loop"]
pub struct LoopBuilder {
    name: String,
    runtime: Runtime,
    owner: Option<Weak<dyn Any + Send + Sync>>,
    state: LoopState,
    before_loop: Option<HookFn>,
    after_loop: Option<HookFn>,
    on_error: Option<ErrorHookFn>,
}

impl Loop {
    /// Starts configuring a loop named `name`, on `runtime`, following
    /// `schedule`; it runs forever unless given a [`count`](LoopBuilder::count).
    pub fn builder(runtime: &Runtime, name: impl Into<String>, schedule: Schedule) -> LoopBuilder {
        LoopBuilder {
            name: name.into(),
            runtime: runtime.clone(),
            owner: None,
            state: LoopState::new(schedule, None),
            before_loop: None,
            after_loop: None,
            on_error: None,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LoopState> {
        lock(&self.shared.state)
    }

    /// What the loop belongs to, while it exists and is a `T` (see
    /// [`LoopBuilder::owner`]).
    pub(crate) fn owner<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let owner = self.shared.owner.as_ref()?.upgrade()?;
        owner.downcast().ok()
    }

    /// The loop's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The runtime the loop runs on.
    pub fn runtime(&self) -> &Runtime {
        &self.shared.runtime
    }

    /// Starts a run in the background.
    ///
    /// # Errors
    /// [`LoopError::AlreadyRunning`] if a run is in progress;
    /// [`LoopError::Spawn`] if the executor refuses the task.
    pub fn start(&self) -> Result<LoopRun, LoopError> {
        let generation = {
            let mut state = self.state();
            if state.running {
                return Err(LoopError::AlreadyRunning {
                    name: self.shared.name.clone(),
                });
            }
            state.running = true;
            state.stats.runs += 1;
            state.generation += 1;
            state.next_iteration = Some(self.shared.runtime.now());
            state.failed = false;
            self.shared.pulse.reset();
            state.generation
        };
        let task = engine::run(self.clone(), generation);
        self.shared
            .runtime
            .spawn_named(&self.shared.name, task)
            .map_err(|source| {
                self.finish(generation);
                LoopError::Spawn {
                    name: self.shared.name.clone(),
                    source,
                }
            })
    }

    /// Asks the loop to end gracefully: a running body finishes and no
    /// further iteration starts; a loop sleeping between iterations ends at
    /// once. Does nothing if the loop is not running.
    ///
    /// # Examples
    ///
    /// A stop lets the body under way finish (compare [`cancel`](Self::cancel)):
    ///
    /// ```
    /// use machina_core::loops::{Loop, LoopEnd};
    /// use machina_core::schedule::Schedule;
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// let lp = Loop::builder(&rt, "poll", Schedule::after("10s").unwrap())
    ///     .build(|lp: Loop| async move { lp.runtime().sleep(Duration::from_secs(3)).await });
    /// let ended = mock.block_on(async {
    ///     let run = lp.start().unwrap();
    ///     rt.sleep(Duration::from_secs(1)).await; // the first body is running
    ///     lp.stop();
    ///     run.await.unwrap().unwrap()
    /// }).unwrap();
    /// assert_eq!(ended, LoopEnd::Stopped);
    /// assert_eq!(mock.elapsed(), Duration::from_secs(3)); // the body finished
    /// assert_eq!(lp.stats().iterations, 1);
    /// ```
    pub fn stop(&self) {
        {
            let mut state = self.state();
            if !state.running {
                return;
            }
            state.next_iteration = None;
            self.shared.pulse.request(STOP);
        }
        self.shared.pulse.wake();
    }

    /// Ends the loop now: a running body is dropped at its next await
    /// point, then `after_loop` runs with
    /// [`is_being_cancelled`](Self::is_being_cancelled) true. Does nothing
    /// if the loop is not running.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::loops::{Loop, LoopEnd};
    /// use machina_core::schedule::Schedule;
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// let lp = Loop::builder(&rt, "poll", Schedule::after("10s").unwrap())
    ///     .after_loop(|lp: Loop| async move { assert!(lp.is_being_cancelled()) })
    ///     .build(|lp: Loop| async move { lp.runtime().sleep(Duration::from_secs(3)).await });
    /// let ended = mock.block_on(async {
    ///     let run = lp.start().unwrap();
    ///     rt.sleep(Duration::from_secs(1)).await;
    ///     lp.cancel(); // the body is dropped where it waits
    ///     run.await.unwrap().unwrap()
    /// }).unwrap();
    /// assert_eq!(ended, LoopEnd::Cancelled);
    /// assert_eq!(mock.elapsed(), Duration::from_secs(1));
    /// assert_eq!(lp.stats().iterations, 0);
    /// ```
    pub fn cancel(&self) {
        {
            let mut state = self.state();
            if !state.running {
                return;
            }
            state.next_iteration = None;
            self.shared.pulse.request(CANCEL);
        }
        self.shared.pulse.wake();
    }

    /// Cancels the loop if it is running, waits for that run to end, and
    /// starts a new one. Unlike discord.ext.tasks, a loop that was not
    /// running is started.
    ///
    /// # Errors
    /// As for [`start`](Self::start).
    pub async fn restart(&self) -> Result<LoopRun, LoopError> {
        self.cancel();
        self.wait_until_done().await;
        self.start()
    }

    /// Completes when the loop is not running.
    pub async fn wait_until_done(&self) {
        Done {
            state: &self.shared.state,
        }
        .await;
    }

    /// Whether a run is in progress.
    pub fn is_running(&self) -> bool {
        self.state().running
    }

    /// Whether the last run ended with an unhandled error.
    pub fn failed(&self) -> bool {
        self.state().failed
    }

    /// Whether the loop is being cancelled (true during `after_loop` after
    /// [`cancel`](Self::cancel)).
    pub fn is_being_cancelled(&self) -> bool {
        self.shared.pulse.requested(CANCEL)
    }

    /// The current iteration: 0 during the first body, one more after each
    /// successful iteration, back to 0 when the run ends.
    pub fn current_loop(&self) -> u64 {
        self.shared.pulse.current_loop()
    }

    /// When the next iteration is due: `None` before a start, after the
    /// end, and once a stop or cancel is requested. With a fixed-rate
    /// schedule it is known while a body runs; with `After` only once the
    /// body has ended.
    pub fn next_iteration(&self) -> Option<Instant> {
        self.state().next_iteration
    }

    /// When the iteration running now (or the last one) was due: the
    /// instant on its schedule, so that `now - scheduled_at` is how late
    /// it started (`None` before the first). For the retry of a failed
    /// iteration, when the retry was due.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::loops::Loop;
    /// use machina_core::rt::MissedTick;
    /// use machina_core::schedule::Schedule;
    /// use machina_core::testing::MockRuntime;
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    ///
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// let t0 = rt.now();
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let every_second = Schedule::fixed_rate(Duration::from_secs(1), MissedTick::Burst).unwrap();
    /// let lp = Loop::builder(&rt, "tick", every_second)
    ///     .count(3)
    ///     .build({
    ///         let seen = seen.clone();
    ///         move |lp: Loop| {
    ///             seen.lock().unwrap().push(lp.scheduled_at().unwrap() - t0);
    ///             async { Ok::<(), std::io::Error>(()) }
    ///         }
    ///     });
    /// mock.block_on(async move { lp.start().unwrap().await }).unwrap().unwrap();
    /// let secs = |s| Duration::from_secs(s);
    /// assert_eq!(*seen.lock().unwrap(), [secs(0), secs(1), secs(2)]);
    /// ```
    pub fn scheduled_at(&self) -> Option<Instant> {
        self.shared.pulse.current_due()
    }

    /// How long the previous body took (zero before the first has ended).
    pub fn previous_execution_time(&self) -> Duration {
        self.state().previous_execution_time
    }

    /// The iterations a run does (`None` = forever).
    pub fn count(&self) -> Option<u64> {
        self.state().count
    }

    /// Iterations left in this run (`None` if unbounded).
    pub fn remaining(&self) -> Option<u64> {
        let state = self.state();
        let current_loop = self.shared.pulse.current_loop();
        state.count.map(|c| c.saturating_sub(current_loop))
    }

    /// Counters over all runs.
    pub fn stats(&self) -> LoopStats {
        self.state().stats
    }

    /// The schedule.
    pub fn schedule(&self) -> Schedule {
        self.state().schedule.clone()
    }

    /// Changes the interval. It takes effect from the last iteration: with
    /// a fixed-rate schedule the next start is one new period after the
    /// last iteration's start; with `After`, one new interval after the
    /// last body's end. A sleep in progress is rescheduled.
    ///
    /// # Errors
    /// [`ScheduleError`] for a malformed string or a zero fixed-rate
    /// period; the interval is then unchanged.
    ///
    /// # Examples
    ///
    /// Runs every 10 s; at 5 s the interval becomes 2 s, so the run due 2 s
    /// after the first has come already and starts at once, and the next
    /// one 2 s later:
    ///
    /// ```
    /// use machina_core::loops::Loop;
    /// use machina_core::schedule::Schedule;
    /// use machina_core::testing::MockRuntime;
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    ///
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// let starts = Arc::new(Mutex::new(Vec::new()));
    /// let seen = starts.clone();
    /// let t0 = rt.now();
    /// let lp = Loop::builder(&rt, "tick", Schedule::after("10s").unwrap())
    ///     .count(3)
    ///     .build(move |lp: Loop| {
    ///         let seen = seen.clone();
    ///         async move { seen.lock().unwrap().push(lp.runtime().now() - t0) }
    ///     });
    /// mock.block_on(async {
    ///     let run = lp.start().unwrap();
    ///     rt.sleep(Duration::from_secs(5)).await;
    ///     lp.change_interval("2s").unwrap();
    ///     assert!(lp.change_interval("2 parsecs").is_err()); // refused, unchanged
    ///     run.await.unwrap().unwrap();
    /// }).unwrap();
    /// let s = Duration::from_secs;
    /// assert_eq!(*starts.lock().unwrap(), [s(0), s(5), s(7)]);
    /// ```
    pub fn change_interval(&self, interval: impl IntoInterval) -> Result<(), ScheduleError> {
        let interval = interval.into_interval()?;
        {
            let mut state = self.state();
            state.schedule = state.schedule.with_interval(interval)?;
            if !state.running {
                return Ok(());
            }
            self.shared.pulse.request(INTERVAL);
        }
        self.shared.pulse.wake();
        Ok(())
    }

    /// Retries iterations that fail with `E` (when reconnecting is on).
    pub fn handle<E: Error + 'static>(&self) {
        self.state().kinds.handle::<E>();
    }

    /// Stops retrying iterations that fail with `E`; returns whether it
    /// was handled.
    pub fn remove<E: Error + 'static>(&self) -> bool {
        self.state().kinds.remove::<E>()
    }

    /// Retries no error kind any more.
    pub fn clear_handled(&self) {
        self.state().kinds.clear();
    }

    /// Marks the end of run `generation`: resets the counters and wakes
    /// whoever waits for it.
    fn finish(&self, generation: u64) {
        let wakers = {
            let mut state = self.state();
            if state.generation != generation {
                return;
            }
            state.running = false;
            state.next_iteration = None;
            self.shared.pulse.reset();
            std::mem::take(&mut state.done_wakers)
        };
        wakers.into_iter().for_each(std::task::Waker::wake);
    }
}

impl fmt::Debug for Loop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("Loop")
            .field("name", &self.shared.name)
            .field("schedule", &state.schedule)
            .field("count", &state.count)
            .field("running", &state.running)
            .field("current_loop", &self.shared.pulse.current_loop())
            .finish_non_exhaustive()
    }
}

impl LoopBuilder {
    /// Makes the loop belong to `owner`, held weakly (see [`Loop::owner`]).
    pub(crate) fn owner(mut self, owner: Weak<dyn Any + Send + Sync>) -> Self {
        self.owner = Some(owner);
        self
    }

    /// Runs `count` iterations, then ends (0 = none at all).
    pub fn count(mut self, count: u64) -> Self {
        self.state.count = Some(count);
        self
    }

    /// Runs until stopped or cancelled (the default).
    pub fn forever(mut self) -> Self {
        self.state.count = None;
        self
    }

    /// Runs `hook` once before the first iteration of every run.
    pub fn before_loop<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Loop) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.before_loop = Some(Arc::new(move |lp| Box::pin(hook(lp))));
        self
    }

    /// Runs `hook` once at the end of every run, however it ends.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::loops::Loop;
    /// use machina_core::schedule::Schedule;
    /// use machina_core::testing::MockRuntime;
    /// use std::sync::{Arc, Mutex};
    ///
    /// let mock = MockRuntime::new();
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let (a, b, c) = (log.clone(), log.clone(), log.clone());
    /// let lp = Loop::builder(&mock.runtime(), "hooks", Schedule::after("1s").unwrap())
    ///     .count(2)
    ///     .before_loop(move |_lp: Loop| {
    ///         let a = a.clone();
    ///         async move { a.lock().unwrap().push("before".to_string()) }
    ///     })
    ///     .after_loop(move |_lp: Loop| {
    ///         let b = b.clone();
    ///         async move { b.lock().unwrap().push("after".to_string()) }
    ///     })
    ///     .build(move |lp: Loop| {
    ///         let c = c.clone();
    ///         async move { c.lock().unwrap().push(format!("body {}", lp.current_loop())) }
    ///     });
    /// mock.block_on(lp.start().unwrap()).unwrap().unwrap().unwrap();
    /// assert_eq!(*log.lock().unwrap(), ["before", "body 0", "body 1", "after"]);
    /// ```
    pub fn after_loop<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Loop) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.after_loop = Some(Arc::new(move |lp| Box::pin(hook(lp))));
        self
    }

    /// Runs `hook` with the error that ends a run (replacing the default
    /// `tracing` error event).
    pub fn on_error<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Loop, SharedError) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_error = Some(Arc::new(move |lp, e| Box::pin(hook(lp, e))));
        self
    }

    /// Whether errors of the handled kinds are retried (default: true).
    pub fn reconnect(mut self, reconnect: bool) -> Self {
        self.state.reconnect = reconnect;
        self
    }

    /// The unit of the reconnect backoff (default: 1 s).
    pub fn reconnect_base(mut self, base: Duration) -> Self {
        self.state.reconnect_base = base;
        self
    }

    /// Also retries errors of type `E`.
    ///
    /// # Examples
    ///
    /// An iteration that fails with an I/O error is run again after a
    /// short backoff, without counting:
    ///
    /// ```
    /// use machina_core::loops::{Loop, LoopEnd};
    /// use machina_core::schedule::Schedule;
    /// use machina_core::testing::MockRuntime;
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::time::Duration;
    ///
    /// let mock = MockRuntime::new();
    /// let attempts = Arc::new(AtomicU32::new(0));
    /// let tries = attempts.clone();
    /// let lp = Loop::builder(&mock.runtime(), "flaky", Schedule::after("1s").unwrap())
    ///     .count(1)
    ///     .reconnect_base(Duration::from_millis(100))
    ///     .handle::<std::io::Error>()
    ///     .build(move |_lp: Loop| {
    ///         let tries = tries.clone();
    ///         async move {
    ///             if tries.fetch_add(1, Ordering::SeqCst) < 2 {
    ///                 return Err(std::io::Error::other("connection reset"));
    ///             }
    ///             Ok(())
    ///         }
    ///     });
    /// let ended = mock.block_on(lp.start().unwrap()).unwrap().unwrap().unwrap();
    /// assert_eq!(ended, LoopEnd::Completed);
    /// assert_eq!(attempts.load(Ordering::SeqCst), 3);
    /// assert_eq!(lp.stats().retried_errors, 2);
    /// ```
    pub fn handle<E: Error + 'static>(mut self) -> Self {
        self.state.kinds.handle::<E>();
        self
    }

    /// Also retries errors for which `predicate` holds.
    pub fn handle_if(
        mut self,
        predicate: impl Fn(&(dyn Error + 'static)) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.state.kinds.handle_if(predicate);
        self
    }

    /// No longer retries errors of type `E`.
    pub fn remove<E: Error + 'static>(mut self) -> Self {
        self.state.kinds.remove::<E>();
        self
    }

    /// Retries no error kind.
    pub fn clear_handled(mut self) -> Self {
        self.state.kinds.clear();
        self
    }

    /// The loop, running `body` each iteration. It does not start until
    /// [`Loop::start`].
    pub fn build<F, Fut>(self, body: F) -> Loop
    where
        F: Fn(Loop) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoBodyResult,
    {
        let body: BodyFn = Arc::new(move |lp| {
            let fut = body(lp);
            Box::pin(async move { fut.await.into_body_result() })
        });
        Loop {
            shared: Arc::new(LoopShared {
                pulse: Pulse::new(self.runtime.now()),
                runtime: self.runtime,
                body,
                owner: self.owner,
                state: Mutex::new(self.state),
                name: self.name,
                before_loop: self.before_loop,
                after_loop: self.after_loop,
                on_error: self.on_error,
            }),
        }
    }
}

impl fmt::Debug for LoopBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopBuilder")
            .field("name", &self.name)
            .field("schedule", &self.state.schedule)
            .field("count", &self.state.count)
            .finish_non_exhaustive()
    }
}
