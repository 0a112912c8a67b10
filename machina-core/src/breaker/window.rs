//! The breaker's statistics window: call outcomes counted in time buckets,
//! so that old outcomes fall out as time passes without a log of every
//! call.

use std::time::{Duration, Instant};

/// How many buckets a window is split into.
pub(crate) const BUCKETS: usize = 10;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Which bucket of time this is (`elapsed / bucket_len`).
    stamp: u64,
    calls: u64,
    failures: u64,
}

/// Outcomes of the last `length` of time, in [`BUCKETS`] buckets. A bucket
/// is reused in place once its time has passed, so recording is O(1) and
/// reading is O(buckets).
#[derive(Debug, Clone)]
pub(crate) struct Window {
    epoch: Instant,
    bucket_nanos: u64,
    buckets: [Bucket; BUCKETS],
    /// The bucket of the latest failure recorded (`u64::MAX`: none since
    /// the last clear).
    last_failure: u64,
}

impl Window {
    pub(crate) fn new(epoch: Instant, length: Duration) -> Self {
        let bucket_nanos =
            (length.as_nanos() / BUCKETS as u128).clamp(1, u128::from(u64::MAX)) as u64;
        Window {
            epoch,
            bucket_nanos,
            // Stamps start far in the past so no bucket counts as current.
            buckets: [Bucket {
                stamp: u64::MAX,
                calls: 0,
                failures: 0,
            }; BUCKETS],
            last_failure: u64::MAX,
        }
    }

    fn stamp(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.epoch);
        // 64-bit arithmetic for the first 584 years (a 128-bit division is
        // several times slower), 128-bit after.
        let stamp = match u64::try_from(elapsed.as_nanos()) {
            Ok(nanos) => nanos / self.bucket_nanos,
            Err(_) => u64::try_from(elapsed.as_nanos() / u128::from(self.bucket_nanos))
                .unwrap_or(u64::MAX),
        };
        stamp.min(u64::MAX - 1)
    }

    /// Records one outcome at `now`.
    /// Counts an outcome at `now`; answers whether the window then holds
    /// no failure at all (so that a success cannot bring it to the trip
    /// condition).
    pub(crate) fn record(&mut self, now: Instant, failed: bool) -> bool {
        let stamp = self.stamp(now);
        let bucket = &mut self.buckets[(stamp % BUCKETS as u64) as usize];
        if bucket.stamp != stamp {
            *bucket = Bucket {
                stamp,
                calls: 0,
                failures: 0,
            };
        }
        bucket.calls += 1;
        bucket.failures += u64::from(failed);
        if failed {
            self.last_failure = stamp;
        }
        self.last_failure == u64::MAX || stamp.saturating_sub(self.last_failure) >= BUCKETS as u64
    }

    /// Where bucket 0 starts and how long a bucket is (ns): what a
    /// [`SuccessTally`](super::tally::SuccessTally) counts by.
    pub(crate) fn geometry(&self) -> (Instant, u64) {
        (self.epoch, self.bucket_nanos)
    }

    /// From when (ns since the epoch) the window holds no failure: when
    /// the latest failure's bucket leaves it, or 0 with none.
    pub(crate) fn clean_from(&self) -> u64 {
        if self.last_failure == u64::MAX {
            0
        } else {
            self.last_failure
                .saturating_add(BUCKETS as u64)
                .saturating_mul(self.bucket_nanos)
        }
    }

    /// Adds `calls` successes counted elsewhere in bucket `stamp`. Nothing
    /// is added when that bucket's place already holds a later bucket (it
    /// has left the window).
    pub(crate) fn add_successes(&mut self, stamp: u64, calls: u64) {
        if calls == 0 {
            return;
        }
        let bucket = &mut self.buckets[(stamp % BUCKETS as u64) as usize];
        if bucket.stamp == stamp {
            bucket.calls += calls;
        } else if bucket.stamp == u64::MAX || bucket.stamp < stamp {
            *bucket = Bucket {
                stamp,
                calls,
                failures: 0,
            };
        }
    }

    pub(crate) fn totals(&self, now: Instant) -> (u64, u64) {
        let current = self.stamp(now);
        self.buckets
            .iter()
            .filter(|b| {
                b.stamp != u64::MAX && b.stamp <= current && current - b.stamp < BUCKETS as u64
            })
            .fold((0, 0), |(c, f), b| (c + b.calls, f + b.failures))
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        for bucket in &mut self.buckets {
            bucket.stamp = u64::MAX;
        }
        self.last_failure = u64::MAX;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_fall_out_after_the_window() {
        let t0 = crate::rt::Timer::now(&crate::rt::SystemTimer::new());
        let s = |n: u64| t0 + Duration::from_millis(n);
        let mut w = Window::new(t0, Duration::from_secs(1)); // 100 ms buckets
        w.record(s(0), true);
        w.record(s(50), false);
        w.record(s(150), false);
        assert_eq!(w.totals(s(150)), (3, 1));
        assert_eq!(w.totals(s(999)), (3, 1));
        assert_eq!(
            w.totals(s(1000)),
            (1, 0),
            "the first bucket [0, 100) has left"
        );
        assert_eq!(w.totals(s(1100)), (0, 0));
        w.record(s(5000), true);
        assert_eq!(
            w.totals(s(5000)),
            (1, 1),
            "a reused bucket starts from zero"
        );
        w.clear();
        assert_eq!(w.totals(s(5000)), (0, 0));
    }

    #[test]
    fn successes_counted_elsewhere_land_in_their_bucket() {
        let t0 = crate::rt::Timer::now(&crate::rt::SystemTimer::new());
        let s = |n: u64| t0 + Duration::from_millis(n);
        let mut w = Window::new(t0, Duration::from_secs(1)); // 100 ms buckets
        assert_eq!(w.geometry(), (t0, 100_000_000));
        w.record(s(120), true);
        w.add_successes(1, 4); // the failure's bucket
        w.add_successes(3, 2); // an empty one
        assert_eq!(w.totals(s(399)), (7, 1));
        w.record(s(1150), false); // bucket 11 takes bucket 1's place
        w.add_successes(1, 5); // too late: bucket 1 has left
        assert_eq!(w.totals(s(1150)), (3, 0));
        assert_eq!(w.totals(s(1299)), (3, 0));
        assert_eq!(w.totals(s(1300)), (1, 0), "bucket 3 has left");
    }

    #[test]
    fn record_says_whether_the_window_holds_no_failure() {
        let t0 = crate::rt::Timer::now(&crate::rt::SystemTimer::new());
        let s = |n: u64| t0 + Duration::from_millis(n);
        let mut w = Window::new(t0, Duration::from_secs(1)); // 100 ms buckets
        assert!(w.record(s(0), false), "no failure yet");
        assert_eq!(w.clean_from(), 0);
        assert!(!w.record(s(10), true));
        assert_eq!(w.clean_from(), 1_000_000_000, "bucket 0 leaves at 1 s");
        assert!(!w.record(s(999), false), "the failure's bucket is still in");
        assert!(w.record(s(1000), false), "and now it has left");
        assert!(!w.record(s(1001), true));
        w.clear();
        assert!(w.record(s(1002), false), "a clear forgets it");
    }
}
