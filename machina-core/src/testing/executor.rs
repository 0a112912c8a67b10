//! [`MockRuntime`]: the deterministic single-threaded executor and the
//! rules by which its virtual clock advances.
//!
//! The loop, in order: poll the main future if it was woken; run every
//! ready task (one batch, FIFO, or shuffled by the seed); when nothing is
//! ready, jump the clock to the earliest pending timer and wake every timer
//! due then, in registration order. Nothing ready and no timer while the
//! main future waits is a deadlock, reported with the live tasks' names.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use futures::task::waker_ref;
use std::time::{Duration, Instant, SystemTime};

use super::clock::{TimerQueue, VirtualClock};
use super::error::MockError;
use super::sleep::MockTimer;
use super::task::{LOCAL, LocalQueue, MockSpawner, Task};
use crate::rt::{Runtime, RuntimeRng};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// State shared by the executor, its tasks' wakers, its spawner and its
/// sleeps.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) clock: VirtualClock,
    running: AtomicBool,
    /// Numbers every entry into a ready queue, so that the shared queue and
    /// the thread-local one merge back into one first-come first-served
    /// order.
    pub(crate) ready_seq: AtomicU64,
}

impl Shared {
    /// This executor's identity on the thread-local ready queue.
    pub(crate) fn id(self: &Arc<Self>) -> usize {
        Arc::as_ptr(self) as usize
    }
}

pub(crate) struct State {
    pub(crate) ready: VecDeque<Queued>,
    pub(crate) timers: TimerQueue,
    pub(crate) live: HashMap<u64, Arc<Task>>,
    pub(crate) next_task_id: u64,
    pub(crate) closed: bool,
}

/// The default calendar start of the virtual clock: 2026-01-01T00:00:00Z.
const DEFAULT_START: Duration = Duration::from_secs(1_767_225_600);

/// Configures a [`MockRuntime`].
#[derive(Debug, Clone, Default)]
pub struct MockRuntimeBuilder {
    seed: Option<u64>,
    time_limit: Option<Duration>,
    start: Option<SystemTime>,
}

impl MockRuntimeBuilder {
    /// Shuffles the order of ready tasks reproducibly (to find order bugs)
    /// and seeds the runtime's random generator with `seed`.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Stops with [`MockError::TimeLimit`] instead of advancing virtual time
    /// past `limit` (measured from the runtime's creation).
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = Some(limit);
        self
    }

    /// The calendar time the virtual clock starts at (for cron-like
    /// schedules); 2026-01-01T00:00:00Z by default.
    pub fn start_time(mut self, start: SystemTime) -> Self {
        self.start = Some(start);
        self
    }

    /// Builds the runtime.
    pub fn build(self) -> MockRuntime {
        let start = self.start.unwrap_or(SystemTime::UNIX_EPOCH + DEFAULT_START);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                ready: VecDeque::new(),
                timers: TimerQueue::default(),
                live: HashMap::new(),
                next_task_id: 0,
                closed: false,
            }),
            clock: VirtualClock::new(start),
            running: AtomicBool::new(false),
            ready_seq: AtomicU64::new(0),
        });
        let spawner = Arc::new(MockSpawner {
            shared: shared.clone(),
        });
        let timer = Arc::new(MockTimer {
            shared: shared.clone(),
        });
        // Deterministic even without a seed: the generator starts from 0.
        let rng = RuntimeRng::from_seed(self.seed.unwrap_or(0));
        MockRuntime {
            runtime: Runtime::with_rng("mock", spawner, timer, rng),
            shuffle: self
                .seed
                .map(|seed| RuntimeRng::from_seed(seed ^ 0x5eed_5eed_5eed_5eed)),
            seed: self.seed,
            time_limit: self.time_limit,
            shared,
        }
    }
}

