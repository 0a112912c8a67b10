//! [`Task`]: a spawned task as an executor receives it — the task's future
//! and the state it shares with its [`JoinHandle`] in **one** allocation.
//!
//! A task used to cross the object-safe [`Spawn`](super::Spawn) as a boxed
//! future holding an `Arc` of its join state: two allocations of ours on
//! top of the executor's own task, freed on whichever worker finished it
//! (under glibc, each such free takes the allocating thread's arena lock).
//! Here the future sits beside the join state in one `Arc`, and the
//! executor is handed a [`Task`] — a concrete, two-word future it can
//! store in its own task without boxing.
//!
//! # Why this module has `unsafe` code (the only one in the crate)
//!
//! The future must be polled in place inside a shared allocation: the
//! [`JoinHandle`] and every [`AbortHandle`](super::AbortHandle) point at the
//! same `Arc`, so safe code can only reach the future through a lock (and
//! then only if it is `Unpin`) or through a second box. Instead:
//!
//! - the future lives in an `UnsafeCell` ([`Stage`]), and exactly one
//!   value may touch it: the [`Task`] made with the allocation. `Task` is
//!   not `Clone`; it touches the cell only from `poll` (through
//!   `Pin<&mut Task>`, so exclusively) and from its `Drop`. The join and
//!   abort handles see the allocation only as [`Joinable`] /
//!   [`TaskControl`], whose methods touch the join state alone;
//! - the allocation is never moved out of, so the future stays pinned; it
//!   is dropped in place (when the task ends, or by `Task`'s `Drop`), never
//!   moved;
//! - the cell is `Sync` for `F: Send` because of the first point: a shared
//!   reference never reaches it. Hand-offs of the `Task` between worker
//!   threads are ordered by the executor, as for any future it runs.
//!
//! The loom model in this module (`cfg(loom)`) checks with loom's
//! `UnsafeCell` that polls, aborts, joins and a drop on other threads never
//! access the cell concurrently.

#![allow(unsafe_code)]

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::join::{
    AbortHandle, JoinError, JoinHandle, JoinState, Joinable, PanicPayload, TaskControl,
};

#[cfg(loom)]
use loom::cell::UnsafeCell;

/// std's `UnsafeCell` with loom's access API, so that the same code is
/// model-checked under `cfg(loom)`.
#[cfg(not(loom))]
#[derive(Debug)]
struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// What only the [`Task`] touches: the future while it runs, and the
/// waker last registered for aborts.
struct Stage<F> {
    /// The future, dropped in place as soon as the task ends, so that its
    /// destructors have run before the join handle reports the end.
    future: Option<F>,
    /// Identity (data and vtable addresses) of the waker last given to
    /// the state's task waker, so that a task polled again with the same
    /// waker skips registering it. The state holds a clone of that waker
    /// (which keeps the addresses from being reused by another waker) until
    /// an abort takes and wakes it; the abort flag never clears, so the
    /// next poll ends the task without needing the waker again.
    registered: Option<(usize, usize)>,
}

/// The one allocation: the join state, and the stage only the `Task` uses.
struct Shared<F: Future> {
    state: JoinState<F::Output>,
    stage: StageCell<F>,
}

impl<F: Future> Shared<F> {
    /// A fresh allocation holding `future` (or none yet).
    fn holding(future: Option<F>) -> Self {
        Shared {
            state: JoinState::new_inline(),
            stage: StageCell(UnsafeCell::new(Stage {
                future,
                registered: None,
            })),
        }
    }
}

/// The stage's cell: `Sync` so that the allocation can be shared, although
/// only the one `Task` ever reaches into it.
struct StageCell<F>(UnsafeCell<Stage<F>>);

// SAFETY: the cell is reached only through `Run`, whose methods only the
// one `Task` of the allocation calls, with exclusive access to that `Task`
// (see the module comment); the other handles never touch it. `F: Send`
// because the `Task` moves between threads. Everything else in `Shared`
// gets `Sync` the ordinary way.
unsafe impl<F: Send> Sync for StageCell<F> {}

impl<F: Future> Joinable<F::Output> for Shared<F>
where
    F: Send,
    F::Output: Send,
{
    fn join_state(&self) -> &JoinState<F::Output> {
        &self.state
    }
}

impl<F> TaskControl for Shared<F>
where
    F: Future + Send,
    F::Output: Send,
{
    fn abort(&self) {
        self.state.abort();
    }

    fn is_finished(&self) -> bool {
        self.state.is_finished()
    }
}

