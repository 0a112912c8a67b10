//! Which errors a `Loop` reconnects after ([`ErrorKinds`]), and the
//! exponential backoff between reconnect attempts ([`ReconnectBackoff`]).

use std::any::TypeId;
use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::rt::RuntimeRng;

type Test = Arc<dyn Fn(&(dyn Error + 'static)) -> bool + Send + Sync>;

#[derive(Clone)]
struct Kind {
    type_id: Option<TypeId>,
    name: &'static str,
    test: Test,
}

/// The error kinds a loop handles by retrying the iteration (discord's
/// exception types). An error matches a kind when it, or an error in its
/// `source()` chain, is of that type, or when a predicate added with
/// [`handle_if`](Self::handle_if) holds.
///
/// The default set: `std::io::Error`, [`Elapsed`](crate::rt::Elapsed)
/// (timeouts) and [`AttemptTimedOut`](crate::backoff::AttemptTimedOut).
#[derive(Clone)]
pub struct ErrorKinds {
    kinds: Vec<Kind>,
}

impl Default for ErrorKinds {
    fn default() -> Self {
        let mut kinds = ErrorKinds { kinds: Vec::new() };
        kinds.handle::<std::io::Error>();
        kinds.handle::<crate::rt::Elapsed>();
        kinds.handle::<crate::backoff::AttemptTimedOut>();
        kinds
    }
}

fn chain_has<E: Error + 'static>(e: &(dyn Error + 'static)) -> bool {
    std::iter::successors(Some(e), |&e| e.source()).any(|e| e.is::<E>())
}

impl ErrorKinds {
    /// No kinds at all: every error ends the loop.
    pub fn none() -> Self {
        ErrorKinds { kinds: Vec::new() }
    }

    /// Handles errors of type `E` (once; adding it again changes nothing).
    pub fn handle<E: Error + 'static>(&mut self) {
        let id = TypeId::of::<E>();
        if self.kinds.iter().any(|k| k.type_id == Some(id)) {
            return;
        }
        self.kinds.push(Kind {
            type_id: Some(id),
            name: std::any::type_name::<E>(),
            test: Arc::new(chain_has::<E>),
        });
    }

    /// Handles errors for which `predicate` holds.
    pub fn handle_if(
        &mut self,
        predicate: impl Fn(&(dyn Error + 'static)) -> bool + Send + Sync + 'static,
    ) {
        self.kinds.push(Kind {
            type_id: None,
            name: "predicate",
            test: Arc::new(predicate),
        });
    }

    /// Stops handling errors of type `E`; returns whether it was handled.
    pub fn remove<E: Error + 'static>(&mut self) -> bool {
        let id = TypeId::of::<E>();
        let before = self.kinds.len();
        self.kinds.retain(|k| k.type_id != Some(id));
        before != self.kinds.len()
    }

    /// Handles nothing any more.
    pub fn clear(&mut self) {
        self.kinds.clear();
    }

    /// Whether `error` is of a handled kind.
    pub fn matches(&self, error: &(dyn Error + 'static)) -> bool {
        self.kinds.iter().any(|k| (k.test)(error))
    }
}

impl fmt::Debug for ErrorKinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.kinds.iter().map(|k| k.name))
            .finish()
    }
}

/// discord.ext.tasks' reconnect backoff: the k-th delay in a row is
/// uniform in `[0, base·2^min(k, 10)]`; the count starts again when more
/// than `base·2¹¹` passed since the previous delay.
///
/// # Examples
///
/// ```
/// use machina_core::bot::ReconnectBackoff;
/// use machina_core::rt::RuntimeRng;
/// use std::time::{Duration, Instant};
///
/// let mut backoff = ReconnectBackoff::new(Duration::from_secs(1));
/// let rng = RuntimeRng::from_seed(1);
/// let t0 = Instant::now();
/// for k in 1..=12u32 {
///     let delay = backoff.delay(t0, &rng);
///     assert!(delay <= Duration::from_secs(1 << k.min(10)));
/// }
/// ```
#[derive(Debug, Clone)]
pub struct ReconnectBackoff {
    base: Duration,
    exp: u32,
    last: Option<Instant>,
}

impl ReconnectBackoff {
    const MAX_EXP: u32 = 10;

    /// A backoff with unit `base` (discord: 1 s).
    pub fn new(base: Duration) -> Self {
        ReconnectBackoff {
            base,
            exp: 0,
            last: None,
        }
    }

    /// The upper bound of the next delay if it were asked for at `now`.
    pub fn next_bound(&self, now: Instant) -> Duration {
        self.base * (1 << self.next_exp(now))
    }

    fn next_exp(&self, now: Instant) -> u32 {
        let reset_after = self.base * (1 << (Self::MAX_EXP + 1));
        let exp = match self.last {
            Some(last) if now.saturating_duration_since(last) > reset_after => 0,
            _ => self.exp,
        };
        (exp + 1).min(Self::MAX_EXP)
    }

    /// The next delay, drawn from `rng`, asked for at `now`.
    pub fn delay(&mut self, now: Instant, rng: &RuntimeRng) -> Duration {
        self.exp = self.next_exp(now);
        self.last = Some(now);
        rng.duration_between(Duration::ZERO, self.base * (1 << self.exp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_double_up_to_the_cap_then_reset_after_a_quiet_spell() {
        let base = Duration::from_millis(10);
        let t0 = crate::rt::Timer::now(&crate::rt::SystemTimer::new());
        let mut b = ReconnectBackoff::new(base);
        let bounds: Vec<_> = (0..12)
            .map(|_| {
                let bound = b.next_bound(t0);
                b.delay(t0, &RuntimeRng::from_seed(3));
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
            let rng = RuntimeRng::from_seed(seed);
            let mut b = ReconnectBackoff::new(base);
            (0..15).map(|_| b.delay(t0, &rng)).collect::<Vec<_>>()
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
    }
}
