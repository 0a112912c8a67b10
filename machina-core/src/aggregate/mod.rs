//! Call aggregation (aiomisc `aggregate` and `aggregate_async`): calls with
//! one argument each, made close together, run as one batch.
//!
//! A batch opens with its first call and closes `leeway` later, or at once
//! when it reaches `max_count` calls (the call that fills it closes it).
//! The batch runs as a task of the aggregator, not of any caller, so a
//! caller that gives up waiting takes nothing from the others, and no
//! caller's cancellation can leave the rest hanging.
//!
//! Two forms:
//! - [`Aggregator::new`]: the batch function takes the arguments and
//!   returns one result per argument, matched by position;
//! - [`Aggregator::with_replies`]: the batch function gets each argument
//!   with its own [`Reply`], for results that come back out of order.
//!
//! A failed batch gives every caller in it the same error (shared, so it
//! need not be `Clone`).
//!
//! One timer task per aggregator closes batches at the end of their
//! leeway: spawned with the first batch, it sleeps until the open batch's
//! deadline, or parks while no batch is open, and ends with the
//! aggregator. A batch that fills up is closed by its last call and does
//! not wake it, so a busy aggregator spawns one task per batch and wakes
//! its timer at most once per leeway. An aggregator dropped while a batch
//! is open runs that batch at once.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use futures::channel::oneshot;

use crate::error::BoxError;
use crate::rt::{Runtime, Sleep, SpawnError, instant_after};

/// An error shared by every caller of a failed batch.
pub type SharedBatchError = Arc<dyn Error + Send + Sync + 'static>;

/// An aggregator that could never work, refused at construction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AggregatorConfigError {
    /// `leeway` was zero: no two calls could share a batch.
    #[error(
        "invalid aggregator: leeway is zero, so no two calls could share a batch; use a leeway such as 10ms"
    )]
    ZeroLeeway,
    /// `max_count` was zero: no call could join a batch.
    #[error(
        "invalid aggregator: max_count is 0, so no call could join a batch; use at least 1, or None for no limit"
    )]
    ZeroMaxCount,
}

/// Why a call through an aggregator produced no value.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AggregateError {
    /// The batch function failed; every caller of the batch gets this.
    #[error("batch failed: {0}")]
    Failed(SharedBatchError),
    /// The batch function returned fewer results than arguments.
    #[error(
        "batch returned {returned} result(s) for {calls} call(s); no result for position {position}"
    )]
    MissingResult {
        /// This call's position in the batch.
        position: usize,
        /// How many calls the batch had.
        calls: usize,
        /// How many results came back.
        returned: usize,
    },
    /// The batch function dropped this call's [`Reply`] without answering.
    #[error("the batch function dropped this call's reply without answering")]
    NoReply,
    /// The batch could not be run: the executor refused its task.
    #[error("the batch could not be run: {0}")]
    Spawn(#[from] SpawnError),
}

/// The answer slot of one call in a batch ([`Aggregator::with_replies`]).
pub struct Reply<T> {
    sender: oneshot::Sender<Result<T, AggregateError>>,
}

impl<T> Reply<T> {
    /// Answers the call with `value`.
    pub fn send(self, value: T) {
        let _ = self.sender.send(Ok(value));
    }

    /// Answers the call with an error.
    pub fn fail(self, error: impl Into<BoxError>) {
        let shared: SharedBatchError = Arc::from(error.into());
        let _ = self.sender.send(Err(AggregateError::Failed(shared)));
    }

    /// Whether the caller still waits for this answer.
    pub fn is_wanted(&self) -> bool {
        !self.sender.is_canceled()
    }

    fn error(self, error: AggregateError) {
        let _ = self.sender.send(Err(error));
    }
}

impl<T> fmt::Debug for Reply<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply")
            .field("wanted", &self.is_wanted())
            .finish()
    }
}

type BatchFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
type BatchFn<A, T> = Arc<dyn Fn(Vec<(A, Reply<T>)>) -> BatchFuture + Send + Sync>;

struct Open<A, T> {
    id: u64,
    /// When the leeway of its first call ends.
    deadline: Instant,
    calls: Vec<(A, Reply<T>)>,
}

/// The aggregator's timer task, as the callers see it.
enum TimerTask {
    /// Not spawned (yet, or its spawn was refused).
    Absent,
    /// Spawned; parked with this waker while no batch is open.
    Spawned(Option<Waker>),
}

struct State<A, T> {
    open: Option<Open<A, T>>,
    next_id: u64,
    timer: TimerTask,
}

struct Inner<A, T> {
    runtime: Runtime,
    leeway: Duration,
    max_count: Option<usize>,
    batch: BatchFn<A, T>,
    state: Mutex<State<A, T>>,
}