/// The `Task`'s access to its allocation's stage.
///
/// # Safety
/// Callers must be the one [`Task`] made with the allocation, holding it
/// exclusively for the call.
trait Run: Send + Sync {
    /// Polls the future (catching a panic, honouring an abort); `Ready`
    /// once the task has ended and its outcome is recorded.
    unsafe fn poll_run(&self, cx: &mut Context<'_>) -> Poll<()>;

    /// Drops the future if the task has not ended, and records it as
    /// cancelled.
    unsafe fn cancel_run(&self);
}

impl<F> Run for Shared<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    unsafe fn poll_run(&self, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: the caller is the only one with access to the stage.
        self.stage.0.with_mut(|stage| {
            let stage = unsafe { &mut *stage };
            if stage.future.is_none() {
                return Poll::Ready(());
            }
            let identity = waker_identity(cx.waker());
            if stage.registered != Some(identity) {
                self.state.register_task_waker(cx.waker());
                stage.registered = Some(identity);
            }
            // Checked after registering, so an abort racing with this poll
            // either is seen here or wakes the task again.
            let outcome = if self.state.is_aborted() {
                Err(JoinError::Cancelled)
            } else {
                let Some(future) = stage.future.as_mut() else {
                    return Poll::Ready(());
                };
                // SAFETY: the future lives inside the `Arc` allocation and
                // is never moved out of it: it is dropped in place below or
                // by `cancel_run`.
                let future = unsafe { Pin::new_unchecked(future) };
                match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(value)) => Ok(value),
                    Err(payload) => Err(JoinError::Panicked(PanicPayload::new(payload))),
                }
            };
            drop_in_place_quietly(&mut stage.future);
            self.state.complete(outcome);
            Poll::Ready(())
        })
    }

    unsafe fn cancel_run(&self) {
        // SAFETY: the caller is the only one with access to the stage.
        self.stage.0.with_mut(|stage| {
            let stage = unsafe { &mut *stage };
            if stage.future.is_some() {
                drop_in_place_quietly(&mut stage.future);
                // The executor dropped the task before it finished
                // (shutdown, or it refused the task): the join handle must
                // not hang.
                self.state.complete(Err(JoinError::Cancelled));
            }
        });
    }
}

/// Drops the future where it lies (assigning `None` drops the old value in
/// place); a panic in its destructor is contained, the task's outcome being
/// decided already.
fn drop_in_place_quietly<F>(future: &mut Option<F>) {
    if catch_unwind(AssertUnwindSafe(|| *future = None)).is_err() {
        tracing::error!("a task's future panicked while being dropped");
    }
}

/// What `Waker::will_wake` compares, as plain numbers.
fn waker_identity(waker: &Waker) -> (usize, usize) {
    (
        waker.data() as usize,
        std::ptr::from_ref(waker.vtable()) as usize,
    )
}

/// A spawned task as an executor receives it: run it to completion
/// (polling it like any future), or drop it to cancel it.
///
/// It is made by [`Runtime::spawn`](super::Runtime::spawn) and handed to
/// [`Spawn::spawn_task`](super::Spawn::spawn_task). It catches the
/// future's panics, honours aborts, and reports the outcome to the task's
/// [`JoinHandle`]; dropped before it ends, it reports a cancellation. It is
/// two words, `Unpin` and `Send`, so an executor can store it in its own
/// task without boxing it.
///
/// # Examples
///
/// An adapter that spawns tasks on a thread each:
///
/// ```
/// use machina_core::rt::{BlockingFn, BoxFuture, Spawn, SpawnError, Task};
///
/// #[derive(Debug)]
/// struct ThreadPerTask;
///
/// impl Spawn for ThreadPerTask {
///     fn spawn_detached(&self, task: BoxFuture) -> Result<(), SpawnError> {
///         std::thread::spawn(move || futures::executor::block_on(task));
///         Ok(())
///     }
///     fn spawn_task(&self, task: Task) -> Result<(), SpawnError> {
///         // The concrete future: no box.
///         std::thread::spawn(move || futures::executor::block_on(task));
///         Ok(())
///     }
///     fn spawn_blocking(&self, f: BlockingFn) -> Result<(), SpawnError> {
///         std::thread::spawn(f);
///         Ok(())
///     }
/// }
///
/// let rt = machina_core::rt::Runtime::new(
///     "threads",
///     std::sync::Arc::new(ThreadPerTask),
///     std::sync::Arc::new(machina_core::rt::SystemTimer::new()),
/// );
/// let answer = rt.spawn(async { 6 * 7 })?;
/// assert_eq!(futures::executor::block_on(answer)?, 42);
/// # Ok::<(), machina_core::BoxError>(())
/// ```
#[must_use = "a Task does nothing unless an executor polls it; dropping it cancels it"]
pub struct Task {
    run: Arc<dyn Run>,
}

