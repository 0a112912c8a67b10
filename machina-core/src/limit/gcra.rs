//! [`AtomicBucket`]: the token bucket (GCRA) of a group whose emission
//! interval is a whole number of nanoseconds, kept in one atomic word, so
//! that a start takes a token with one compare-and-swap and no lock.
//!
//! It makes the same decisions as the bucket of [`GroupPolicy`] (see there
//! for the rule, including the grid kept for a waiter that wakes a little
//! late); only the representation differs. The policy counts in units of
//! `1/n` ns in 128 bits, so that any rate is exact; here the theoretical
//! arrival time is whole nanoseconds since the group was made, in 64 bits
//! (584 years), which is exact only when `per` is a multiple of `n` ns
//! (100 per second, 10 per minute, a billion per second). A group with
//! another rate (3 per second), or with a window of starts, keeps the
//! policy under its lock.
//!
//! Time: on a runtime with a fast counter
//! ([`Runtime::fast_clock`]) every decision reads that counter, in
//! nanoseconds since its reading when the group was made; elsewhere (the
//! mock runtime's virtual clock) nanoseconds since the instant the group was
//! made. One scale per bucket, so the lock-free and the locked paths never
//! disagree; a refusal says how long to wait, which the group adds to a
//! fresh `now()` (the counter is not on `Instant`'s scale: see
//! [`FastClock`](crate::rt::FastClock)).
//!
//! Who may change the word: a newcomer without the lock while nobody waits
//! ([`try_start_at`](AtomicBucket::try_start_at)), and a caller under the
//! group's lock ([`commit_at`](AtomicBucket::commit_at)). Both check and move the
//! arrival time in one compare-and-swap, so two starts never spend the
//! same token; the waiter's promise is read and written under the lock
//! only.
//!
//! [`GroupPolicy`]: super::GroupPolicy

use std::time::{Duration, Instant};

use super::sync::{AtomicU64, Ordering};
use crate::rt::{FastClock, Runtime};

/// No promise outstanding.
const NO_PROMISE: u64 = u64::MAX;

/// The largest burst tolerance plus interval kept in the word (146 years):
/// the arithmetic below then never overflows for a process younger than
/// four centuries.
const MAX_SPAN: u64 = 1 << 62;

/// A GCRA token bucket in one atomic word (see the module docs).
#[derive(Debug)]
pub(crate) struct AtomicBucket {
    /// The instant nanoseconds count from (the group's creation), on a
    /// runtime without a fast counter.
    epoch: Instant,
    /// The runtime's fast counter ([`Runtime::fast_clock`]) and its
    /// reading at the epoch, when it has one: nanoseconds count from it
    /// then, read directly (no call through the runtime's timer).
    counter: Option<(&'static FastClock, u64)>,
    /// The emission interval, ns.
    interval: u64,
    /// The burst tolerance, `burst × interval` ns.
    tolerance: u64,
    /// The theoretical arrival time, ns since `epoch`.
    tat: AtomicU64,
    /// The arrival time a refused waiter was told to wait for, or
    /// [`NO_PROMISE`]; under the group's lock only.
    promised: AtomicU64,
}

/// A start the bucket took, to undo if another group of an
/// all-or-nothing start refuses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step {
    before: u64,
    after: u64,
}

impl AtomicBucket {
    /// The bucket for `n` starts per `per` with `burst` extra, counted from
    /// `epoch` (and on `counter`, the runtime's fast counter, if it has
    /// one, from its reading now); `None` when the interval is not a whole number of
    /// nanoseconds, or the tolerance too long (then the policy's exact
    /// arithmetic under the lock is needed).
    pub(crate) fn new(
        n: u32,
        per: Duration,
        burst: u32,
        epoch: Instant,
        counter: Option<&'static FastClock>,
    ) -> Option<Self> {
        let per = u64::try_from(per.as_nanos()).ok()?;
        let n = u64::from(n);
        if n == 0 || per % n != 0 {
            return None;
        }
        let interval = per / n;
        let tolerance = interval.checked_mul(u64::from(burst))?;
        if interval == 0 || tolerance.checked_add(interval)? > MAX_SPAN {
            return None;
        }
        Some(AtomicBucket {
            epoch,
            counter: counter.map(|clock| (clock, clock.nanos())),
            interval,
            tolerance,
            tat: AtomicU64::new(0),
            promised: AtomicU64::new(NO_PROMISE),
        })
    }

