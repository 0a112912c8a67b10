//! The pure decision core of a concurrent group: fed `now`, it says whether
//! a call may start, and if not, until when.
//!
//! It knows nothing of waiters, wakers or runtimes; [`ConcurrentGroup`]
//! (in `group.rs`) wraps it with a fair wait queue.
//!
//! [`ConcurrentGroup`]: super::ConcurrentGroup

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::config::Limits;
use super::error::LimitError;
use crate::decision::{Decision, Reason, Refusal};
use crate::rt::instant_after;

/// The state of one group's limits: calls in flight, start times still
/// inside the sliding window, and the token bucket's theoretical arrival
/// time.
///
/// # The window
///
/// Each start consumes one of `max_starts` tokens, and that token returns
/// exactly `window` after *that start*, however long the call runs. With 2
/// starts per 300 ms, calls arriving at 0, 100, 150 and 160 ms start at 0,
/// 100, 300 and 400 ms.
///
/// # The token bucket (GCRA)
///
/// With `rate(n, per)` the emission interval is `T = per / n`, kept exactly
/// (in units of `1/n` ns, so 3 per second never drifts by rounding). The
/// bucket keeps one theoretical arrival time (TAT): a start is allowed at
/// `now` when `now ≥ TAT − burst·T`, and moves the TAT one interval on
/// from `max(TAT, now)` — except for a caller that was refused and told to
/// wait for that TAT, which may wake late (timers round to whole
/// milliseconds on real runtimes, and a busy executor polls late): if it
/// wakes less than one interval late, the TAT moves on from the old TAT.
/// Waking late therefore does not accumulate, and a saturated bucket's
/// starts stay on their grid with no drift. The price is bounded: after a
/// wake-up nearly an interval late, the next start may follow it closely
/// (one start of catch-up, never more). A waiter later than that, or after
/// a quiet spell, restarts the grid at its start, like plain GCRA.
///
/// # Examples
///
/// ```
/// use machina_core::decision::{Decision, Reason};
/// use machina_core::limit::{GroupPolicy, Limits};
/// use std::time::{Duration, Instant};
///
/// let ms = Duration::from_millis;
/// let mut policy = GroupPolicy::new(Limits::new().max_starts(2, ms(300))).unwrap();
/// let t0 = Instant::now();
/// assert!(policy.try_acquire(t0).is_ok());
/// assert!(policy.try_acquire(t0 + ms(100)).is_ok());
/// let refused = policy.try_acquire(t0 + ms(150)).unwrap_err();
/// assert_eq!((refused.reason, refused.until), (Reason::Window, Some(t0 + ms(300))));
/// assert!(policy.try_acquire(t0 + ms(300)).is_ok());
///
/// // 50 per second, no burst: one start every 20 ms.
/// let mut bucket = GroupPolicy::new(Limits::rate(50, Duration::from_secs(1))).unwrap();
/// assert!(bucket.try_acquire(t0).is_ok());
/// assert_eq!(bucket.decide(t0 + ms(5)), Decision::WaitUntil(refused_until(t0 + ms(20))));
/// # fn refused_until(t: Instant) -> machina_core::decision::Refusal {
/// #     machina_core::decision::Refusal::new(Reason::Rate, Some(t))
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct GroupPolicy {
    max_in_flight: Option<u32>,
    max_starts: u32,
    window: Duration,
    in_flight: u32,
    /// Start times still inside the window, oldest first; at most
    /// `max_starts` of them.
    starts: VecDeque<Instant>,
    bucket: Option<Bucket>,
}

/// GCRA state, in "scaled" units: nanoseconds × `n`, so one emission
/// interval is exactly `per` in nanoseconds.
#[derive(Debug, Clone)]
struct Bucket {
    n: u32,
    per: Duration,
    burst: u32,
    /// Scaled emission interval: `per` in ns.
    interval: u128,
    /// Scaled burst tolerance: `burst × interval`.
    tolerance: u128,
    /// The instant scaled times count from: the first `now` seen.
    epoch: Option<Instant>,
    /// Theoretical arrival time, scaled, since `epoch`.
    tat: u128,
    /// The TAT a refused caller was told to wait for: a start soon after
    /// it is that caller waking (perhaps a little late), and keeps the
    /// grid.
    promised: Option<u128>,
}

