//! Which errors a `Loop` reconnects after ([`ErrorKinds`]), and the
//! exponential backoff between reconnect attempts ([`ReconnectBackoff`]).

use std::error::Error;
use std::fmt;
use std::time::{Duration, Instant};

use crate::error::ErrorMatcher;
use crate::rt::RuntimeRng;
use crate::waits::{Wait, Waits};

/// The error kinds a loop handles by retrying the iteration (discord's
/// exception types): an [`ErrorMatcher`] — an error matches a kind when
/// it, or an error in its `source()` chain, is of that type, or when a
/// predicate added with [`handle_if`](Self::handle_if) holds.
///
/// The default set: `std::io::Error`, [`Elapsed`](crate::rt::Elapsed)
/// (timeouts) and [`AttemptTimedOut`](crate::call::AttemptTimedOut).
#[derive(Clone)]
pub struct ErrorKinds {
    matcher: ErrorMatcher,
}

impl Default for ErrorKinds {
    fn default() -> Self {
        ErrorKinds {
            matcher: ErrorMatcher::of::<std::io::Error>()
                .or_type::<crate::rt::Elapsed>()
                .or_type::<crate::call::AttemptTimedOut>(),
        }
    }
}

impl ErrorKinds {
    /// No kinds at all: every error ends the loop.
    pub fn none() -> Self {
        ErrorKinds {
            matcher: ErrorMatcher::none(),
        }
    }

    /// Handles errors of type `E` (once; adding it again changes nothing).
    pub fn handle<E: Error + 'static>(&mut self) {
        self.matcher.add_type::<E>();
    }

    /// Handles errors for which `predicate` holds.
    pub fn handle_if(
        &mut self,
        predicate: impl Fn(&(dyn Error + 'static)) -> bool + Send + Sync + 'static,
    ) {
        self.matcher.add_when(predicate);
    }

    /// Stops handling errors of type `E`; returns whether it was handled.
    pub fn remove<E: Error + 'static>(&mut self) -> bool {
        self.matcher.remove_type::<E>()
    }

    /// Handles nothing any more.
    pub fn clear(&mut self) {
        self.matcher.clear();
    }

    /// Whether `error` is of a handled kind.
    pub fn matches(&self, error: &(dyn Error + 'static)) -> bool {
        self.matcher.matches(error)
    }

    /// The kinds as a matcher.
    pub fn matcher(&self) -> &ErrorMatcher {
        &self.matcher
    }
}

impl fmt::Debug for ErrorKinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.matcher, f)
    }
}

/// discord.ext.tasks' reconnect backoff: the k-th delay in a row is
/// uniform in `[0, base·2^min(k, 10)]` (a [`Wait::FullJitter`] sequence);
/// the sequence starts again when more than `base·2¹¹` passed since the
/// previous delay.
///
/// # Examples
///
/// ```
/// use machina_core::loops::ReconnectBackoff;
/// use machina_core::rt::RuntimeRng;
/// use std::time::{Duration, Instant};
///
/// let mut backoff = ReconnectBackoff::new(Duration::from_secs(1), RuntimeRng::from_seed(1));
/// let t0 = Instant::now();
/// for k in 1..=12u32 {
///     let delay = backoff.delay(t0);
///     assert!(delay <= Duration::from_secs(1 << k.min(10)));
/// }
/// ```
#[derive(Debug, Clone)]
pub struct ReconnectBackoff {
    base: Duration,
    waits: Waits,
    last: Option<Instant>,
}

impl ReconnectBackoff {
    const MAX_EXP: u32 = 10;

    /// A backoff with unit `base` (discord: 1 s), drawing from `rng`.
    pub fn new(base: Duration, rng: RuntimeRng) -> Self {
        ReconnectBackoff {
            base,
            waits: Wait::FullJitter {
                base,
                cap: base.saturating_mul(1 << Self::MAX_EXP),
            }
            .waits(rng),
            last: None,
        }
    }