/// A deterministic, single-threaded executor with a virtual clock.
///
/// - Ready tasks run in FIFO order (or a seeded shuffle of it).
/// - Timers are ordered by (deadline, registration order). Only when no
///   task is ready does the clock jump, exactly to the earliest deadline.
/// - A dropped sleep unregisters its timer.
/// - Nothing ready and nothing pending while the main future waits is a
///   [`MockError::Deadlock`], never a hang; a runaway loop meets the
///   optional [`time_limit`](MockRuntimeBuilder::time_limit).
///
/// All progress must come from this runtime's own tasks and timers: a task
/// waiting on a real thread would be reported as deadlocked.
/// [`spawn_blocking`](Runtime::spawn_blocking) work therefore runs inline,
/// as a task.
///
/// Dropping the `MockRuntime` drops every task it still holds; their join
/// handles report [`JoinError::Cancelled`](crate::rt::JoinError::Cancelled)
/// and later spawns fail with
/// [`SpawnError::Shutdown`](crate::rt::SpawnError::Shutdown).
///
/// # Examples
///
/// ```
/// use machina_core::testing::MockRuntime;
/// use std::time::Duration;
///
/// let mock = MockRuntime::new();
/// let rt = mock.runtime();
/// let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
/// for (name, secs) in [("slow", 3), ("fast", 1)] {
///     let (rt2, log) = (rt.clone(), log.clone());
///     rt.spawn(async move {
///         rt2.sleep(Duration::from_secs(secs)).await;
///         log.lock().unwrap().push(name);
///     }).unwrap().detach();
/// }
/// mock.advance(Duration::from_secs(2)).unwrap();
/// assert_eq!(*log.lock().unwrap(), ["fast"]);
/// mock.advance(Duration::from_secs(1)).unwrap();
/// assert_eq!(*log.lock().unwrap(), ["fast", "slow"]);
/// ```
pub struct MockRuntime {
    shared: Arc<Shared>,
    runtime: Runtime,
    shuffle: Option<RuntimeRng>,
    seed: Option<u64>,
    time_limit: Option<Duration>,
}

/// A ready queue entry: its place in line, and the task.
pub(crate) type Queued = (u64, Arc<Task>);

/// Buffers for one round of ready tasks, reused across rounds.
#[derive(Default)]
struct Batch {
    /// Taken from the shared queue (spawns and wakes from other threads).
    shared: VecDeque<Queued>,
    /// Taken from this thread's queue.
    local: Vec<Queued>,
    /// Both, merged back into first-come first-served order.
    tasks: Vec<Arc<Task>>,
}

impl Batch {
    /// Merges the two queues (each already in order) by place in line.
    fn merge(&mut self) {
        let mut local = self.local.drain(..).peekable();
        while let Some((seq, _)) = self.shared.front() {
            while let Some((_, task)) = local.next_if(|(l, _)| l < seq) {
                self.tasks.push(task);
            }
            if let Some((_, task)) = self.shared.pop_front() {
                self.tasks.push(task);
            }
        }
        self.tasks.extend(local.map(|(_, task)| task));
    }
}

/// What happened when the executor looked for the next timer.
enum NextTimer {
    Fired,
    NoneBefore,
    Empty,
}

/// Marks the runtime as running on this thread for the duration of a call:
/// claims the thread-local ready queue, and on the way out hands whatever
/// is left in it back to the shared queue and restores the previous owner.
struct RunningGuard<'a> {
    shared: &'a Arc<Shared>,
    previous: Option<LocalQueue>,
}

impl<'a> RunningGuard<'a> {
    fn enter(shared: &'a Arc<Shared>) -> Result<Self, MockError> {
        if shared.running.swap(true, Ordering::AcqRel) {
            return Err(MockError::AlreadyRunning);
        }
        let mine = LocalQueue {
            owner: shared.id(),
            tasks: Vec::new(),
        };
        let previous = LOCAL.with(|local| std::mem::replace(&mut *local.borrow_mut(), mine));
        Ok(RunningGuard {
            shared,
            previous: Some(previous),
        })
    }
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        let previous = self.previous.take().unwrap_or(LocalQueue {
            owner: 0,
            tasks: Vec::new(),
        });
        let mine = LOCAL.with(|local| std::mem::replace(&mut *local.borrow_mut(), previous));
        if !mine.tasks.is_empty() {
            let mut state = lock(&self.shared.state);
            if !state.closed {
                state.ready.extend(mine.tasks);
                state
                    .ready
                    .make_contiguous()
                    .sort_unstable_by_key(|(seq, _)| *seq);
            }
        }
        self.shared.running.store(false, Ordering::Release);
    }
}

