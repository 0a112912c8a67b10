//! [`Runtime`]: the cheap, cloneable handle through which all Machina code
//! spawns tasks, reads the clock, sleeps and draws random numbers.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::interval::{Interval, IntervalError, MissedTick};
use super::join::{AbortHandle, BlockingCell, JoinHandle, JoinState};
use super::rng::RuntimeRng;
use super::sockets::{NoSockets, Sockets};
use super::spawn::{Spawn, SpawnError};
use super::task::Task;
use super::timeout::Timeout;
use super::timer::{Sleep, Timer, instant_after};

/// A handle to an executor and its clock.
///
/// Every adapter crate (`machina-tokio`, `machina-smol`,
/// `machina-async-std`) and the mock runtime hands out a `Runtime`; code
/// written against it runs unchanged on each. Cloning is one reference
/// count.
///
/// # Examples
///
/// ```
/// use machina_core::testing::MockRuntime;
/// use std::time::Duration;
///
/// let mock = MockRuntime::new();
/// let rt = mock.runtime();
/// let waited = mock.block_on({
///     let rt = rt.clone();
///     async move {
///         let start = rt.now();
///         rt.sleep(Duration::from_secs(3600)).await; // virtual: instant
///         rt.now() - start
///     }
/// }).unwrap();
/// assert_eq!(waited, Duration::from_secs(3600));
/// ```
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    spawner: Arc<dyn Spawn>,
    timer: Arc<dyn Timer>,
    rng: RuntimeRng,
    label: Cow<'static, str>,
    sockets: Option<Arc<dyn Sockets>>,
}

impl Runtime {
    /// A runtime over `spawner` and `timer`, with a random generator seeded
    /// from OS entropy. `label` names the executor in logs and `Debug`.
    pub fn new(
        label: impl Into<Cow<'static, str>>,
        spawner: Arc<dyn Spawn>,
        timer: Arc<dyn Timer>,
    ) -> Self {
        Runtime::with_rng(label, spawner, timer, RuntimeRng::from_entropy())
    }

    /// A runtime with the given random generator.
    pub fn with_rng(
        label: impl Into<Cow<'static, str>>,
        spawner: Arc<dyn Spawn>,
        timer: Arc<dyn Timer>,
        rng: RuntimeRng,
    ) -> Self {
        Runtime {
            inner: Arc::new(Inner {
                spawner,
                timer,
                rng,
                label: label.into(),
                sockets: None,
            }),
        }
    }

    /// The same executor and clock, with a random generator fixed by `seed`.
    pub fn with_rng_seed(&self, seed: u64) -> Self {
        Runtime {
            inner: Arc::new(Inner {
                spawner: self.inner.spawner.clone(),
                timer: self.inner.timer.clone(),
                rng: RuntimeRng::from_seed(seed),
                label: self.inner.label.clone(),
                sockets: self.inner.sockets.clone(),
            }),
        }
    }

    /// The same executor, clock and random generator, making sockets with
    /// `sockets` (what an adapter's `runtime()` does; see [`Sockets`]).
    pub fn with_sockets(&self, sockets: Arc<dyn Sockets>) -> Self {
        Runtime {
            inner: Arc::new(Inner {
                spawner: self.inner.spawner.clone(),
                timer: self.inner.timer.clone(),
                rng: self.inner.rng.clone(),
                label: self.inner.label.clone(),
                sockets: Some(sockets),
            }),
        }
    }

    /// The sockets of this runtime's executor, for the network services
    /// in [`crate::net`].
    ///
    /// # Errors
    /// [`NoSockets`] on a runtime without them (the mock runtime).
    pub fn sockets(&self) -> Result<&Arc<dyn Sockets>, NoSockets> {
        self.inner.sockets.as_ref().ok_or_else(|| NoSockets {
            runtime: self.inner.label.to_string(),
        })
    }

    /// The executor's name, such as `"tokio"` or `"mock"`.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The spawner behind this runtime.
    pub fn spawner(&self) -> &Arc<dyn Spawn> {
        &self.inner.spawner
    }

    /// The timer behind this runtime.
    pub fn timer(&self) -> &Arc<dyn Timer> {
        &self.inner.timer
    }