/// Batches single-argument calls; see the module docs.
///
/// # Examples
///
/// ```
/// use machina_core::aggregate::Aggregator;
/// use machina_core::testing::MockRuntime;
/// use std::time::Duration;
///
/// let mock = MockRuntime::new();
/// let rt = mock.runtime();
/// let batches = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
/// let seen = batches.clone();
/// let square = Aggregator::new(&rt, Duration::from_millis(10), Some(100), move |ids: Vec<u32>| {
///     seen.lock().unwrap().push(ids.len());
///     async move { Ok::<_, std::io::Error>(ids.iter().map(|i| i * i).collect()) }
/// }).unwrap();
/// let results = mock.block_on(async {
///     futures::future::join_all((1..=3).map(|i| square.call(i))).await
/// }).unwrap();
/// let values: Vec<u32> = results.into_iter().map(Result::unwrap).collect();
/// assert_eq!(values, [1, 4, 9]);
/// assert_eq!(*batches.lock().unwrap(), [3]); // one batch for all three
/// ```
pub struct Aggregator<A, T> {
    inner: Arc<Inner<A, T>>,
}

impl<A, T> Clone for Aggregator<A, T> {
    fn clone(&self) -> Self {
        Aggregator {
            inner: self.inner.clone(),
        }
    }
}

impl<A: Send + 'static, T: Send + 'static> Aggregator<A, T> {
    /// An aggregator whose batch function maps the batch's arguments to one
    /// result per argument, by position (aiomisc `aggregate`).
    ///
    /// # Errors
    /// [`AggregatorConfigError`] for a zero `leeway` or `max_count`.
    pub fn new<F, Fut, E>(
        runtime: &Runtime,
        leeway: Duration,
        max_count: Option<usize>,
        batch: F,
    ) -> Result<Self, AggregatorConfigError>
    where
        F: Fn(Vec<A>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<T>, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Aggregator::with_replies(
            runtime,
            leeway,
            max_count,
            move |calls: Vec<(A, Reply<T>)>| {
                let (args, replies): (Vec<A>, Vec<Reply<T>>) = calls.into_iter().unzip();
                let run = batch(args);
                async move {
                    let calls = replies.len();
                    match run.await {
                        Ok(results) => {
                            let returned = results.len();
                            let mut results = results.into_iter();
                            for (position, reply) in replies.into_iter().enumerate() {
                                match results.next() {
                                    Some(value) => reply.send(value),
                                    None => reply.error(AggregateError::MissingResult {
                                        position,
                                        calls,
                                        returned,
                                    }),
                                }
                            }
                        }
                        Err(error) => {
                            let shared: SharedBatchError = Arc::from(error.into());
                            for reply in replies {
                                reply.error(AggregateError::Failed(shared.clone()));
                            }
                        }
                    }
                }
            },
        )
    }