/// The main future's waker: a flag the loop checks between batches.
struct MainWaker {
    woken: AtomicBool,
}

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        self.woken.store(true, Ordering::Release);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
    }
}

impl Default for MockRuntime {
    fn default() -> Self {
        MockRuntime::new()
    }
}

impl MockRuntime {
    /// A runtime with FIFO scheduling, no time limit and its random
    /// generator seeded with 0.
    pub fn new() -> Self {
        MockRuntimeBuilder::default().build()
    }

    /// A runtime whose ready order is shuffled, and whose random generator
    /// is seeded, by `seed`.
    pub fn with_seed(seed: u64) -> Self {
        MockRuntimeBuilder::default().seed(seed).build()
    }

    /// Configures a runtime.
    pub fn builder() -> MockRuntimeBuilder {
        MockRuntimeBuilder::default()
    }

    /// The handle to pass to code under test.
    pub fn runtime(&self) -> Runtime {
        self.runtime.clone()
    }

    /// The seed given at construction, if any.
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        self.shared.clock.now()
    }

    /// Virtual time since the runtime was made.
    pub fn elapsed(&self) -> Duration {
        self.shared.clock.elapsed()
    }

    /// The virtual calendar time.
    pub fn calendar_now(&self) -> SystemTime {
        self.shared.clock.calendar_now()
    }

    /// How many timers are registered.
    pub fn pending_timers(&self) -> usize {
        lock(&self.shared.state).timers.len()
    }

    /// The tasks that have not finished, as `<name>#<id>` (unnamed ones
    /// as `task#<id>`), in spawn order.
    pub fn live_tasks(&self) -> Vec<String> {
        let state = lock(&self.shared.state);
        let mut tasks: Vec<_> = state.live.values().map(|t| (t.id, t.label())).collect();
        drop(state);
        tasks.sort_unstable_by_key(|(id, _)| *id);
        tasks.into_iter().map(|(_, label)| label).collect()
    }

    fn enter(&self) -> Result<RunningGuard<'_>, MockError> {
        RunningGuard::enter(&self.shared)
    }

    /// Runs `future` to completion on this runtime, together with every
    /// spawned task, advancing virtual time whenever everything is idle.
    ///
    /// # Errors
    /// [`MockError::Deadlock`] when nothing can make progress,
    /// [`MockError::TimeLimit`] past the time limit,
    /// [`MockError::AlreadyRunning`] when called from inside the runtime.
    pub fn block_on<F: Future>(&self, future: F) -> Result<F::Output, MockError> {
        let _running = self.enter()?;
        let main = Arc::new(MainWaker {
            woken: AtomicBool::new(true),
        });
        let waker = Waker::from(main.clone());
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future);
        let mut batch = Batch::default();
        loop {
            if main.woken.swap(false, Ordering::AcqRel)
                && let Poll::Ready(value) = future.as_mut().poll(&mut cx)
            {
                return Ok(value);
            }
            if self.run_batch(&mut batch) > 0 || main.woken.load(Ordering::Acquire) {
                continue;
            }
            match self.fire_next_timers(None)? {
                NextTimer::Fired => {}
                NextTimer::NoneBefore | NextTimer::Empty => {
                    return Err(MockError::Deadlock {
                        at: self.elapsed(),
                        live_tasks: self.live_tasks(),
                    });
                }
            }
        }
    }

    /// Runs ready tasks until none is ready, without moving the clock.
    ///
    /// # Errors
    /// [`MockError::AlreadyRunning`] when called from inside the runtime.
    pub fn run_until_stalled(&self) -> Result<(), MockError> {
        let _running = self.enter()?;
        self.run_until_idle();
        Ok(())
    }

    /// Moves virtual time forward by `duration`, stopping at every timer
    /// deadline on the way and running tasks to quiescence at each.
    ///
    /// # Errors
    /// [`MockError::TimeLimit`] when the target lies past the time limit,
    /// [`MockError::AlreadyRunning`] when called from inside the runtime.
    pub fn advance(&self, duration: Duration) -> Result<(), MockError> {
        let _running = self.enter()?;
        let target = self
            .shared
            .clock
            .elapsed_nanos()
            .saturating_add(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
        self.check_time_limit(target)?;
        loop {
            self.run_until_idle();
            match self.fire_next_timers(Some(target))? {
                NextTimer::Fired => {}
                NextTimer::NoneBefore | NextTimer::Empty => break,
            }
        }
        self.shared.clock.advance_to(target);
        self.run_until_idle();
        Ok(())
    }

    /// Refuses to move virtual time to `nanos` past the time limit.
    fn check_time_limit(&self, nanos: u64) -> Result<(), MockError> {
        match self.time_limit {
            Some(limit) if u128::from(nanos) > limit.as_nanos() => Err(MockError::TimeLimit {
                limit,
                next: Duration::from_nanos(nanos),
            }),
            _ => Ok(()),
        }
    }

    fn run_until_idle(&self) {
        let mut batch = Batch::default();
        while self.run_batch(&mut batch) > 0 {}
    }

    /// Runs every task that is ready now; returns how many ran.
    fn run_batch(&self, batch: &mut Batch) -> usize {
        {
            let mut state = lock(&self.shared.state);
            std::mem::swap(&mut state.ready, &mut batch.shared);
        }
        LOCAL.with(|local| std::mem::swap(&mut local.borrow_mut().tasks, &mut batch.local));
        batch.merge();
        if let Some(rng) = &self.shuffle {
            let tasks = &mut batch.tasks;
            for i in (1..tasks.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                tasks.swap(i, j);
            }
        }
        let count = batch.tasks.len();
        for task in batch.tasks.drain(..) {
            self.poll_task(task);
        }
        count
    }

    fn poll_task(&self, task: Arc<Task>) {
        task.queued.store(false, Ordering::Release);
        let waker = waker_ref(&task);
        let mut cx = Context::from_waker(&waker);
        let mut slot = lock(&task.future);
        let Some(future) = slot.as_mut() else {
            return;
        };
        let finished = match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx))) {
            Ok(Poll::Pending) => false,
            Ok(Poll::Ready(())) => true,
            Err(_) => {
                // Only a raw `Spawn::spawn_detached` task can get here:
                // `Runtime::spawn` catches panics for its join handle.
                tracing::error!(task = %task.label(), "a detached task panicked and was dropped");
                true
            }
        };
        if finished {
            let future = slot.take();
            drop(slot);
            let removed = lock(&self.shared.state).live.remove(&task.id);
            drop(removed);
            drop(future);
        }
    }

    /// Jumps the clock to the earliest timer (if it is not after `until`)
    /// and wakes every timer due then.
    fn fire_next_timers(&self, until: Option<u64>) -> Result<NextTimer, MockError> {
        let mut due = Vec::new();
        {
            let mut state = lock(&self.shared.state);
            let Some(deadline) = state.timers.earliest() else {
                return Ok(NextTimer::Empty);
            };
            if until.is_some_and(|until| deadline > until) {
                return Ok(NextTimer::NoneBefore);
            }
            self.check_time_limit(deadline)?;
            self.shared.clock.advance_to(deadline);
            state.timers.take_due(deadline, &mut due);
        }
        for waker in due {
            waker.wake();
        }
        Ok(NextTimer::Fired)
    }
}

impl Drop for MockRuntime {
    fn drop(&mut self) {
        let (live, ready, timers) = {
            let mut state = lock(&self.shared.state);
            state.closed = true;
            (
                std::mem::take(&mut state.live),
                std::mem::take(&mut state.ready),
                state.timers.take_all(),
            )
        };
        drop(ready);
        drop(timers);
        // Futures are dropped outside every lock: their destructors may
        // wake, unregister timers or try to spawn.
        for task in live.into_values() {
            let future = lock(&task.future).take();
            drop(future);
        }
    }
}

impl std::fmt::Debug for MockRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockRuntime")
            .field("elapsed", &self.elapsed())
            .field("seed", &self.seed)
            .field("time_limit", &self.time_limit)
            .finish_non_exhaustive()
    }
}
