//! [`FastClock`]: the process's fast precise counter, behind
//! [`Timer::now_nanos`](super::Timer::now_nanos) on the real clock.
//!
//! A token bucket reads the clock on every start, and a `clock_gettime`
//! (what `Instant::now` is) costs tens of nanoseconds on many machines,
//! more than the bucket's own arithmetic. This clock reads the CPU's time
//! stamp counter where it is invariant (constant rate, synchronised across
//! cores), scaled to nanoseconds by a rate calibrated once against the
//! monotonic clock; elsewhere it reads the monotonic clock itself. The
//! counter, its detection and calibration are the `quanta` crate's.
//!
//! What it is not: a reading on the scale of `Instant`. The counter is not
//! slewed by NTP and its calibrated rate is off by parts per million, so a
//! reading drifts from `Instant` without bound over a process's life. Only
//! the *difference* of two readings means anything, and it becomes an
//! `Instant` only as a duration added to a fresh `Instant` reading (so the
//! error stays parts per million of that duration).

use std::sync::OnceLock;

/// The process's fast precise counter (see the module docs).
///
/// # Examples
///
/// ```
/// use machina_core::rt::FastClock;
/// use std::time::{Duration, Instant};
///
/// let clock = FastClock::global();
/// let (before, at) = (clock.nanos(), Instant::now());
/// while at.elapsed() < Duration::from_millis(2) {}
/// let spent = clock.nanos() - before;
/// // The same two milliseconds, to within the calibration's error.
/// assert!(spent >= 1_900_000 && spent < 50_000_000, "{spent}");
/// ```
#[derive(Debug)]
pub struct FastClock {
    clock: quanta::Clock,
    /// The raw reading when the clock was made: readings count from it.
    base: u64,
}

impl FastClock {
    /// The process's clock, made (and, on a time stamp counter, calibrated:
    /// a busy loop of about a millisecond, 200 ms at the very worst) on
    /// first use.
    pub fn global() -> &'static FastClock {
        static CLOCK: OnceLock<FastClock> = OnceLock::new();
        CLOCK.get_or_init(|| {
            let clock = quanta::Clock::new();
            let base = clock.raw();
            FastClock { clock, base }
        })
    }

    /// Nanoseconds since the clock was made: non-decreasing on one thread,
    /// and across threads as far as the counter is synchronised (an
    /// invariant counter is; a reading behind another's counts as no time
    /// passed).
    #[inline]
    pub fn nanos(&self) -> u64 {
        self.clock.delta_as_nanos(self.base, self.clock.raw())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn counts_the_time_instants_count() {
        let clock = FastClock::global();
        for wait in [Duration::from_micros(200), Duration::from_millis(5)] {
            let (before, at) = (clock.nanos(), Instant::now());
            while at.elapsed() < wait {}
            let spent = Duration::from_nanos(clock.nanos() - before);
            let measured = at.elapsed();
            // Read between the two instants' readings: never more than the
            // outer interval, less only by calibration error (ppm) and the
            // reads' own cost.
            assert!(
                spent <= measured + Duration::from_micros(20),
                "{spent:?} > {measured:?}"
            );
            assert!(spent >= wait - wait / 100, "{spent:?} < {wait:?}");
        }
    }

    #[test]
    fn never_goes_back_on_one_thread() {
        let clock = FastClock::global();
        let mut last = clock.nanos();
        for _ in 0..100_000 {
            let now = clock.nanos();
            assert!(now >= last, "{now} < {last}");
            last = now;
        }
    }
}