    /// An aggregator whose batch function answers each call through its
    /// own [`Reply`] (aiomisc `aggregate_async`).
    ///
    /// # Errors
    /// [`AggregatorConfigError`] for a zero `leeway` or `max_count`.
    pub fn with_replies<F, Fut>(
        runtime: &Runtime,
        leeway: Duration,
        max_count: Option<usize>,
        batch: F,
    ) -> Result<Self, AggregatorConfigError>
    where
        F: Fn(Vec<(A, Reply<T>)>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if leeway.is_zero() {
            return Err(AggregatorConfigError::ZeroLeeway);
        }
        if max_count == Some(0) {
            return Err(AggregatorConfigError::ZeroMaxCount);
        }
        Ok(Aggregator {
            inner: Arc::new(Inner {
                runtime: runtime.clone(),
                leeway,
                max_count,
                batch: Arc::new(move |calls| Box::pin(batch(calls))),
                state: Mutex::new(State {
                    open: None,
                    next_id: 0,
                    timer: TimerTask::Absent,
                }),
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State<A, T>> {
        self.inner.state()
    }

    /// Adds `arg` to the open batch (opening one if needed) and waits for
    /// its result.
    ///
    /// # Errors
    /// [`AggregateError`]: the batch failed, returned too few results,
    /// dropped this call's reply, or could not be run.
    pub async fn call(&self, arg: A) -> Result<T, AggregateError> {
        let (sender, receiver) = oneshot::channel();
        let reply = Reply { sender };
        let (opened, full) = {
            let mut state = self.state();
            let opened = match &mut state.open {
                Some(open) => {
                    open.calls.push((arg, reply));
                    None
                }
                None => {
                    state.next_id += 1;
                    let id = state.next_id;
                    // Room for a full batch at once: no regrowth as it fills.
                    let mut calls =
                        Vec::with_capacity(self.inner.max_count.map_or(16, |max| max.min(1024)));
                    calls.push((arg, reply));
                    let deadline = instant_after(self.inner.runtime.now(), self.inner.leeway);
                    state.open = Some(Open {
                        id,
                        deadline,
                        calls,
                    });
                    // The timer: spawned for the first batch, woken if it
                    // is parked.
                    Some(match &mut state.timer {
                        TimerTask::Absent => {
                            state.timer = TimerTask::Spawned(None);
                            TimerCall::Spawn
                        }
                        TimerTask::Spawned(parked) => TimerCall::Wake(parked.take()),
                    })
                }
            };
            let reached = state.open.as_ref().is_some_and(|open| {
                self.inner
                    .max_count
                    .is_some_and(|max| open.calls.len() >= max)
            });
            let full = if reached { state.open.take() } else { None };
            (opened, full)
        };
        match opened {
            Some(TimerCall::Spawn) => self.spawn_timer(),
            Some(TimerCall::Wake(Some(waker))) => waker.wake(),
            Some(TimerCall::Wake(None)) | None => {}
        }
        if let Some(open) = full {
            // The call that fills the batch closes it and runs it at once.
            self.inner.spawn_batch(open.calls);
        }
        receiver.await.unwrap_or(Err(AggregateError::NoReply))
    }

    /// Spawns the timer task that closes batches when their leeway ends.
    /// If the executor refuses it, the open batch's callers hear why, and
    /// the next batch tries again.
    fn spawn_timer(&self) {
        let timer = self.inner.runtime.spawn_named(
            "aggregate-leeway",
            close_on_time(Arc::downgrade(&self.inner), self.inner.runtime.clone()),
        );
        match timer {
            Ok(handle) => handle.detach(),
            Err(error) => {
                let failed = {
                    let mut state = self.state();
                    state.timer = TimerTask::Absent;
                    state.open.take()
                };
                for (_, reply) in failed.into_iter().flat_map(|o| o.calls) {
                    reply.error(AggregateError::Spawn(error.clone()));
                }
            }
        }
    }

    /// Calls waiting in the open batch.
    pub fn pending(&self) -> usize {
        self.state().open.as_ref().map_or(0, |o| o.calls.len())
    }
}

/// What the call that opened a batch does about the timer task.
enum TimerCall {
    Spawn,
    Wake(Option<Waker>),
}

impl<A, T> Inner<A, T> {
    fn state(&self) -> MutexGuard<'_, State<A, T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn spawn_batch(&self, calls: Vec<(A, Reply<T>)>) {
        let run = (self.batch)(calls);
        // If the executor refuses the task, dropping it drops every reply,
        // and each caller hears `NoReply`.
        match self.runtime.spawn_named("aggregate-batch", run) {
            Ok(handle) => handle.detach(),
            Err(error) => tracing::error!(%error, "an aggregated batch could not be run"),
        }
    }
}

impl<A, T> Drop for Inner<A, T> {
    fn drop(&mut self) {
        let (open, parked) = {
            let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
            let parked = match &mut state.timer {
                TimerTask::Spawned(parked) => parked.take(),
                TimerTask::Absent => None,
            };
            (state.open.take(), parked)
        };
        // Calls made are run, if early: nobody is left to wait a leeway.
        if let Some(open) = open {
            self.spawn_batch(open.calls);
        }
        // The parked timer task sees the aggregator gone, and ends.
        if let Some(waker) = parked {
            waker.wake();
        }
    }
}

/// The timer task: closes the open batch when its leeway ends, parks
/// while no batch is open, and ends once the aggregator is gone. It holds
/// the aggregator only between its waits.
async fn close_on_time<A, T>(aggregator: Weak<Inner<A, T>>, runtime: Runtime) {
    let mut sleep: Option<Sleep> = None;
    loop {
        let due = std::future::poll_fn(|cx| {
            let Some(inner) = aggregator.upgrade() else {
                return Poll::Ready(None);
            };
            let mut state = inner.state();
            match &state.open {
                Some(open) => Poll::Ready(Some((open.id, open.deadline))),
                None => {
                    state.timer = TimerTask::Spawned(Some(cx.waker().clone()));
                    Poll::Pending
                }
            }
        })
        .await;
        let Some((id, deadline)) = due else { return };
        match sleep.as_mut() {
            Some(sleep) => {
                sleep.reset(deadline);
                sleep.await;
            }
            None => sleep.insert(runtime.sleep_until(deadline)).await,
        }
        let Some(inner) = aggregator.upgrade() else {
            return;
        };
        let closing = {
            let mut state = inner.state();
            match &state.open {
                Some(open) if open.id == id => state.open.take(),
                _ => None,
            }
        };
        if let Some(open) = closing {
            inner.spawn_batch(open.calls);
        }
    }
}

impl<A, T> fmt::Debug for Aggregator<A, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aggregator")
            .field("leeway", &self.inner.leeway)
            .field("max_count", &self.inner.max_count)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, feature = "test-util"))]
mod tests;