impl Task {
    /// A task running `future`, and the handle to await it.
    pub(crate) fn new<F>(future: F) -> (Task, JoinHandle<F::Output>)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Self::from_shared(Arc::new(Shared::holding(Some(future))))
    }

    /// A task running the future `make` builds from the task's own abort
    /// handle (for a caller that records the handle before the task runs).
    /// The handle works from the start: an abort made while `make` runs is
    /// seen at the task's first poll.
    pub(crate) fn new_with<F, M>(make: M) -> (Task, JoinHandle<F::Output>)
    where
        M: FnOnce(AbortHandle) -> F,
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let shared = Arc::new(Shared::<F>::holding(None));
        let control: Arc<dyn TaskControl> = shared.clone();
        let future = make(AbortHandle::new(Arc::downgrade(&control)));
        drop(control);
        // SAFETY: the allocation's `Task` does not exist yet, and nothing
        // else reaches the stage: this is its only access.
        shared
            .stage
            .0
            .with_mut(|stage| unsafe { (*stage).future = Some(future) });
        Self::from_shared(shared)
    }

    fn from_shared<F>(shared: Arc<Shared<F>>) -> (Task, JoinHandle<F::Output>)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let joined: Arc<dyn Joinable<F::Output>> = shared.clone();
        (Task { run: shared }, JoinHandle::new(joined))
    }
}

impl Future for Task {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: `self` is the allocation's one `Task`, borrowed
        // exclusively for the call.
        unsafe { self.run.poll_run(cx) }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        // SAFETY: as in `poll`; a dropped `Task` is never polled again.
        unsafe { self.run.cancel_run() }
    }
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts its drops, and where it was when dropped.
    struct Tracked {
        drops: Arc<AtomicUsize>,
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn noop_cx() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    /// Whether awaiting `handle` reports a cancellation.
    fn ends_cancelled<T: std::fmt::Debug>(handle: JoinHandle<T>) -> bool {
        futures::executor::block_on(handle)
            .unwrap_err()
            .is_cancelled()
    }

    #[test]
    fn a_polled_task_reports_its_value_and_drops_its_future_before_the_end() {
        let drops = Arc::new(AtomicUsize::new(0));
        let tracked = Tracked {
            drops: drops.clone(),
        };
        let (mut task, mut handle) = Task::new(async move {
            let _kept = tracked;
            7
        });
        let mut cx = noop_cx();
        assert!(Pin::new(&mut handle).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut task).poll(&mut cx).is_ready());
        assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped when it ended");
        assert!(handle.is_finished());
        assert!(Pin::new(&mut task).poll(&mut cx).is_ready(), "stays ended");
        drop(task);
        match Pin::new(&mut handle).poll(&mut cx) {
            Poll::Ready(Ok(7)) => {}
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped once");
    }

    #[test]
    fn dropping_an_unfinished_task_cancels_it_and_drops_its_future_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let tracked = Tracked {
            drops: drops.clone(),
        };
        let (mut task, handle) = Task::new(async move {
            let _kept = tracked;
            std::future::pending::<()>().await;
        });
        assert!(Pin::new(&mut task).poll(&mut noop_cx()).is_pending());
        let abort = handle.abort_handle();
        assert!(!abort.is_finished());
        drop(task);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert!(abort.is_finished());
        assert!(ends_cancelled(handle));
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn an_abort_ends_the_task_at_its_next_poll_and_wakes_it() {
        let woken = Arc::new(AtomicUsize::new(0));
        struct Count(Arc<AtomicUsize>);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let waker = Waker::from(Arc::new(Count(woken.clone())));
        let mut cx = Context::from_waker(&waker);
        let (mut task, handle) = Task::new(std::future::pending::<u8>());
        assert!(Pin::new(&mut task).poll(&mut cx).is_pending());
        handle.abort();
        assert_eq!(woken.load(Ordering::SeqCst), 1, "the task is woken");
        assert!(Pin::new(&mut task).poll(&mut cx).is_ready());
        assert!(ends_cancelled(handle));
    }

    #[test]
    fn a_panic_is_reported_and_the_future_is_gone() {
        let (mut task, handle) = Task::new(async {
            panic!("boom");
        });
        assert!(Pin::new(&mut task).poll(&mut noop_cx()).is_ready());
        let error = futures::executor::block_on(handle).unwrap_err();
        assert_eq!(error.panic_payload().map(|p| p.message()), Some("boom"));
    }

    #[test]
    fn a_task_made_with_its_abort_handle_can_abort_itself_through_it() {
        let (mut task, handle) = Task::new_with(|abort: AbortHandle| async move {
            abort.abort();
            std::future::pending::<()>().await;
        });
        let mut cx = noop_cx();
        assert!(Pin::new(&mut task).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut task).poll(&mut cx).is_ready());
        assert!(ends_cancelled(handle));
    }

    #[test]
    fn an_abort_made_while_the_future_is_built_ends_the_task_at_its_first_poll() {
        let (mut task, handle) = Task::new_with(|abort: AbortHandle| {
            assert!(!abort.is_finished(), "the task exists for its handle");
            abort.abort();
            std::future::pending::<()>()
        });
        assert!(Pin::new(&mut task).poll(&mut noop_cx()).is_ready());
        assert!(ends_cancelled(handle));
    }

    #[test]
    fn an_abort_handle_outliving_everything_reports_finished() {
        let (task, handle) = Task::new(async {});
        let abort = handle.abort_handle();
        drop(handle);
        drop(task);
        assert!(abort.is_finished());
        abort.abort(); // a no-op, not a crash
    }

    #[test]
    fn a_task_is_two_words() {
        assert_eq!(
            std::mem::size_of::<Task>(),
            2 * std::mem::size_of::<usize>()
        );
    }
}

