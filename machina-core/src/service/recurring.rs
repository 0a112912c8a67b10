//! [`RecurringService`]: a callback whose every wait is chosen by an async
//! strategy (aiomisc `RecurringCallback` with `StrategySkip` and
//! `StrategyStop`), on the one [`Loop`] engine.
//!
//! Before each run the strategy is asked what to do next, given what has
//! happened so far ([`RecurringState`]): [`Strategy::Run`] waits and then
//! runs the callback, [`Strategy::Skip`] waits and asks again without
//! running, [`Strategy::Stop`] ends the cycle. Runs never overlap. A
//! failing run is logged and the strategy is asked again, so it can back
//! off. Stopping ends a wait at once and lets a run in progress (and the
//! strategy call after it) finish.
//!
//! As a service it runs while the stack runs; [`RecurringService::to_loop`]
//! gives the same cycle as a standalone [`Loop`] to start and stop by hand.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;

use super::supervisor::{Service, ServiceContext, ServiceFuture, StopContext};
use crate::error::BoxError;
use crate::loops::Loop;
use crate::rt::Runtime;
use crate::schedule::Schedule;

type Callback =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>> + Send + Sync>;
type StrategyFn =
    Arc<dyn Fn(RecurringState) -> Pin<Box<dyn Future<Output = Strategy> + Send>> + Send + Sync>;

/// What a [`RecurringService`]'s strategy decides before each run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Wait this long, then run the callback.
    Run(Duration),
    /// Wait this long, then ask again without running (aiomisc
    /// `StrategySkip`).
    Skip(Duration),
    /// End the cycle (aiomisc `StrategyStop`).
    Stop,
}

/// What has happened so far, handed to the strategy before each decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecurringState {
    /// Runs of the callback that have finished, failed or not.
    pub runs: u64,
    /// Of those, how many failed.
    pub failures: u64,
    /// Failures in a row, up to the latest run (0 after a success).
    pub consecutive_failures: u64,
    /// Decisions that were [`Strategy::Skip`].
    pub skips: u64,
}

/// A callback run at times an async strategy chooses; see the module docs.
///
/// # Examples
///
/// ```
/// use machina_core::service::{RecurringService, Strategy, Supervisor};
/// use machina_core::testing::MockRuntime;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let runs = Arc::new(AtomicU32::new(0));
/// let counter = runs.clone();
/// // 5 s before the first run, 10 s before each later one, three in all.
/// let service = RecurringService::new(
///     "sync",
///     |state| async move {
///         match state.runs {
///             0 => Strategy::Run(Duration::from_secs(5)),
///             1 | 2 => Strategy::Run(Duration::from_secs(10)),
///             _ => Strategy::Stop,
///         }
///     },
///     move || {
///         let counter = counter.clone();
///         async move { counter.fetch_add(1, Ordering::SeqCst); Ok::<(), std::io::Error>(()) }
///     },
/// );
/// let mock = MockRuntime::new();
/// let stack = Supervisor::builder(&mock.runtime()).service("sync", service, &[]).build().unwrap();
/// mock.block_on(async { stack.start().await.unwrap() }).unwrap();
/// mock.advance(Duration::from_secs(60)).unwrap();
/// assert_eq!(runs.load(Ordering::SeqCst), 3); // at 5, 15 and 25 s
/// mock.block_on(async { stack.stop().await }).unwrap();
/// ```
pub struct RecurringService {
    name: String,
    strategy: StrategyFn,
    callback: Callback,
    running: Mutex<Option<Loop>>,
}

/// Where a cycle is between two iterations of its loop.
#[derive(Debug, Default)]
struct Cycle {
    state: RecurringState,
    /// The last decision was `Run`: the next iteration runs the callback.
    run_next: bool,
}