    /// `now` in nanoseconds since the epoch.
    #[inline]
    fn nanos(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.epoch);
        since
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(since.subsec_nanos()))
    }

    /// Now on `runtime`'s clock, in nanoseconds since the epoch: from its
    /// fast counter if it has one, else from its `now()`.
    #[inline]
    pub(crate) fn now(&self, runtime: &Runtime) -> u64 {
        self.on_counter()
            .unwrap_or_else(|| self.nanos(runtime.now()))
    }

    /// The reading for a decision at `now`, an instant just read from the
    /// runtime: the fast counter read afresh if the bucket counts on it,
    /// else `now` itself.
    pub(crate) fn at(&self, now: Instant) -> u64 {
        self.on_counter().unwrap_or_else(|| self.nanos(now))
    }

    /// Now on the fast counter, in nanoseconds since the epoch, if the
    /// bucket counts on it.
    #[inline]
    fn on_counter(&self) -> Option<u64> {
        let (clock, epoch) = self.counter?;
        Some(clock.nanos().saturating_sub(epoch))
    }

    /// How long from `now` until `allowed_from` (ns since the epoch).
    fn wait(now: u64, allowed_from: u64) -> Duration {
        Duration::from_nanos(allowed_from.saturating_sub(now))
    }

    /// Takes a token for a newcomer at `now` (ns since the epoch, see
    /// [`now`](Self::now)), without the lock.
    ///
    /// # Errors
    /// How long from `now` until a start is allowed; nothing is taken then
    /// and nothing promised.
    #[inline]
    pub(crate) fn try_start_at(&self, now: u64) -> Result<(), Duration> {
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            let allowed_from = tat.saturating_sub(self.tolerance);
            if now < allowed_from {
                return Err(Self::wait(now, allowed_from));
            }
            match self.tat.compare_exchange_weak(
                tat,
                tat.max(now) + self.interval,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(seen) => tat = seen,
            }
        }
    }

    /// How long from `now` (ns since the epoch) until the bucket allows a
    /// start, if it does not now; with `promise`, a refused caller is taken
    /// to wait for it (see [`commit_at`](Self::commit_at)). Under the
    /// group's lock.
    pub(crate) fn blocked_for(&self, now: u64, promise: bool) -> Option<Duration> {
        let tat = self.tat.load(Ordering::Acquire);
        let allowed_from = tat.saturating_sub(self.tolerance);
        if now >= allowed_from {
            return None;
        }
        if promise {
            self.promised.store(tat, Ordering::Relaxed);
        }
        Some(Self::wait(now, allowed_from))
    }

    /// Takes a token at `now` (ns since the epoch) under the group's lock,
    /// after [`blocked_for`](Self::blocked_for) said none blocks. A caller
    /// that was promised this arrival time and wakes less than an interval
    /// late keeps the grid (see [`GroupPolicy`](super::GroupPolicy)).
    ///
    /// # Errors
    /// A newcomer took the last token without the lock since the look: how
    /// long until the next, promised to the caller if `promise`.
    pub(crate) fn commit_at(&self, now: u64, promise: bool) -> Result<Step, Duration> {
        let promised = self.promised.swap(NO_PROMISE, Ordering::Relaxed);
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            let allowed_from = tat.saturating_sub(self.tolerance);
            if now < allowed_from {
                if promise {
                    self.promised.store(tat, Ordering::Relaxed);
                }
                return Err(Self::wait(now, allowed_from));
            }
            let awaited = promised == tat && now < tat.saturating_add(self.interval);
            let from = if awaited { tat } else { tat.max(now) };
            let after = from + self.interval;
            match self
                .tat
                .compare_exchange_weak(tat, after, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(Step { before: tat, after }),
                Err(seen) => tat = seen,
            }
        }
    }

    /// Undoes `step` if no start came after it; else the token stays spent
    /// (the bucket then admits one start fewer, never one more).
    pub(crate) fn undo(&self, step: Step) {
        let _ =
            self.tat
                .compare_exchange(step.after, step.before, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// The bucket read with instants (its epoch's scale), for tests.
#[cfg(all(test, not(loom)))]
impl AtomicBucket {
    pub(crate) fn try_start(&self, now: Instant) -> Result<(), Instant> {
        self.try_start_at(self.nanos(now))
            .map_err(|wait| now + wait)
    }

    pub(crate) fn blocked_until(&self, now: Instant, promise: bool) -> Option<Instant> {
        self.blocked_for(self.nanos(now), promise)
            .map(|wait| now + wait)
    }

    pub(crate) fn commit(&self, now: Instant, promise: bool) -> Result<Step, Instant> {
        self.commit_at(self.nanos(now), promise)
            .map_err(|wait| now + wait)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn t0() -> Instant {
        crate::rt::Timer::now(&crate::rt::SystemTimer::new())
    }

    #[test]
    fn only_whole_nanosecond_intervals_fit_the_word() {
        let t0 = t0();
        assert!(AtomicBucket::new(100, Duration::from_secs(1), 5, t0, None).is_some());
        assert!(AtomicBucket::new(1_000_000_000, Duration::from_secs(1), 0, t0, None).is_some());
        assert!(AtomicBucket::new(3, Duration::from_secs(1), 0, t0, None).is_none());
        assert!(AtomicBucket::new(u32::MAX, Duration::from_secs(1), 0, t0, None).is_none());
        // A tolerance of centuries: the exact arithmetic keeps it.
        assert!(AtomicBucket::new(1, Duration::from_secs(86_400), u32::MAX, t0, None).is_none());
    }

    #[test]
    fn bursts_then_holds_the_grid() {
        let t0 = t0();
        let bucket = AtomicBucket::new(50, Duration::from_secs(1), 2, t0, None).unwrap();
        for _ in 0..3 {
            assert_eq!(bucket.try_start(t0), Ok(()));
        }
        assert_eq!(bucket.try_start(t0), Err(t0 + ms(20)));
        assert_eq!(bucket.try_start(t0 + ms(19)), Err(t0 + ms(20)));
        assert_eq!(bucket.try_start(t0 + ms(20)), Ok(()));
        assert_eq!(bucket.blocked_until(t0 + ms(20), false), Some(t0 + ms(40)));
    }

    #[test]
    fn a_waiter_that_wakes_late_keeps_the_grid_and_a_newcomer_does_not() {
        let t0 = t0();
        let bucket = AtomicBucket::new(50, Duration::from_secs(1), 0, t0, None).unwrap();
        bucket.commit(t0, false).unwrap();
        assert_eq!(bucket.blocked_until(t0 + ms(5), true), Some(t0 + ms(20)));
        // It wakes 3 ms late: the next start is still due at 40 ms.
        bucket.commit(t0 + ms(23), true).unwrap();
        assert_eq!(bucket.blocked_until(t0 + ms(23), false), Some(t0 + ms(40)));
        // A newcomer late by as much restarts the grid at its start.
        bucket.try_start(t0 + ms(43)).unwrap();
        assert_eq!(bucket.blocked_until(t0 + ms(43), false), Some(t0 + ms(63)));
    }

    #[test]
    fn a_commit_that_lost_the_token_refuses_and_promises() {
        let t0 = t0();
        let bucket = AtomicBucket::new(50, Duration::from_secs(1), 0, t0, None).unwrap();
        assert_eq!(bucket.blocked_until(t0, true), None);
        bucket.try_start(t0).unwrap(); // a newcomer without the lock
        assert_eq!(bucket.commit(t0 + ms(1), true).unwrap_err(), t0 + ms(20));
        // It waits for that arrival time and wakes 2 ms late: on the grid.
        bucket.commit(t0 + ms(22), true).unwrap();
        assert_eq!(bucket.blocked_until(t0 + ms(22), false), Some(t0 + ms(40)));
    }

    #[test]
    fn an_undone_step_gives_its_token_back_unless_another_followed() {
        let t0 = t0();
        let bucket = AtomicBucket::new(50, Duration::from_secs(1), 0, t0, None).unwrap();
        let step = bucket.commit(t0, false).unwrap();
        bucket.undo(step);
        assert_eq!(bucket.try_start(t0), Ok(()), "the token came back");
        let step = bucket.commit(t0 + ms(20), false).unwrap();
        bucket.try_start(t0 + ms(40)).unwrap();
        bucket.undo(step);
        assert_eq!(
            bucket.blocked_until(t0 + ms(40), false),
            Some(t0 + ms(60)),
            "a later start keeps both tokens spent"
        );
    }

    #[test]
    fn a_runtime_with_a_fast_counter_is_read_on_it() {
        let rt = crate::test_kit::system_clock_runtime();
        let made = rt.now();
        let bucket =
            AtomicBucket::new(50, Duration::from_secs(1), 0, made, rt.fast_clock()).unwrap();
        // Readings count on the counter: the time between two of them is
        // the time instants count, to within the reads' cost and the
        // calibration's error.
        let (first, at) = (bucket.now(&rt), rt.now());
        while at.elapsed() < ms(3) {}
        let (second, since) = (bucket.now(&rt), at.elapsed());
        let (spent, since) = (second - first, u64::try_from(since.as_nanos()).unwrap());
        assert!(spent <= since + 50_000, "{spent} ahead of {since}");
        assert!(spent + since / 100 >= since, "{spent} behind {since}");
        // Both paths read the same counter: a token taken without the lock
        // is seen under it, and the wait told is the interval less the time
        // that passed.
        assert_eq!(bucket.try_start_at(bucket.now(&rt)), Ok(()));
        let now = rt.now();
        let wait = bucket.blocked_for(bucket.at(now), false).unwrap();
        assert!(wait <= ms(20) && wait > ms(19), "{wait:?}");
        let later = bucket.commit_at(bucket.at(rt.now()), false).unwrap_err();
        assert!(later <= wait && later > ms(19), "{later:?} after {wait:?}");
    }

    #[test]
    fn virtual_time_is_read_as_instants() {
        let mock = crate::testing::MockRuntime::new();
        let rt = mock.runtime();
        assert!(rt.fast_clock().is_none());
        let bucket =
            AtomicBucket::new(50, Duration::from_secs(1), 0, rt.now(), rt.fast_clock()).unwrap();
        assert_eq!(bucket.now(&rt), 0);
        mock.advance(ms(20)).unwrap();
        assert_eq!(bucket.now(&rt), 20_000_000, "exactly the virtual time");
        assert_eq!(bucket.try_start_at(bucket.now(&rt)), Ok(()));
        mock.advance(ms(5)).unwrap();
        assert_eq!(bucket.blocked_for(bucket.at(rt.now()), false), Some(ms(15)));
        assert_eq!(bucket.try_start_at(bucket.now(&rt)), Err(ms(15)));
    }

    #[test]
    fn never_admits_more_than_the_burst_across_threads() {
        let t0 = t0();
        let bucket = std::sync::Arc::new(
            AtomicBucket::new(1, Duration::from_secs(3600), 99, t0, None).unwrap(),
        );
        let admitted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (bucket, admitted) = (bucket.clone(), admitted.clone());
                std::thread::spawn(move || {
                    for _ in 0..1_000 {
                        if bucket.try_start(t0).is_ok() {
                            admitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(admitted.load(std::sync::atomic::Ordering::Relaxed), 100);
    }
}
