//! Join handles: the one implementation of awaiting, aborting and detaching
//! a spawned task, shared by every executor.
//!
//! [`Runtime::spawn`](super::Runtime::spawn) makes each task a
//! [`Task`](super::Task) (`task.rs`) that catches panics, honours aborts and
//! hands the outcome to the [`JoinHandle`] through one shared [`JoinState`].
//! Executors only ever see a detached `Task`, so the semantics cannot
//! differ between them.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use futures::task::AtomicWaker;

/// Why a task produced no value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The task was aborted, or its executor dropped it before it finished.
    #[error("task was cancelled before it finished")]
    Cancelled,
    /// The task panicked; the payload is kept.
    #[error("task panicked: {0}")]
    Panicked(PanicPayload),
}

impl JoinError {
    /// Whether the task was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JoinError::Cancelled)
    }

    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }

    /// The panic payload, if the task panicked.
    pub fn panic_payload(&self) -> Option<&PanicPayload> {
        match self {
            JoinError::Panicked(p) => Some(p),
            JoinError::Cancelled => None,
        }
    }
}

/// What a task panicked with: its message, and the original payload for
/// [`std::panic::resume_unwind`].
pub struct PanicPayload {
    message: String,
    // A Mutex makes the payload `Sync`, so `JoinError` fits in a
    // `Box<dyn Error + Send + Sync>`.
    payload: Mutex<Option<Box<dyn Any + Send + 'static>>>,
}

impl PanicPayload {
    pub(crate) fn new(payload: Box<dyn Any + Send + 'static>) -> Self {
        let message = panic_message(&*payload);
        PanicPayload {
            message,
            payload: Mutex::new(Some(payload)),
        }
    }

    /// The panic message (`"non-string panic payload"` for other payloads).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The original payload, to re-raise it with
    /// [`std::panic::resume_unwind`].
    pub fn into_inner(self) -> Box<dyn Any + Send + 'static> {
        let message = self.message;
        self.payload
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .unwrap_or_else(|| Box::new(message))
    }
}

impl fmt::Debug for PanicPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PanicPayload").field(&self.message).finish()
    }
}

impl fmt::Display for PanicPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The message of a panic payload (`"non-string panic payload"` for
/// payloads that are not strings).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The state one task shares with its join handle and abort handles: on
/// its own in an `Arc` for blocking work, beside the future in a spawned
/// task's one allocation (`task.rs`).
pub(crate) struct JoinState<T> {
    aborted: AtomicBool,
    finished: AtomicBool,
    result: Mutex<Option<Result<T, JoinError>>>,
    join_waker: AtomicWaker,
    task_waker: AtomicWaker,
}

impl<T> JoinState<T> {
    /// A fresh state, shared on its own.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::new_inline())
    }

    /// A fresh state, to be placed inside another shared allocation.
    pub(crate) fn new_inline() -> Self {
        JoinState {
            aborted: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            result: Mutex::new(None),
            join_waker: AtomicWaker::new(),
            task_waker: AtomicWaker::new(),
        }
    }

    /// Records the outcome; only the first call counts.
    pub(crate) fn complete(&self, outcome: Result<T, JoinError>) {
        {
            let mut slot = lock(&self.result);
            if self.finished.load(Ordering::Acquire) {
                return;
            }
            *slot = Some(outcome);
            self.finished.store(true, Ordering::Release);
        }
        self.join_waker.wake();
    }

    pub(crate) fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// Asks the task to stop, and wakes it to see that.
    pub(crate) fn abort(&self) {
        self.aborted.store(true, Ordering::Release);
        self.task_waker.wake();
    }

    /// The waker an abort wakes.
    pub(crate) fn register_task_waker(&self, waker: &Waker) {
        self.task_waker.register(waker);
    }
}

/// Type-erased control over a task, for [`AbortHandle`].
pub(crate) trait TaskControl: Send + Sync {
    fn abort(&self);
    fn is_finished(&self) -> bool;
}

impl<T: Send> TaskControl for JoinState<T> {
    fn abort(&self) {
        JoinState::abort(self);
    }

    fn is_finished(&self) -> bool {
        JoinState::is_finished(self)
    }
}

/// Whatever holds a task's [`JoinState`]: the state itself, or a spawned
/// task's one allocation.
pub(crate) trait Joinable<T>: TaskControl {
    fn join_state(&self) -> &JoinState<T>;
}

impl<T: Send> Joinable<T> for JoinState<T> {
    fn join_state(&self) -> &JoinState<T> {
        self
    }
}

/// Blocking work with the same outcome reporting as a spawned [`Task`](super::Task).
pub(crate) struct BlockingCell<F, T> {
    work: Option<F>,
    state: Arc<JoinState<T>>,
}

