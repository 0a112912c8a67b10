//! [`FastClock`]: the process's fast precise counter, behind
//! [`Timer::fast_clock`](super::Timer::fast_clock) on the real clock.
//!
//! A token bucket reads the clock on every start, and a `clock_gettime`
//! (what an `Instant` reading is) costs tens of nanoseconds on many machines,
//! more than the bucket's own arithmetic. This clock reads the CPU's time
//! stamp counter where it is invariant (constant rate, synchronised across
//! cores), scaled to nanoseconds by a rate calibrated once against the
//! monotonic clock; elsewhere it reads the monotonic clock itself. The
//! counter, its detection and calibration are the `quanta` crate's.
//!
//! A calibrated rate is off by parts per million, more when the
//! calibration ran on a loaded machine, and the monotonic clock is slewed
//! by NTP while the counter is not: extrapolated from one starting point,
//! the two drift apart without bound (a hundred microseconds a second has
//! been seen under load). So the counter only extrapolates from an anchor
//! on the monotonic clock (read through [`CoarseClock`], whose anchor the
//! readings count from) that is read again every millisecond of counter
//! time, between two counter readings at most a microsecond apart: a
//! reading is within the rate's error times a millisecond plus half a
//! microsecond of `Instant`'s time, and may step back by as much when the
//! anchor moves. Readings are nanoseconds since [`CoarseClock`]'s anchor,
//! so [`FastClock::now`] makes them instants on `Instant`'s scale, to
//! within that same error (what a window of starts decides on; the token
//! bucket uses differences of readings only).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::coarse::CoarseClock;

/// How often (ns of counter time) the anchor is read again.
const REANCHOR_EVERY: u64 = 1_000_000;

/// The widest gap (ns of counter time) between the two counter readings
/// around an anchor's monotonic reading for the anchor to be kept: the
/// anchor's error is at most half of it. Two counter reads and a
/// `clock_gettime` take well under 100 ns undisturbed.
const MAX_ANCHOR_SPREAD: u64 = 1_000;

/// How many times an anchor is tried before the old one is kept.
const ANCHOR_TRIES: u32 = 4;

/// The process's fast precise counter (see the module docs).
///
/// # Examples
///
/// ```
/// use machina_core::rt::{FastClock, SystemTimer, Timer};
/// use std::time::Duration;
///
/// let (clock, timer) = (FastClock::global(), SystemTimer::new());
/// let (before, at) = (clock.nanos(), timer.now());
/// while timer.now() - at < Duration::from_millis(2) {}
/// let spent = clock.nanos() - before;
/// // The same two milliseconds, to within the calibration's error.
/// assert!(spent >= 1_900_000 && spent < 50_000_000, "{spent}");
/// ```
#[derive(Debug)]
pub struct FastClock {
    clock: quanta::Clock,
    /// [`CoarseClock::global`]'s anchor: the instant readings count from.
    origin: Instant,
    /// The raw counter when the clock was made.
    base: u64,
    /// What to add to the counter's nanoseconds since `base` to land on
    /// [`CoarseClock`]'s precise reading as of the last anchor (two's
    /// complement: the counter may run ahead of the monotonic clock).
    offset: AtomicU64,
    /// Counter nanoseconds since `base` from which the anchor is read again.
    next_anchor: AtomicU64,
}

