//! The fallback wall-clock timer, for executors that bring none of their
//! own. This is the one place in the core that reads the real clock.

use std::time::{Instant, SystemTime};

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

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

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        let wait = deadline.saturating_duration_since(Instant::now());
        Sleep::new(SystemSleep(futures_timer::Delay::new(wait)))
    }

    fn system_now(&self) -> SystemTime {
        SystemTime::now()
    }
}