    /// The runtime's random generator; see [`RuntimeRng`].
    ///
    /// # Examples
    ///
    /// Jitter drawn here replays exactly from a seed; the mock runtime's
    /// generator is seeded (with 0 unless chosen), and
    /// [`with_rng_seed`](Self::with_rng_seed) fixes any runtime's:
    ///
    /// ```
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let rt = MockRuntime::new().runtime();
    /// let jitter = |seed| {
    ///     let rt = rt.with_rng_seed(seed);
    ///     (0..3).map(|_| rt.rng().duration_between(Duration::ZERO, Duration::from_secs(1))).collect::<Vec<_>>()
    /// };
    /// assert_eq!(jitter(7), jitter(7));
    /// assert_ne!(jitter(7), jitter(8));
    /// assert!(rt.rng().below(6) < 6);
    /// ```
    pub fn rng(&self) -> &RuntimeRng {
        &self.inner.rng
    }

    /// Spawns `future` as a task; see [`JoinHandle`] for what awaiting,
    /// aborting and dropping the handle do.
    ///
    /// # Errors
    /// [`SpawnError`] when the executor is gone or refuses the task.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// mock.block_on(async {
    ///     let sum = rt.spawn(async { 2 + 2 })?;
    ///     assert_eq!(sum.await?, 4);
    ///
    ///     // A panic ends the task, not the executor: its handle reports it.
    ///     let bug = rt.spawn(async { Vec::<u32>::new()[0] })?;
    ///     assert!(bug.await.unwrap_err().is_panic());
    ///
    ///     let sleeper = rt.spawn({
    ///         let rt = rt.clone();
    ///         async move { rt.sleep(Duration::from_secs(60)).await }
    ///     })?;
    ///     sleeper.abort();
    ///     assert!(sleeper.await.unwrap_err().is_cancelled());
    ///     Ok::<(), machina_core::BoxError>(())
    /// })??;
    /// assert_eq!(mock.elapsed(), Duration::ZERO, "the aborted sleep was never waited for");
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub fn spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (task, handle) = Task::new(future);
        self.inner.spawner.spawn_task(task)?;
        Ok(handle)
    }

    /// Spawns `future` under a name shown in logs and deadlock reports.
    ///
    /// # Errors
    /// [`SpawnError`] when the executor is gone or refuses the task.
    pub fn spawn_named<F>(&self, name: &str, future: F) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (task, handle) = Task::new(future);
        self.inner.spawner.spawn_task_named(name, task)?;
        Ok(handle)
    }

    /// Whether `self` and `other` spawn onto the same executor (one made
    /// from the other, say by [`with_rng_seed`](Self::with_rng_seed)).
    pub(crate) fn shares_spawner(&self, other: &Runtime) -> bool {
        Arc::ptr_eq(&self.inner.spawner, &other.inner.spawner)
    }

    /// [`spawn_named`](Self::spawn_named) of the future `make` builds from
    /// the task's own abort handle (so that the handle can be recorded
    /// before the task runs).
    pub(crate) fn spawn_named_with<F, M>(
        &self,
        name: &str,
        make: M,
    ) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        M: FnOnce(AbortHandle) -> F,
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (task, handle) = Task::new_with(make);
        self.inner.spawner.spawn_task_named(name, task)?;
        Ok(handle)
    }

    /// Runs blocking work off the async threads (on the mock runtime: as a
    /// task of its own, so that it stays deterministic). A panic in `work`
    /// becomes [`JoinError::Panicked`](super::JoinError::Panicked).
    ///
    /// # Errors
    /// [`SpawnError`] when the executor is gone or refuses the work.
    pub fn spawn_blocking<F, T>(&self, work: F) -> Result<JoinHandle<T>, SpawnError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let state = JoinState::new();
        let cell = BlockingCell::new(work, state.clone());
        self.inner
            .spawner
            .spawn_blocking(Box::new(move || cell.run()))?;
        Ok(JoinHandle::new(state))
    }

    /// The current instant on this runtime's clock.
    ///
    /// # Examples
    ///
    /// All Machina code reads time here, never from `Instant::now()`, so on
    /// the mock runtime time stands still until something sleeps:
    ///
    /// ```
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// let start = rt.now();
    /// std::thread::sleep(Duration::from_millis(5)); // real time: not this clock
    /// assert_eq!(rt.now(), start);
    /// mock.advance(Duration::from_millis(250))?;
    /// assert_eq!(rt.now() - start, Duration::from_millis(250));
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub fn now(&self) -> Instant {
        self.inner.timer.now()
    }

    /// The clock read cheaply: no later than [`now`](Self::now) and at most
    /// [`coarse_resolution`](Self::coarse_resolution) behind it (see
    /// [`Timer::coarse_now`]). Exact on the mock runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let rt = MockRuntime::new().runtime();
    /// assert_eq!(rt.coarse_now(), rt.now());
    /// assert_eq!(rt.coarse_resolution(), Duration::ZERO);
    /// ```
    #[inline]
    pub fn coarse_now(&self) -> Instant {
        self.inner.timer.coarse_now()
    }

    /// The coarse clock in nanoseconds since
    /// [`CoarseClock::global`](super::CoarseClock::global)'s anchor, or
    /// `None` when this runtime's clock is not the real one (see
    /// [`Timer::coarse_nanos`]). `None` on the mock runtime.
    #[inline]
    pub fn coarse_nanos(&self) -> Option<u64> {
        self.inner.timer.coarse_nanos()
    }

    /// The process's coarse clock where this runtime's coarse time is it
    /// for good (see [`Timer::coarse_clock`]); `None` on the mock runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::rt::{CoarseClock, SystemTimer, Timer};
    /// use machina_core::testing::MockRuntime;
    ///
    /// // Virtual time has no coarse clock of the process behind it.
    /// assert!(MockRuntime::new().runtime().coarse_clock().is_none());
    /// // The real clock does, and reading it is reading the timer.
    /// let clock = SystemTimer::new().coarse_clock().expect("a real clock");
    /// assert!(std::ptr::eq(clock, CoarseClock::global()));
    /// ```
    #[inline]
    pub fn coarse_clock(&self) -> Option<&'static super::CoarseClock> {
        self.inner.timer.coarse_clock()
    }

    /// The fast counter this runtime's precise clock may be read on as a
    /// number (see [`Timer::fast_clock`]: only differences of readings
    /// mean anything), or `None` when its clock is not the real one for
    /// good. `None` on the mock runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::rt::{FastClock, SystemTimer, Timer};
    /// use machina_core::testing::MockRuntime;
    ///
    /// // Virtual time is read as instants only.
    /// assert!(MockRuntime::new().runtime().fast_clock().is_none());
    /// // A timer on the real clock reads the process's fast counter.
    /// let clock = SystemTimer::new().fast_clock().expect("a real clock");
    /// assert!(std::ptr::eq(clock, FastClock::global()));
    /// let before = clock.nanos();
    /// assert!(FastClock::global().nanos() >= before);
    /// ```
    #[inline]
    pub fn fast_clock(&self) -> Option<&'static super::FastClock> {
        self.inner.timer.fast_clock()
    }

    /// [`fast_clock`](Self::fast_clock) read now: nanoseconds on the fast
    /// counter, or `None` when the runtime has none.
    #[inline]
    pub fn now_nanos(&self) -> Option<u64> {
        self.fast_clock().map(super::FastClock::nanos)
    }

    /// How far [`coarse_now`](Self::coarse_now) may lag behind
    /// [`now`](Self::now).
    pub fn coarse_resolution(&self) -> Duration {
        self.inner.timer.coarse_resolution()
    }

    /// Calendar time on this runtime's clock (virtual on the mock runtime).
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::testing::MockRuntime;
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// // The mock runtime's calendar starts at 2026-01-01T00:00:00Z by default.
    /// let new_year = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    /// assert_eq!(rt.calendar_now(), new_year);
    /// mock.advance(Duration::from_secs(86_400))?;
    /// assert_eq!(rt.calendar_now(), new_year + Duration::from_secs(86_400));
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub fn calendar_now(&self) -> SystemTime {
        self.inner.timer.calendar_now()
    }

    /// How late a timer may fire and still count as on time; see
    /// [`Timer::lateness_tolerance`].
    pub fn lateness_tolerance(&self) -> Duration {
        self.inner.timer.lateness_tolerance()
    }

    /// Completes after `duration`. A huge duration sleeps "forever" (about
    /// 30 years) rather than overflowing.
    ///
    /// # Examples
    ///
    /// Sleeps awaited together overlap: two of 1 s and 3 s take 3 s.
    ///
    /// ```
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// mock.block_on(async {
    ///     futures::join!(rt.sleep(Duration::from_secs(1)), rt.sleep(Duration::from_secs(3)));
    /// })?;
    /// assert_eq!(mock.elapsed(), Duration::from_secs(3));
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub fn sleep(&self, duration: Duration) -> Sleep {
        self.sleep_until(instant_after(self.now(), duration))
    }

    /// Completes at `deadline`; at once if it has passed.
    ///
    /// # Examples
    ///
    /// Waiting for absolute deadlines keeps a schedule on its grid, however
    /// long the work between them takes:
    ///
    /// ```
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let ms = Duration::from_millis;
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// let starts = mock.block_on(async {
    ///     let t0 = rt.now();
    ///     let mut starts = Vec::new();
    ///     for (k, work) in [(1, 300), (2, 1200), (3, 100)] {
    ///         rt.sleep(ms(work)).await;
    ///         // Due at k seconds; one already past completes at once.
    ///         rt.sleep_until(t0 + ms(1000 * k)).await;
    ///         starts.push((rt.now() - t0).as_millis());
    ///     }
    ///     starts
    /// })?;
    /// assert_eq!(starts, [1000, 2200, 3000]);
    /// # Ok::<(), machina_core::BoxError>(())
    /// ```
    pub fn sleep_until(&self, deadline: Instant) -> Sleep {
        self.inner.timer.sleep_until(deadline)
    }

    /// Runs `future` for at most `limit`; see [`Timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// let outcome = mock.block_on({
    ///     let rt = rt.clone();
    ///     async move { rt.timeout(Duration::from_secs(1), rt.sleep(Duration::from_secs(2))).await }
    /// }).unwrap();
    /// assert_eq!(outcome.unwrap_err().limit(), Duration::from_secs(1));
    /// ```
    pub fn timeout<F: Future>(&self, limit: Duration, future: F) -> Timeout<F> {
        Timeout::new(future, self.sleep(limit), limit)
    }

    /// Runs `future` until `deadline` at most; see [`Timeout`].
    pub fn timeout_at<F: Future>(&self, deadline: Instant, future: F) -> Timeout<F> {
        let limit = deadline.saturating_duration_since(self.now());
        Timeout::new(future, self.sleep_until(deadline), limit)
    }

    /// Ticks every `period`, the first tick at once; see [`Interval`].
    ///
    /// # Errors
    /// [`IntervalError::ZeroPeriod`] for a zero period.
    ///
    /// # Examples
    ///
    /// What each [`MissedTick`] policy does after a body that ran 2.5 s on
    /// a one-second interval:
    ///
    /// ```
    /// use machina_core::rt::MissedTick;
    /// use machina_core::testing::MockRuntime;
    /// use std::time::Duration;
    ///
    /// /// When the three ticks after the slow body came, in ms.
    /// fn after_slow_body(missed: MissedTick) -> Vec<u128> {
    ///     let mock = MockRuntime::new();
    ///     let rt = mock.runtime();
    ///     mock.block_on(async {
    ///         let t0 = rt.now();
    ///         let mut ticks = rt.interval(Duration::from_secs(1), missed).unwrap();
    ///         ticks.tick().await; // at once
    ///         rt.sleep(Duration::from_millis(2500)).await;
    ///         let mut at = Vec::new();
    ///         for _ in 0..3 {
    ///             ticks.tick().await;
    ///             at.push((rt.now() - t0).as_millis());
    ///         }
    ///         at
    ///     })
    ///     .unwrap()
    /// }
    /// assert_eq!(after_slow_body(MissedTick::Burst), [2500, 2500, 3000]); // catch up
    /// assert_eq!(after_slow_body(MissedTick::Skip), [2500, 3000, 4000]); // keep the grid
    /// assert_eq!(after_slow_body(MissedTick::Delay), [2500, 3500, 4500]); // move the grid
    /// assert!(MockRuntime::new().runtime().interval(Duration::ZERO, MissedTick::Skip).is_err());
    /// ```
    pub fn interval(
        &self,
        period: Duration,
        missed: MissedTick,
    ) -> Result<Interval, IntervalError> {
        Interval::new(self.clone(), self.now(), period, missed)
    }

    /// Ticks every `period`, the first tick at `start`; see [`Interval`].
    ///
    /// # Errors
    /// [`IntervalError::ZeroPeriod`] for a zero period.
    pub fn interval_at(
        &self,
        start: Instant,
        period: Duration,
        missed: MissedTick,
    ) -> Result<Interval, IntervalError> {
        Interval::new(self.clone(), start, period, missed)
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("label", &self.inner.label)
            .field("sockets", &self.inner.sockets.is_some())
            .finish_non_exhaustive()
    }
}