/// Model check (`RUSTFLAGS="--cfg loom" cargo test --release --lib
/// rt::task::loom_model`): a task polled on one thread and then finished
/// or dropped on another, while a third thread aborts it and the caller
/// joins it. loom's `UnsafeCell` fails the model if the stage is ever
/// accessed from two threads without ordering between them (adding an
/// access from `abort` makes it fail: "Concurrent write accesses to
/// `UnsafeCell`"); the test checks that the join resolves and that the
/// future is dropped exactly once. What it does not model: the join
/// state's own atomics, mutex and `AtomicWaker` are std's and the
/// futures crate's (safe code), so loom does not interleave or weaken
/// them.
#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use loom::thread;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Pending once (waking itself), then ready; counts its drops.
    struct YieldOnce {
        yielded: bool,
        drops: Arc<AtomicUsize>,
    }

    impl Future for YieldOnce {
        type Output = u32;

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
            if self.yielded {
                return Poll::Ready(1);
            }
            self.yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    impl Drop for YieldOnce {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn run(finish_on_second_thread: bool) {
        loom::model(move || {
            let drops = Arc::new(AtomicUsize::new(0));
            let future = YieldOnce {
                yielded: false,
                drops: drops.clone(),
            };
            let mut made = None;
            let (task, handle) = Task::new_with(|abort| {
                made = Some(abort);
                future
            });
            let abort = made.expect("the handle was made");
            let aborter = thread::spawn(move || abort.abort());
            let first = thread::spawn(move || {
                let mut task = task;
                let _ = Pin::new(&mut task).poll(&mut Context::from_waker(Waker::noop()));
                task
            });
            let mut task = first.join().expect("first poller");
            let second = thread::spawn(move || {
                if finish_on_second_thread {
                    let _ = Pin::new(&mut task).poll(&mut Context::from_waker(Waker::noop()));
                }
                drop(task);
            });
            // Joined by polling in a loop: loom explores the interleavings
            // of each poll with the other threads.
            let mut handle = handle;
            let outcome = loop {
                let mut cx = Context::from_waker(Waker::noop());
                if let Poll::Ready(outcome) = Pin::new(&mut handle).poll(&mut cx) {
                    break outcome;
                }
                thread::yield_now();
            };
            aborter.join().expect("aborter");
            second.join().expect("second poller");
            match outcome {
                Ok(1) | Err(JoinError::Cancelled) => {}
                other => panic!("unexpected outcome {other:?}"),
            }
            assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped exactly once");
        });
    }

    #[test]
    fn a_task_handed_between_threads_and_aborted_ends_once() {
        run(true);
    }

    #[test]
    fn a_task_dropped_on_another_thread_while_aborted_ends_once() {
        run(false);
    }
}