impl RecurringService {
    /// Runs `callback` whenever `strategy` says so.
    pub fn new<S, SFut, F, Fut, E>(name: impl Into<String>, strategy: S, callback: F) -> Self
    where
        S: Fn(RecurringState) -> SFut + Send + Sync + 'static,
        SFut: Future<Output = Strategy> + Send + 'static,
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        RecurringService {
            name: name.into(),
            strategy: Arc::new(move |state| strategy(state).boxed()),
            callback: Arc::new(move || callback().map(|r| r.map_err(Into::into)).boxed()),
            running: Mutex::new(None),
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Loop>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The strategy/wait/run cycle as a [`Loop`] on `runtime` (not
    /// started): each iteration runs the callback if the last decision was
    /// [`Strategy::Run`], asks the strategy, and sets the wait before the
    /// next iteration; [`Strategy::Stop`] stops the loop. Each call makes a
    /// fresh cycle.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::service::{RecurringService, Strategy};
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let service = RecurringService::new(
    ///     "ping",
    ///     |state| async move {
    ///         if state.runs < 2 { Strategy::Run(Duration::from_secs(30)) } else { Strategy::Stop }
    ///     },
    ///     || async { Ok::<(), std::io::Error>(()) },
    /// );
    /// let mock = MockRuntime::new();
    /// let lp = service.to_loop(&mock.runtime());
    /// let run = lp.start().unwrap();
    /// mock.block_on(run).unwrap().unwrap();
    /// assert_eq!(mock.elapsed(), Duration::from_secs(60)); // two runs, 30 s apart
    /// ```
    pub fn to_loop(&self, runtime: &Runtime) -> Loop {
        let (strategy, callback, name) = (
            self.strategy.clone(),
            self.callback.clone(),
            self.name.clone(),
        );
        let cycle = Arc::new(Mutex::new(Cycle::default()));
        Loop::builder(runtime, self.name.clone(), Schedule::After(Duration::ZERO))
            .clear_handled()
            .build(move |lp: Loop| {
                let (strategy, callback, name, cycle) = (
                    strategy.clone(),
                    callback.clone(),
                    name.clone(),
                    cycle.clone(),
                );
                async move { step(&lp, &name, &strategy, &callback, &cycle).await }
            })
    }
}

fn lock(cycle: &Mutex<Cycle>) -> std::sync::MutexGuard<'_, Cycle> {
    cycle.lock().unwrap_or_else(|p| p.into_inner())
}

/// One iteration: the run the last decision asked for, then the next
/// decision.
async fn step(
    lp: &Loop,
    name: &str,
    strategy: &StrategyFn,
    callback: &Callback,
    cycle: &Mutex<Cycle>,
) {
    if std::mem::take(&mut lock(cycle).run_next) {
        let outcome = callback().await;
        let mut cycle = lock(cycle);
        cycle.state.runs += 1;
        match outcome {
            Ok(()) => cycle.state.consecutive_failures = 0,
            Err(error) => {
                cycle.state.failures += 1;
                cycle.state.consecutive_failures += 1;
                tracing::error!(service = %name, %error, "recurring run failed; asking the strategy again");
            }
        }
    }
    let state = lock(cycle).state;
    let wait = match strategy(state).await {
        Strategy::Stop => {
            tracing::debug!(service = %name, ?state, "the strategy stopped the cycle");
            lp.stop();
            return;
        }
        Strategy::Skip(wait) => {
            lock(cycle).state.skips += 1;
            wait
        }
        Strategy::Run(wait) => {
            lock(cycle).run_next = true;
            wait
        }
    };
    // `After` accepts any duration, zero included.
    let _ = lp.change_interval(wait);
}

impl Service for RecurringService {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            let lp = self.to_loop(ctx.runtime());
            // Aborted with the start task if a stop runs past its timeout,
            // so the loop never outlives the service.
            let run = lp.start()?.abort_on_drop();
            *self.slot() = Some(lp);
            ctx.ready();
            // Stay alive with the loop; stopping the service stops it. A
            // panic in the callback ends the loop with an error, which
            // brings the stack down like any background failure.
            super::periodic::until_loop_ends(run).await
        })
    }

    fn stop(self: Arc<Self>, _ctx: StopContext) -> ServiceFuture {
        Box::pin(async move {
            let lp = self.slot().take();
            if let Some(lp) = lp {
                // A run in progress finishes first; the supervisor's stop
                // timeout bounds a run that does not.
                lp.stop();
                lp.wait_until_done().await;
            }
            Ok(())
        })
    }
}

impl std::fmt::Debug for RecurringService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecurringService")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, feature = "test-util"))]
mod tests;