impl FastClock {
    /// The process's clock, made (and, on a time stamp counter, calibrated:
    /// a busy loop of about a millisecond, 200 ms at the very worst) on
    /// first use.
    pub fn global() -> &'static FastClock {
        static CLOCK: OnceLock<FastClock> = OnceLock::new();
        CLOCK.get_or_init(|| {
            let clock = quanta::Clock::new();
            let fast = FastClock {
                origin: CoarseClock::global().anchor(),
                base: clock.raw(),
                clock,
                offset: AtomicU64::new(0),
                next_anchor: AtomicU64::new(0),
            };
            // The first anchor must hold: until it does, readings would
            // not be on the monotonic clock's scale at all.
            while fast.next_anchor.load(Ordering::Relaxed) == 0 {
                fast.reanchor(0);
            }
            fast
        })
    }

    /// Nanoseconds since [`CoarseClock::global`]'s anchor, as the monotonic
    /// clock counts them to within a fraction of a microsecond (see the
    /// module docs).
    #[inline]
    pub fn nanos(&self) -> u64 {
        let counted = self.counted();
        if counted >= self.next_anchor.load(Ordering::Relaxed) {
            return self.reanchor(counted);
        }
        counted.wrapping_add(self.offset.load(Ordering::Relaxed))
    }

    /// [`nanos`](Self::nanos) as an instant: within a fraction of a
    /// microsecond of [`Instant::now`], and like it monotonic but for that
    /// error (a reading may be up to about a microsecond behind an earlier
    /// one when the anchor moves). Several times cheaper than
    /// `Instant::now` where `clock_gettime` is dear, for a decision that
    /// can take a microsecond's error: a window of starts whose opening a
    /// waiter sleeps for (see `limit::group`).
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::rt::FastClock;
    /// use std::time::{Duration, Instant};
    ///
    /// let clock = FastClock::global();
    /// let (before, now, after) = (Instant::now(), clock.now(), Instant::now());
    /// let slack = Duration::from_micros(50);
    /// assert!(now + slack >= before && now <= after + slack);
    /// ```
    #[inline]
    pub fn now(&self) -> Instant {
        self.origin + Duration::from_nanos(self.nanos())
    }

    /// Counter nanoseconds since `base`, now.
    #[inline]
    fn counted(&self) -> u64 {
        self.clock.delta_as_nanos(self.base, self.clock.raw())
    }

    /// Reads the monotonic clock and moves the anchor to it: once a
    /// millisecond of counter time (two threads doing it at once store
    /// offsets a few nanoseconds apart).
    ///
    /// The monotonic reading is taken between two counter readings and
    /// pinned to their middle, and kept only if they are close: a thread
    /// descheduled between the counter and the monotonic clock would
    /// otherwise anchor the counter ahead by the time it was away, and the
    /// next anchor would step readings back by as much (a test saw 3.5 us
    /// under load). If every try is split, the old anchor stays and the
    /// next reading tries again.
    #[cold]
    #[inline(never)]
    fn reanchor(&self, counted: u64) -> u64 {
        for _ in 0..ANCHOR_TRIES {
            let before = self.counted();
            let monotonic = CoarseClock::global().precise_elapsed_nanos();
            let after = self.counted();
            let spread = after.saturating_sub(before);
            if spread <= MAX_ANCHOR_SPREAD {
                let offset = monotonic.wrapping_sub(before + spread / 2);
                self.offset.store(offset, Ordering::Relaxed);
                self.next_anchor
                    .store(after.saturating_add(REANCHOR_EVERY), Ordering::Relaxed);
                return after.wrapping_add(offset);
            }
        }
        counted.wrapping_add(self.offset.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rt::{SystemTimer, Timer};
    use std::time::Duration;

    #[test]
    fn counts_the_time_instants_count() {
        let (clock, timer) = (FastClock::global(), SystemTimer::new());
        for wait in [Duration::from_micros(200), Duration::from_millis(5)] {
            // Instants bracket the counter's readings, and the counter's
            // readings bracket the wait: a thread descheduled anywhere
            // widens the outer interval with the counter's.
            let outer = timer.now();
            let before = clock.nanos();
            let at = timer.now();
            while timer.now() - at < wait {}
            let waited = timer.now() - at;
            let spent = Duration::from_nanos(clock.nanos() - before);
            let measured = timer.now() - outer;
            // Never more than the outer interval, less than the inner one
            // only by the calibration's error (ppm) and the anchor's.
            assert!(
                spent <= measured + Duration::from_micros(20),
                "{spent:?} > {measured:?}"
            );
            assert!(spent >= waited - waited / 100, "{spent:?} < {waited:?}");
        }
    }

    #[test]
    fn keeps_to_the_monotonic_clock() {
        let (clock, monotonic) = (FastClock::global(), CoarseClock::global());
        let start = monotonic.precise_elapsed_nanos();
        let mut worst = Duration::ZERO;
        while monotonic.precise_elapsed_nanos() - start < 20_000_000 {
            let before = Duration::from_nanos(monotonic.precise_elapsed_nanos());
            let read = Duration::from_nanos(clock.nanos());
            let after = Duration::from_nanos(monotonic.precise_elapsed_nanos());
            // Between the two instants, but for the anchor's error.
            let off = if read < before {
                before - read
            } else {
                read.saturating_sub(after)
            };
            worst = worst.max(off);
        }
        // A calibration off by 1 000 ppm would still be within 1 us; a
        // descheduled thread between the reads only widens the interval.
        assert!(worst < Duration::from_micros(5), "{worst:?} off");
    }

    #[test]
    fn makes_instants_on_the_monotonic_clocks_scale() {
        let clock = FastClock::global();
        let mut worst = Duration::ZERO;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(20) {
            let (before, read, after) = (Instant::now(), clock.now(), Instant::now());
            let off = if read < before {
                before - read
            } else {
                read.saturating_duration_since(after)
            };
            worst = worst.max(off);
        }
        // As `keeps_to_the_monotonic_clock`: the instant is the reading
        // added to the anchor, with no error of its own.
        assert!(worst < Duration::from_micros(5), "{worst:?} off");
    }

    #[test]
    fn goes_back_at_most_by_the_anchors_error_on_one_thread() {
        let clock = FastClock::global();
        let mut last = clock.nanos();
        for _ in 0..100_000 {
            let now = clock.nanos();
            assert!(now + 2_000 >= last, "{now} < {last}");
            last = now;
        }
    }
}
