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

/// What stops a call from starting now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Blocked {
    /// Every in-flight slot is held; a slot frees when a call ends, which no
    /// clock can predict.
    InFlight,
    /// Every start token of the window is spent; the oldest returns at a
    /// known instant.
    Window,
    /// Other callers are already waiting, and are served first.
    Queue,
}

/// A refusal: why a call cannot start now, and the earliest instant it
/// could (when that is known). This is also what a `Retry-After` answer
/// needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NotUntil {
    /// What blocks the call.
    pub cause: Blocked,
    /// The earliest instant a start can succeed; `None` when that depends
    /// on a running call ending or on waiters ahead.
    pub earliest: Option<Instant>,
}

impl std::fmt::Display for NotUntil {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.cause {
            Blocked::InFlight => f.write_str("every in-flight slot is taken"),
            Blocked::Window => f.write_str("every start of the current window is spent"),
            Blocked::Queue => f.write_str("other callers are waiting first"),
        }
    }
}

/// The state of one group's two limits: calls in flight, and start times
/// still inside the sliding window.
///
/// # The window
///
/// Each start consumes one of `max_starts` tokens, and that token returns
/// exactly `window` after *that start*, however long the call runs. With 2
/// starts per 300 ms, calls arriving at 0, 100, 150 and 160 ms start at 0,
/// 100, 300 and 400 ms.
///
/// # Examples
///
/// ```
/// use machina_core::limit::{GroupPolicy, Limits};
/// use std::time::{Duration, Instant};
///
/// let ms = Duration::from_millis;
/// let mut policy = GroupPolicy::new(Limits::new().max_starts(2, ms(300))).unwrap();
/// let t0 = Instant::now();
/// assert!(policy.try_acquire(t0).is_ok());
/// assert!(policy.try_acquire(t0 + ms(100)).is_ok());
/// let refused = policy.try_acquire(t0 + ms(150)).unwrap_err();
/// assert_eq!(refused.earliest, Some(t0 + ms(300)));
/// assert!(policy.try_acquire(t0 + ms(300)).is_ok());
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
        })
    }

    /// Whether a start window is configured: only then do decisions
    /// depend on `now`.
    pub(crate) fn windowed(&self) -> bool {
        self.max_starts > 0
    }

    /// Returns to the pool every token whose window has passed by `now`.
    fn expire(&mut self, now: Instant) {
        while let Some(&oldest) = self.starts.front() {
            if oldest + self.window > now {
                break;
            }
            self.starts.pop_front();
        }
    }

    /// Whether a call could start at `now`, without starting it.
    ///
    /// # Errors
    /// [`NotUntil`] naming the limit that blocks, in-flight first.
    pub fn check(&mut self, now: Instant) -> Result<(), NotUntil> {
        if self.max_in_flight.is_some_and(|max| self.in_flight >= max) {
            return Err(NotUntil {
                cause: Blocked::InFlight,
                earliest: None,
            });
        }
        if self.windowed() {
            self.expire(now);
            if self.starts.len() >= self.max_starts as usize {
                return Err(NotUntil {
                    cause: Blocked::Window,
                    earliest: self.starts.front().map(|&oldest| oldest + self.window),
                });
            }
        }
        Ok(())
    }

    /// Starts a call at `now` if both limits allow it: takes an in-flight
    /// slot and spends a start token.
    ///
    /// # Errors
    /// [`NotUntil`] when a limit blocks; nothing is taken then.
    pub fn try_acquire(&mut self, now: Instant) -> Result<(), NotUntil> {
        self.check(now)?;
        self.commit(now);
        Ok(())
    }

    /// Takes a slot and a token unconditionally; call only after a
    /// successful [`check`](Self::check) at the same `now`.
    pub(crate) fn commit(&mut self, now: Instant) {
        self.in_flight += 1;
        if self.windowed() {
            self.starts.push_back(now);
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

    /// The earliest instant at or after `now` when the window would admit
    /// a start (`now` itself when a token is free). In-flight slots are not
    /// considered: when one frees is not a matter of time.
    pub fn next_window_opening(&mut self, now: Instant) -> Instant {
        match self.check_window(now) {
            Some(at) => at,
            None => now,
        }
    }

    fn check_window(&mut self, now: Instant) -> Option<Instant> {
        if !self.windowed() {
            return None;
        }
        self.expire(now);
        if self.starts.len() >= self.max_starts as usize {
            self.starts.front().map(|&oldest| oldest + self.window)
        } else {
            None
        }
    }

    /// The limits this policy enforces.
    pub fn limits(&self) -> Limits {
        let mut limits = Limits::new();
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

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_issue_example_is_a_sliding_window_on_start_times() {
        // 2 per 300 ms; arrivals at 0, 100, 150, 160 start at 0, 100, 300, 400.
        let t0 = crate::rt::Timer::now(&crate::rt::SystemTimer::new());
        let mut p = GroupPolicy::new(Limits::new().max_starts(2, ms(300))).unwrap();
        assert_eq!(p.try_acquire(t0), Ok(()));
        assert_eq!(p.try_acquire(t0 + ms(100)), Ok(()));
        let r = p.try_acquire(t0 + ms(150)).unwrap_err();
        assert_eq!((r.cause, r.earliest), (Blocked::Window, Some(t0 + ms(300))));
        assert_eq!(
            p.try_acquire(t0 + ms(299)).unwrap_err().earliest,
            Some(t0 + ms(300))
        );
        assert_eq!(p.try_acquire(t0 + ms(300)), Ok(()));
        let r = p.try_acquire(t0 + ms(300)).unwrap_err();
        assert_eq!(r.earliest, Some(t0 + ms(400)));
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
        assert_eq!((r.cause, r.earliest), (Blocked::InFlight, None));
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
        assert_eq!(r.cause, Blocked::Window);
        assert_eq!(p.in_flight(), 3, "a refused start takes no slot");
        assert_eq!(p.starts_in_window(t0 + ms(5)), 3);
        assert_eq!(p.next_window_opening(t0 + ms(5)), t0 + ms(1000));
        assert_eq!(p.starts_in_window(t0 + ms(1000)), 2);
        p.try_acquire(t0 + ms(1000)).unwrap();
        let r = p.try_acquire(t0 + ms(2000)).unwrap_err();
        assert_eq!(r.cause, Blocked::InFlight, "in-flight is checked first");
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
