//! The wall-clock timers: the fallback [`SystemTimer`], for executors that
//! bring none of their own, and (feature `io`) [`IoTimer`] on async-io's
//! reactor, shared by the smol and async-std adapters. This is the one
//! place in the core that reads the real clock.

use std::time::{Instant, SystemTime};

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::coarse::CoarseClock;
use super::fast::FastClock;
use super::timer::{Sleep, SleepFuture, Timer};

/// A `futures-timer` delay as a [`SleepFuture`].
struct SystemSleep(futures_timer::Delay);

impl Future for SystemSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl SleepFuture for SystemSleep {
    fn reset(mut self: Pin<&mut Self>, deadline: Instant) {
        let wait = deadline.saturating_duration_since(Instant::now());
        self.0.reset(wait);
    }
}

/// A [`Timer`] on the real clock, with sleeps from `futures-timer` (a
/// helper thread drives them). Adapters with a timer of their own use it
/// instead; this one serves executors that have none.
///
/// # Examples
///
/// ```
/// use machina_core::rt::{SystemTimer, Timer};
/// use std::time::Duration;
///
/// let timer = SystemTimer::new();
/// let before = timer.now();
/// futures::executor::block_on(timer.sleep_until(before + Duration::from_millis(2)));
/// assert!(timer.now() - before >= Duration::from_millis(2));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemTimer {
    _private: (),
}

impl SystemTimer {
    /// A timer on the real clock.
    pub fn new() -> Self {
        SystemTimer { _private: () }
    }
}

impl Timer for SystemTimer {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn coarse_nanos(&self) -> Option<u64> {
        Some(CoarseClock::global().elapsed_nanos())
    }

    fn coarse_clock(&self) -> Option<&'static CoarseClock> {
        Some(CoarseClock::global())
    }

    fn fast_clock(&self) -> Option<&'static FastClock> {
        Some(FastClock::global())
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        let wait = deadline.saturating_duration_since(Instant::now());
        Sleep::new(SystemSleep(futures_timer::Delay::new(wait)))
    }

    fn calendar_now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// An [`async_io::Timer`] as a [`SleepFuture`]: re-armed in place.
#[cfg(feature = "io")]
struct IoSleep(async_io::Timer);

#[cfg(feature = "io")]
impl Future for IoSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

#[cfg(feature = "io")]
impl SleepFuture for IoSleep {
    fn reset(mut self: Pin<&mut Self>, deadline: Instant) {
        self.0.set_at(deadline);
    }
}

/// A [`Timer`] on async-io's reactor (what smol and async-std use): the
/// real clock, with sleeps that are async-io timers at absolute deadlines.
/// The adapter kit for executors on async-io (feature `io`).
///
/// # Examples
///
/// ```
/// use machina_core::rt::{IoTimer, Timer};
/// use std::time::Duration;
///
/// let timer = IoTimer::new();
/// let start = timer.now();
/// futures::executor::block_on(timer.sleep_until(start + Duration::from_millis(5)));
/// assert!(timer.now() - start >= Duration::from_millis(5));
/// ```
#[cfg(feature = "io")]
#[derive(Debug, Clone, Copy, Default)]
pub struct IoTimer {
    _private: (),
}

#[cfg(feature = "io")]
impl IoTimer {
    /// A timer on async-io's reactor.
    pub fn new() -> Self {
        IoTimer { _private: () }
    }
}

#[cfg(feature = "io")]
impl Timer for IoTimer {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn coarse_nanos(&self) -> Option<u64> {
        Some(CoarseClock::global().elapsed_nanos())
    }

    fn coarse_clock(&self) -> Option<&'static CoarseClock> {
        Some(CoarseClock::global())
    }

    fn fast_clock(&self) -> Option<&'static FastClock> {
        Some(FastClock::global())
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep::new(IoSleep(async_io::Timer::at(deadline)))
    }

    fn calendar_now(&self) -> SystemTime {
        SystemTime::now()
    }
}