    /// Whether a delay asked for at `now` starts the sequence again.
    fn quiet_since_last(&self, now: Instant) -> bool {
        let reset_after = self.base.saturating_mul(1 << (Self::MAX_EXP + 1));
        self.last
            .is_some_and(|last| now.saturating_duration_since(last) > reset_after)
    }

    /// The upper bound of the next delay if it were asked for at `now`.
    pub fn next_bound(&self, now: Instant) -> Duration {
        let k = if self.quiet_since_last(now) {
            1
        } else {
            (self.waits.produced() + 1).min(Self::MAX_EXP)
        };
        self.base.saturating_mul(1 << k)
    }

    /// The next delay, asked for at `now`.
    pub fn delay(&mut self, now: Instant) -> Duration {
        if self.quiet_since_last(now) {
            self.waits.reset();
        }
        self.last = Some(now);
        self.waits.next().unwrap_or(self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_double_up_to_the_cap_then_reset_after_a_quiet_spell() {
        let base = Duration::from_millis(10);
        let t0 = crate::rt::Timer::now(&crate::rt::SystemTimer::new());
        let mut b = ReconnectBackoff::new(base, RuntimeRng::from_seed(3));
        let bounds: Vec<_> = (0..12)
            .map(|_| {
                let bound = b.next_bound(t0);
                b.delay(t0);
                bound
            })
            .collect();
        let expected: Vec<_> = (1..=12u32).map(|k| base * (1 << k.min(10))).collect();
        assert_eq!(bounds, expected);
        // More than base·2¹¹ = 20.48 s later, the count starts again.
        let later = t0 + base * 2048 + Duration::from_nanos(1);
        assert_eq!(b.next_bound(later), base * 2);
        assert_eq!(
            b.next_bound(t0 + base * 2048),
            base * 1024,
            "not more than: no reset"
        );
    }

    #[test]
    fn delays_stay_in_bounds_and_replay_with_a_seed() {
        let base = Duration::from_secs(1);
        let t0 = crate::rt::Timer::now(&crate::rt::SystemTimer::new());
        let run = |seed| {
            let mut b = ReconnectBackoff::new(base, RuntimeRng::from_seed(seed));
            (0..15).map(|_| b.delay(t0)).collect::<Vec<_>>()
        };
        let a = run(5);
        assert_eq!(a, run(5));
        assert_ne!(a, run(6));
        for (k, d) in a.iter().enumerate() {
            assert!(*d <= base * (1 << (k as u32 + 1).min(10)));
        }
    }

    #[test]
    fn kinds_match_types_through_sources_and_can_be_removed() {
        #[derive(Debug, thiserror::Error)]
        #[error("wrapped")]
        struct Wrapped(#[source] std::io::Error);
        #[derive(Debug, thiserror::Error)]
        #[error("other")]
        struct Other;

        let mut kinds = ErrorKinds::default();
        assert!(kinds.matches(&std::io::Error::other("x")));
        assert!(kinds.matches(&Wrapped(std::io::Error::other("x"))));
        assert!(!kinds.matches(&Other));
        kinds.handle_if(|e| e.to_string() == "other");
        assert!(kinds.matches(&Other));
        assert!(kinds.remove::<std::io::Error>());
        assert!(!kinds.remove::<std::io::Error>());
        assert!(!kinds.matches(&std::io::Error::other("x")));
        kinds.clear();
        assert!(!kinds.matches(&Other));
        assert_eq!(format!("{:?}", ErrorKinds::none()), "[]");
        // After the reset, the sequence starts again from 2·base.
        let mut b = ReconnectBackoff::new(Duration::from_millis(10), RuntimeRng::from_seed(1));
        let t0 = crate::rt::Timer::now(&crate::rt::SystemTimer::new());
        for _ in 0..5 {
            b.delay(t0);
        }
        let later = t0 + Duration::from_millis(10) * 2048 + Duration::from_nanos(1);
        assert!(b.delay(later) <= Duration::from_millis(20));
    }
}
