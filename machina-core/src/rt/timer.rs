//! The timing half of the runtime boundary: the [`Timer`] trait an adapter
//! implements.
//!
//! Every reading of time in Machina goes through a `Timer`, so that the mock
//! runtime can substitute a virtual clock. Intervals, timeouts and policies
//! are built on top of it elsewhere.

use super::coarse::CoarseClock;
use super::fast::FastClock;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

/// What an executor's timer future must do: complete at its deadline, and
/// move to a new deadline on request (also after it has completed), so
/// that periodic work re-arms one timer instead of making a new one per
/// tick.
pub trait SleepFuture: Future<Output = ()> + Send + 'static {
    /// Moves the deadline; the next poll waits for the new one.
    fn reset(self: Pin<&mut Self>, deadline: Instant);
}

/// A timer future: completes once its deadline has been reached; dropping
/// it before then unregisters it; [`reset`](Sleep::reset) re-arms it.
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
///     let mut sleep = rt.sleep(Duration::from_secs(1));
///     (&mut sleep).await;
///     sleep.reset(rt.now() + Duration::from_secs(2));
///     sleep.await;
/// }).unwrap();
/// assert_eq!(mock.elapsed(), Duration::from_secs(3));
/// ```
pub struct Sleep {
    inner: Pin<Box<dyn SleepFuture>>,
}

impl Sleep {
    /// Wraps an executor's timer future.
    pub fn new(sleep: impl SleepFuture) -> Self {
        Sleep {
            inner: Box::pin(sleep),
        }
    }

    /// Moves the deadline (re-arming a sleep that has completed).
    pub fn reset(&mut self, deadline: Instant) {
        self.inner.as_mut().reset(deadline);
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep").finish_non_exhaustive()
    }
}

/// The clock of an executor, as the core sees it.
///
/// There is deliberately no default for [`now`](Timer::now): a timer that
/// forgot to implement it would silently mix wall-clock and virtual time.
///
/// # Examples
///
/// ```
/// use machina_core::rt::{SystemTimer, Timer};
/// use std::time::Duration;
///
/// let timer = SystemTimer::new();
/// let start = timer.now();
/// futures::executor::block_on(timer.sleep_until(start + Duration::from_millis(5)));
/// assert!(timer.now() >= start + Duration::from_millis(5));
/// ```
pub trait Timer: Send + Sync + 'static {
    /// The current monotonic instant.
    fn now(&self) -> Instant;

    /// A future that completes at (or, on a real clock, just after)
    /// `deadline`. A deadline in the past completes at once.
    fn sleep_until(&self, deadline: Instant) -> Sleep;

    /// Calendar time, for schedules such as cron. Virtual on the mock
    /// runtime, where it starts at a date the test chooses and moves with
    /// the virtual clock.
    fn calendar_now(&self) -> SystemTime;

    /// The clock read cheaply: an instant no later than
    /// [`now`](Timer::now) and at most
    /// [`coarse_resolution`](Timer::coarse_resolution) before it. Machina
    /// uses it only where a few milliseconds early is harmless (the bucket
    /// of a circuit breaker's window a success is counted in), and only
    /// when the resolution is small beside what it measures. The default
    /// is `now()` itself, with a resolution of zero (the mock runtime's
    /// choice: it stays exact); adapters on a real clock return a
    /// [`CoarseClock`](super::CoarseClock) reading.
    fn coarse_now(&self) -> Instant {
        match self.coarse_nanos() {
            Some(nanos) => CoarseClock::global().anchor() + Duration::from_nanos(nanos),
            None => self.now(),
        }
    }

    /// The coarse clock as a plain number: nanoseconds since
    /// [`CoarseClock::global`]'s anchor — or `None` when this timer's clock
    /// is not the real one (the mock runtime's, a paused tokio clock), and
    /// callers must read [`now`](Timer::now). The default is `None`;
    /// adapters on the real clock return
    /// `Some(CoarseClock::global().elapsed_nanos())`. Cheaper than
    /// [`coarse_now`](Timer::coarse_now) where a caller counts in
    /// nanoseconds anyway (no `Instant` arithmetic).
    fn coarse_nanos(&self) -> Option<u64> {
        None
    }

    /// The process's coarse clock, where this timer's coarse time is that
    /// clock for good (its clock can never be paused or made virtual):
    /// then [`coarse_nanos`](Timer::coarse_nanos) is always
    /// `Some(clock.elapsed_nanos())`, and a hot path may keep the
    /// reference and read the clock without a call through the timer.
    ///
    /// A timer answers `Some` always or never. The default is `None` (the
    /// mock runtime's answer, and a tokio runtime's whose clock may be
    /// paused); the adapters on the real clock return
    /// `Some(CoarseClock::global())`.
    fn coarse_clock(&self) -> Option<&'static CoarseClock> {
        None
    }

    /// The fast counter the precise clock may be read on as a plain
    /// number, for hot paths that count in nanoseconds anyway (a token
    /// bucket): the process's [`FastClock`] (the CPU's time stamp counter
    /// where it is invariant; a few nanoseconds where `now()` may cost
    /// tens), or `None` when this timer's clock is not the real one for
    /// good (the mock runtime's, a tokio clock that may be paused) and
    /// callers must read [`now`](Timer::now).
    ///
    /// A timer answers `Some` always or never; a hot path keeps the
    /// reference and reads the counter without a call through the timer.
    /// Only the difference of two readings is used: it is the time between
    /// them to within a fraction of a microsecond, and becomes an instant
    /// only added to a fresh [`now`](Timer::now) (see [`FastClock`]). The
    /// default is `None`; adapters on the real clock return
    /// `Some(FastClock::global())`.
    fn fast_clock(&self) -> Option<&'static FastClock> {
        None
    }

    /// How far [`coarse_now`](Timer::coarse_now) may lag behind
    /// [`now`](Timer::now): the global coarse clock's resolution while
    /// [`coarse_nanos`](Timer::coarse_nanos) reads it, zero otherwise.
    fn coarse_resolution(&self) -> Duration {
        if self.coarse_nanos().is_some() {
            CoarseClock::global().resolution()
        } else {
            Duration::ZERO
        }
    }

    /// How late a timer may fire and still count as on time.
    ///
    /// [`Interval`](super::Interval) uses it to tell a delivery delay of the
    /// executor from a genuinely missed tick. Real executors deliver timers
    /// some hundreds of microseconds late; the default is 5 ms. The mock
    /// runtime is exact and returns zero.
    fn lateness_tolerance(&self) -> Duration {
        Duration::from_millis(5)
    }
}

/// `instant + duration`, or a far-future instant (about 30 years on) where
/// the sum would overflow. Used for "sleep forever"-like deadlines.
pub(crate) fn instant_after(instant: Instant, duration: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(60 * 60 * 24 * 365 * 30);
    instant
        .checked_add(duration)
        .or_else(|| instant.checked_add(FAR))
        .unwrap_or(instant)
}