impl Bucket {
    fn new(n: u32, per: Duration, burst: u32) -> Self {
        let interval = per.as_nanos();
        Bucket {
            n,
            per,
            burst,
            interval,
            tolerance: interval * u128::from(burst),
            epoch: None,
            tat: 0,
            promised: None,
        }
    }

    fn scaled(&mut self, now: Instant) -> u128 {
        let epoch = *self.epoch.get_or_insert(now);
        now.saturating_duration_since(epoch).as_nanos() * u128::from(self.n)
    }

    /// The earliest instant the bucket allows a start, if not `now`;
    /// with `promise`, a refused caller is told to wait for it (see
    /// `commit`).
    fn blocked_until(&mut self, now: Instant, promise: bool) -> Option<Instant> {
        let now_s = self.scaled(now);
        let allowed_from = self.tat.saturating_sub(self.tolerance);
        if now_s >= allowed_from {
            return None;
        }
        if promise {
            self.promised = Some(self.tat);
        }
        let epoch = self.epoch.unwrap_or(now);
        // Round up, so that waking at this instant is never too early.
        let nanos = allowed_from.div_ceil(u128::from(self.n));
        Some(epoch + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)))
    }

    fn commit(&mut self, now: Instant) {
        let now_s = self.scaled(now);
        // A caller that was told to wait for this TAT and woke less than an
        // interval late keeps the grid. Anyone else — a newcomer, or a
        // waiter after a stall — is plain GCRA: if the bucket was idle, the
        // grid restarts at now, so nothing is ever caught up.
        let awaited = self.promised.take() == Some(self.tat)
            && now_s < self.tat.saturating_add(self.interval);
        let from = if awaited {
            self.tat
        } else {
            self.tat.max(now_s)
        };
        self.tat = from + self.interval;
    }
}

impl GroupPolicy {
    /// A policy for `limits`, with nothing in flight.
    ///
    /// # Errors
    /// [`LimitError`] for limits that could never admit a call.
    pub fn new(limits: Limits) -> Result<Self, LimitError> {
        limits.validate("(unnamed)")?;
        Ok(GroupPolicy {
            max_in_flight: limits.in_flight_limit(),
            max_starts: limits.starts_limit().map_or(0, |(n, _)| n),
            window: limits.starts_limit().map_or(Duration::ZERO, |(_, w)| w),
            in_flight: 0,
            starts: VecDeque::new(),
            bucket: limits
                .rate_limit()
                .map(|(n, per, burst)| Bucket::new(n, per, burst)),
        })
    }

    /// Whether a start window is configured.
    pub(crate) fn windowed(&self) -> bool {
        self.max_starts > 0
    }

    /// Whether decisions depend on `now` (a window or a rate is set).
    #[inline]
    pub(crate) fn timed(&self) -> bool {
        self.windowed() || self.bucket.is_some()
    }

    /// Returns to the pool every token whose window has passed by `now`.
    fn expire(&mut self, now: Instant) {
        // A start leaves the window once `start + window <= now`: once it
        // is at or before `now - window`, one subtraction for all of them
        // (while that instant is before the clock's origin, none has).
        let Some(cutoff) = now.checked_sub(self.window) else {
            return;
        };
        while self.starts.front().is_some_and(|&oldest| oldest <= cutoff) {
            self.starts.pop_front();
        }
    }

    /// Whether a call could start at `now`, without starting it: the
    /// in-flight limit first (no instant: a slot frees when a call ends),
    /// then the window and the rate (the later of their instants). A
    /// caller refused by the rate is taken to wait for the instant it is
    /// told (so if it wakes a little late, the grid holds).
    pub fn decide(&mut self, now: Instant) -> Decision {
        self.decision(now, true)
    }