impl<F: FnOnce() -> T, T> BlockingCell<F, T> {
    pub(crate) fn new(work: F, state: Arc<JoinState<T>>) -> Self {
        BlockingCell {
            work: Some(work),
            state,
        }
    }

    pub(crate) fn run(mut self) {
        let Some(work) = self.work.take() else { return };
        if self.state.is_aborted() {
            self.state.complete(Err(JoinError::Cancelled));
            return;
        }
        let outcome = catch_unwind(AssertUnwindSafe(work))
            .map_err(|payload| JoinError::Panicked(PanicPayload::new(payload)));
        self.state.complete(outcome);
    }
}

impl<F, T> Drop for BlockingCell<F, T> {
    fn drop(&mut self) {
        if self.work.is_some() {
            self.state.complete(Err(JoinError::Cancelled));
        }
    }
}

/// An owned permission to await a spawned task.
///
/// Awaiting it gives the task's value, or a [`JoinError`] that tells a
/// cancelled task from a panicked one. Dropping it **detaches** the task,
/// which keeps running, unless [`abort_on_drop`](JoinHandle::abort_on_drop)
/// was asked for. The semantics are the same on every runtime.
///
/// # Examples
///
/// ```
/// use machina_core::testing::MockRuntime;
///
/// let mock = MockRuntime::new();
/// let rt = mock.runtime();
/// let value = mock.block_on(async move {
///     let handle = rt.spawn(async { 40 + 2 }).unwrap();
///     handle.await.unwrap()
/// });
/// assert_eq!(value.unwrap(), 42);
/// ```
#[must_use = "dropping a JoinHandle detaches the task; call .detach() to say so"]
pub struct JoinHandle<T> {
    joined: Arc<dyn Joinable<T>>,
    abort_on_drop: bool,
}

impl<T> JoinHandle<T> {
    fn state(&self) -> &JoinState<T> {
        self.joined.join_state()
    }
}

impl<T: Send + 'static> JoinHandle<T> {
    pub(crate) fn new(joined: Arc<dyn Joinable<T>>) -> Self {
        JoinHandle {
            joined,
            abort_on_drop: false,
        }
    }

    /// Asks the task to stop. Its future is dropped at the next
    /// opportunity and awaiting the handle gives [`JoinError::Cancelled`],
    /// unless the task had already finished. Blocking work that has already
    /// started runs to its end; its value is then delivered.
    pub fn abort(&self) {
        self.state().abort();
    }

    /// Whether the task has finished (with a value, a panic or a
    /// cancellation).
    pub fn is_finished(&self) -> bool {
        self.state().is_finished()
    }

    /// Makes dropping this handle abort the task, instead of detaching it.
    pub fn abort_on_drop(mut self) -> Self {
        self.abort_on_drop = true;
        self
    }

    /// A cloneable handle that can abort the task without owning its result.
    pub fn abort_handle(&self) -> AbortHandle {
        let control: Arc<dyn TaskControl> = self.joined.clone();
        AbortHandle::new(Arc::downgrade(&control))
    }

    /// Lets the task run on without anyone awaiting it (the same as
    /// dropping the handle, but says so).
    pub fn detach(mut self) {
        self.abort_on_drop = false;
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let state = self.state();
        if !state.finished.load(Ordering::Acquire) {
            state.join_waker.register(cx.waker());
            if !state.finished.load(Ordering::Acquire) {
                return Poll::Pending;
            }
        }
        match lock(&state.result).take() {
            Some(outcome) => Poll::Ready(outcome),
            None => panic!("JoinHandle polled again after it returned the task's outcome"),
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if self.abort_on_drop {
            self.state().abort();
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.state().is_finished())
            .field("abort_on_drop", &self.abort_on_drop)
            .finish()
    }
}

/// A cloneable handle that aborts a task; see [`JoinHandle::abort`].
///
/// It does not keep the task's state alive: once the task and its
/// [`JoinHandle`] are gone, it reports the task finished and aborting is a
/// no-op.
#[derive(Clone)]
pub struct AbortHandle {
    control: Weak<dyn TaskControl>,
}

impl AbortHandle {
    pub(crate) fn new(control: Weak<dyn TaskControl>) -> Self {
        AbortHandle { control }
    }

    /// Asks the task to stop; see [`JoinHandle::abort`].
    pub fn abort(&self) {
        if let Some(control) = self.control.upgrade() {
            control.abort();
        }
    }

    /// Whether the task has finished.
    pub fn is_finished(&self) -> bool {
        self.control
            .upgrade()
            .is_none_or(|control| control.is_finished())
    }
}

impl fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
