//! [`RecurringService`]: a callback whose every wait is chosen by an async
//! strategy (aiomisc `RecurringCallback` with `StrategySkip` and
//! `StrategyStop`).
//!
//! Before each run the strategy is asked what to do next, given what has
//! happened so far ([`RecurringState`]): [`Strategy::Run`] waits and then
//! runs the callback, [`Strategy::Skip`] waits and asks again without
//! running, [`Strategy::Stop`] ends the service. Runs never overlap. A
//! failing run is logged and the strategy is asked again, so it can back
//! off. Stopping the service ends a wait (or a strategy call) at once and
//! lets a run in progress finish.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::channel::oneshot;
use futures::future::{Either, select};

use super::supervisor::{Service, ServiceContext, ServiceFuture, StopReason};
use crate::retry::BoxError;

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
    /// End the service (aiomisc `StrategyStop`).
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
    stop: Mutex<Option<Running>>,
}

/// The signals of a running cycle: ask it to stop, learn that it ended.
struct Running {
    stop: oneshot::Sender<()>,
    /// Resolves (cancelled) when the cycle's sender is dropped at its end.
    done: oneshot::Receiver<()>,
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
            stop: Mutex::new(None),
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        self.stop.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The strategy/wait/run cycle until the strategy stops or `stopped`
    /// fires.
    async fn cycle(&self, ctx: &ServiceContext, mut stopped: oneshot::Receiver<()>) {
        let mut state = RecurringState::default();
        loop {
            let decision = match select((self.strategy)(state), &mut stopped).await {
                Either::Left((decision, _)) => decision,
                Either::Right(_) => return,
            };
            let (wait, run) = match decision {
                Strategy::Stop => {
                    tracing::debug!(service = %self.name, ?state, "the strategy stopped the service");
                    return;
                }
                Strategy::Skip(wait) => (wait, false),
                Strategy::Run(wait) => (wait, true),
            };
            // A zero wait still yields once, so a strategy that never waits
            // cannot starve the executor.
            let sleep = if wait.is_zero() {
                yield_once().boxed()
            } else {
                ctx.runtime().sleep(wait).boxed()
            };
            if let Either::Right(_) = select(sleep, &mut stopped).await {
                return;
            }
            if !run {
                state.skips += 1;
                continue;
            }
            let outcome = (self.callback)().await;
            state.runs += 1;
            match outcome {
                Ok(()) => state.consecutive_failures = 0,
                Err(error) => {
                    state.failures += 1;
                    state.consecutive_failures += 1;
                    tracing::error!(service = %self.name, %error, "recurring run failed; asking the strategy again");
                }
            }
        }
    }
}

/// Pending once, then ready: gives other tasks a turn.
fn yield_once() -> impl Future<Output = ()> {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
}

impl Service for RecurringService {
    fn start(self: Arc<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            let (stop, stopped) = oneshot::channel();
            let (_ended, done) = oneshot::channel::<()>();
            *self.slot() = Some(Running { stop, done });
            ctx.ready();
            self.cycle(&ctx, stopped).await;
            Ok(())
        })
    }

    fn stop(self: Arc<Self>, _reason: StopReason) -> ServiceFuture {
        Box::pin(async move {
            let running = self.slot().take();
            if let Some(Running { stop, done }) = running {
                let _ = stop.send(());
                // A run in progress finishes first; the supervisor's stop
                // timeout bounds a run that does not.
                let _ = done.await;
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
