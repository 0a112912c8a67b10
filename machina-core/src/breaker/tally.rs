//! [`SuccessTally`]: successes of the window's current bucket, counted with
//! one atomic increment and no lock, and folded into the breaker's
//! [`Window`](super::window::Window) under the lock whenever the machine
//! is consulted.
//!
//! A success while the window holds no failure cannot bring a passing
//! breaker to its trip condition (that needs a failure in the window), so
//! it does not need the machine at once: it only has to be in the window's
//! totals by the time a later entry or failure reads them. With a failure
//! in the window a success can (it may bring the calls up to
//! `min_calls`), so it takes the lock and the machine re-evaluates. The
//! tally holds the bucket it counts
//! for as the end of that bucket (nanoseconds since the window's epoch):
//! a success inside `[end − bucket, end)` and at or after the instant the
//! window's last failure leaves it is one `fetch_add`; any other instant
//! takes the lock, folds the count and moves the tally on.
//!
//! Races, all bounded by one bucket (a tenth of `response_time`, the
//! window's own granularity): a success racing a move may be counted in
//! the next bucket instead of its own; a success racing a failure on
//! another thread may be counted after that failure's evaluation, so a
//! trip it would complete waits for the next outcome that takes the lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Successes of one bucket, counted without the lock.
#[derive(Debug)]
pub(crate) struct SuccessTally {
    /// The window's epoch: where bucket 0 starts.
    epoch: Instant,
    /// One bucket's length in nanoseconds (≥ 1).
    bucket_nanos: u64,
    /// The end of the bucket counted (ns since `epoch`, exclusive); 0
    /// while no bucket is counted (no instant is before 0).
    end: AtomicU64,
    /// From when (ns since `epoch`) the window holds no failure.
    clean_from: AtomicU64,
    /// The stamp (bucket number) counted; only read and written under the
    /// breaker's lock.
    stamp: AtomicU64,
    /// Successes counted in that bucket since the last fold.
    count: AtomicU64,
}

impl SuccessTally {
    /// An empty tally for a window starting at `epoch` with buckets of
    /// `bucket_nanos`.
    pub(crate) fn new(epoch: Instant, bucket_nanos: u64) -> Self {
        SuccessTally {
            epoch,
            bucket_nanos: bucket_nanos.max(1),
            end: AtomicU64::new(0),
            clean_from: AtomicU64::new(0),
            stamp: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Nanoseconds from the window's epoch to `now` (saturating at both
    /// ends).
    pub(crate) fn elapsed(&self, now: Instant) -> u64 {
        let elapsed: Duration = now.saturating_duration_since(self.epoch);
        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Counts one success at `now` if `now` falls in the bucket counted
    /// and the window then holds no failure; `false` when the caller must
    /// take the lock (and [`roll`](Self::roll) the tally on).
    #[inline]
    pub(crate) fn try_count(&self, now: Instant) -> bool {
        self.try_count_at(self.elapsed(now))
    }

    /// [`try_count`](Self::try_count) at `at` nanoseconds since the epoch.
    #[inline]
    pub(crate) fn try_count_at(&self, at: u64) -> bool {
        let end = self.end.load(Ordering::Acquire);
        if at < end
            && at >= end - self.bucket_nanos
            && at >= self.clean_from.load(Ordering::Acquire)
        {
            self.count.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// Takes what was counted: `(stamp, successes)`. Call under the
    /// breaker's lock.
    pub(crate) fn take(&self) -> (u64, u64) {
        let count = self.count.swap(0, Ordering::AcqRel);
        (self.stamp.load(Ordering::Relaxed), count)
    }

    /// The end of the bucket holding `now` (ns since the epoch, exclusive).
    pub(crate) fn bucket_end(&self, now: Instant) -> u64 {
        (self.elapsed(now) / self.bucket_nanos)
            .saturating_add(1)
            .saturating_mul(self.bucket_nanos)
    }

    /// Moves the tally to the bucket of `now` (its count must have been
    /// taken), with the window clean of failures from `clean_from` (ns
    /// since the epoch). Call under the breaker's lock.
    pub(crate) fn roll(&self, now: Instant, clean_from: u64) {
        let stamp = self.elapsed(now) / self.bucket_nanos;
        let end = self.bucket_end(now);
        self.stamp.store(stamp, Ordering::Relaxed);
        self.clean_from.store(clean_from, Ordering::Release);
        self.end.store(end, Ordering::Release);
    }

    /// Stops counting until the next [`roll`](Self::roll) (after the
    /// window was cleared), and takes the successes counted since the last
    /// [`take`](Self::take): they no longer belong to a window. Call under
    /// the breaker's lock.
    pub(crate) fn close(&self) -> u64 {
        self.end.store(0, Ordering::Release);
        self.count.swap(0, Ordering::AcqRel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_inside_its_bucket_only() {
        let t0 = crate::rt::Timer::now(&crate::rt::SystemTimer::new());
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let tally = SuccessTally::new(t0, 100_000_000); // 100 ms buckets
        assert!(!tally.try_count(ms(0)), "nothing counted before a roll");
        tally.roll(ms(150), 0);
        assert!(tally.try_count(ms(100)));
        assert!(tally.try_count(ms(199)));
        assert!(!tally.try_count(ms(200)), "the next bucket");
        assert!(!tally.try_count(ms(99)), "the bucket before");
        assert_eq!(tally.take(), (1, 2));
        assert_eq!(tally.take(), (1, 0), "taken once");
        tally.roll(ms(250), 0);
        assert!(tally.try_count(ms(250)));
        assert!(tally.try_count(ms(251)));
        assert_eq!(tally.close(), 2, "what was counted since the take");
        assert!(!tally.try_count(ms(250)));
        assert_eq!(tally.take(), (2, 0));
    }

    #[test]
    fn bucket_zero_counts() {
        let t0 = crate::rt::Timer::now(&crate::rt::SystemTimer::new());
        let tally = SuccessTally::new(t0, 10);
        tally.roll(t0, 0);
        assert!(tally.try_count(t0));
        assert!(tally.try_count(t0 + Duration::from_nanos(9)));
        assert!(!tally.try_count(t0 + Duration::from_nanos(10)));
        assert_eq!(tally.take(), (0, 2));
    }

    #[test]
    fn counts_nothing_while_a_failure_is_in_the_window() {
        let t0 = crate::rt::Timer::now(&crate::rt::SystemTimer::new());
        let tally = SuccessTally::new(t0, 100);
        tally.roll(t0 + Duration::from_nanos(250), 270);
        assert!(!tally.try_count(t0 + Duration::from_nanos(260)));
        assert!(tally.try_count(t0 + Duration::from_nanos(270)));
        assert_eq!(tally.take(), (2, 1));
    }
}