    /// [`decide`](Self::decide) for a look that nobody will wait on
    /// (introspection, `try_acquire`): nothing is promised.
    pub fn peek(&mut self, now: Instant) -> Decision {
        self.decision(now, false)
    }

    #[inline]
    fn decision(&mut self, now: Instant, promise: bool) -> Decision {
        if self.max_in_flight.is_some_and(|max| self.in_flight >= max) {
            return Decision::WaitUntil(Refusal::new(Reason::InFlight, None));
        }
        if !self.timed() {
            return Decision::Proceed;
        }
        match self.clock_blocks(now, promise) {
            None => Decision::Proceed,
            Some(refusal) => Decision::WaitUntil(refusal),
        }
    }

    /// What the window and the rate say at `now`, ignoring slots.
    fn clock_blocks(&mut self, now: Instant, promise: bool) -> Option<Refusal> {
        let window = self
            .window_opens(now)
            .map(|at| Refusal::new(Reason::Window, Some(at)));
        let rate = self
            .bucket
            .as_mut()
            .and_then(|b| b.blocked_until(now, promise))
            .map(|at| Refusal::new(Reason::Rate, Some(at)));
        match (window, rate) {
            (Some(w), Some(r)) => Some(if r.until > w.until { r } else { w }),
            (w, r) => w.or(r),
        }
    }

    /// Starts a call at `now` if every limit allows it: takes an in-flight
    /// slot, spends a start token and moves the bucket on. A refusal here
    /// promises nothing: a caller that comes back later is a newcomer.
    ///
    /// # Errors
    /// The [`Refusal`] when a limit blocks; nothing is taken then.
    pub fn try_acquire(&mut self, now: Instant) -> Result<(), Refusal> {
        self.peek(now).into_result()?;
        self.commit(now);
        Ok(())
    }

    /// Takes a slot and a token unconditionally; call only after
    /// [`decide`](Self::decide) said [`Decision::Proceed`] at the same
    /// `now`.
    pub fn commit(&mut self, now: Instant) {
        self.in_flight += 1;
        if self.windowed() {
            self.starts.push_back(now);
        }
        if let Some(bucket) = &mut self.bucket {
            bucket.commit(now);
        }
    }

    /// Ends a call: frees its in-flight slot. Its start token returns on its
    /// own when the window passes.
    pub fn release(&mut self) {
        debug_assert!(self.in_flight > 0, "release without a matching acquire");
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Calls holding a slot now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// Starts still inside the window at `now`.
    pub fn starts_in_window(&mut self, now: Instant) -> u32 {
        if !self.windowed() {
            return 0;
        }
        self.expire(now);
        self.starts.len() as u32
    }

    /// The earliest instant at or after `now` when the window and the rate
    /// would admit a start (`now` itself when they do). In-flight slots
    /// are not considered: when one frees is not a matter of time.
    pub fn next_window_opening(&mut self, now: Instant) -> Instant {
        self.clock_blocks(now, false)
            .and_then(|r| r.until)
            .unwrap_or(now)
    }

    fn window_opens(&mut self, now: Instant) -> Option<Instant> {
        if !self.windowed() {
            return None;
        }
        self.expire(now);
        if self.starts.len() >= self.max_starts as usize {
            self.starts
                .front()
                .map(|&oldest| instant_after(oldest, self.window))
        } else {
            None
        }
    }

    /// The limits this policy enforces.
    pub fn limits(&self) -> Limits {
        let mut limits = match &self.bucket {
            Some(b) => Limits::rate(b.n, b.per).burst(b.burst),
            None => Limits::new(),
        };
        if let Some(max) = self.max_in_flight {
            limits = limits.max_in_flight(max);
        }
        if self.windowed() {
            limits = limits.max_starts(self.max_starts, self.window);
        }
        limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_kit::ms;

    #[test]
    fn the_issue_example_is_a_sliding_window_on_start_times() {
        // 2 per 300 ms; arrivals at 0, 100, 150, 160 start at 0, 100, 300, 400.
        let t0 = crate::rt::Timer::now(&crate::rt::SystemTimer::new());
        let mut p = GroupPolicy::new(Limits::new().max_starts(2, ms(300))).unwrap();
        assert_eq!(p.try_acquire(t0), Ok(()));
        assert_eq!(p.try_acquire(t0 + ms(100)), Ok(()));
        let r = p.try_acquire(t0 + ms(150)).unwrap_err();
        assert_eq!((r.reason, r.until), (Reason::Window, Some(t0 + ms(300))));
        assert_eq!(
            p.try_acquire(t0 + ms(299)).unwrap_err().until,
            Some(t0 + ms(300))
        );
        assert_eq!(p.try_acquire(t0 + ms(300)), Ok(()));
        let r = p.try_acquire(t0 + ms(300)).unwrap_err();
        assert_eq!(r.until, Some(t0 + ms(400)));
        assert_eq!(p.try_acquire(t0 + ms(400)), Ok(()));
        // Tokens return however long calls run: in flight is unlimited here.
        assert_eq!(p.in_flight(), 4);
    }

    #[test]
    fn in_flight_blocks_until_a_release() {
        let t0 = crate::rt::Timer::now(&crate::rt::SystemTimer::new());
        let mut p = GroupPolicy::new(Limits::new().max_in_flight(2)).unwrap();
        p.try_acquire(t0).unwrap();
        p.try_acquire(t0).unwrap();
        let r = p.try_acquire(t0 + ms(10_000)).unwrap_err();
        assert_eq!((r.reason, r.until), (Reason::InFlight, None));
        p.release();
        assert_eq!(p.in_flight(), 1);
        assert_eq!(p.try_acquire(t0 + ms(1)), Ok(()));
    }

    #[test]
    fn both_limits_and_a_refusal_takes_nothing() {
        let t0 = crate::rt::Timer::now(&crate::rt::SystemTimer::new());
        let mut p =
            GroupPolicy::new(Limits::new().max_in_flight(4).max_starts(3, ms(1000))).unwrap();
        for i in 0..3 {
            p.try_acquire(t0 + ms(i)).unwrap();
        }
        let r = p.try_acquire(t0 + ms(5)).unwrap_err();
        assert_eq!(r.reason, Reason::Window);
        assert_eq!(p.in_flight(), 3, "a refused start takes no slot");
        assert_eq!(p.starts_in_window(t0 + ms(5)), 3);
        assert_eq!(p.next_window_opening(t0 + ms(5)), t0 + ms(1000));
        assert_eq!(p.starts_in_window(t0 + ms(1000)), 2);
        p.try_acquire(t0 + ms(1000)).unwrap();
        let r = p.try_acquire(t0 + ms(2000)).unwrap_err();
        assert_eq!(r.reason, Reason::InFlight, "in-flight is checked first");
    }

    #[test]
    fn limits_that_admit_nothing_are_refused() {
        let err = GroupPolicy::new(Limits::new().max_in_flight(0)).unwrap_err();
        assert!(matches!(err, LimitError::ZeroInFlight { .. }));
        let err = GroupPolicy::new(Limits::new().max_starts(0, ms(10))).unwrap_err();
        assert!(err.to_string().contains("0 starts per 10ms"));
        // A zero window means no rate limit at all, whatever the count.
        assert!(GroupPolicy::new(Limits::new().max_starts(0, Duration::ZERO)).is_ok());
    }

    #[test]
    fn no_limits_never_blocks() {
        let t0 = crate::rt::Timer::now(&crate::rt::SystemTimer::new());
        let mut p = GroupPolicy::new(Limits::new()).unwrap();
        for _ in 0..10_000 {
            p.try_acquire(t0).unwrap();
        }
        assert_eq!(p.starts_in_window(t0), 0);
        assert_eq!(p.next_window_opening(t0), t0);
    }
}
