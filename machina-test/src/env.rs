//! [`Env`] and [`Kind`]: where a test body runs, and assertions on time
//! that are exact on the mock runtime and coarse on a real clock.

use std::time::Duration;

/// Which runtime a body is running on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// `machina_core::testing::MockRuntime`: virtual time.
    Mock,
    /// tokio's multi-thread runtime, two workers.
    TokioMultiThread,
    /// tokio's current-thread runtime.
    TokioCurrentThread,
    /// smol: an `async_executor::Executor` driven by the test's thread.
    Smol,
    /// async-std's global executor.
    AsyncStd,
}

/// What a body knows about where it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Env {
    /// The runtime.
    pub kind: Kind,
}

/// How far past the expected instant a real clock may be before an
/// assertion calls it absurd.
const REAL_CLOCK_SLACK: Duration = Duration::from_secs(5);

/// How far before the expected instant a decision read on a real
/// runtime's fast counter (`machina_core::rt::FastClock`) may fall: a
/// fraction of a microsecond of anchoring error on each of two readings,
/// with room to spare.
pub const FAST_CLOCK_SLACK: Duration = Duration::from_micros(2);

impl Env {
    /// An `Env` for `kind` (the runners make one for each body).
    pub fn new(kind: Kind) -> Self {
        Env { kind }
    }

    /// Whether time is virtual (exact) rather than real (coarse).
    pub fn is_virtual(&self) -> bool {
        self.kind == Kind::Mock
    }

    /// On the mock runtime `actual == expected`; on a real one
    /// `actual >= expected` (and less than 5 s more).
    ///
    /// # Panics
    /// When the assertion fails, like `assert!`.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_test::{Env, Kind};
    /// use std::time::Duration;
    ///
    /// let ms = Duration::from_millis;
    /// Env::new(Kind::Smol).assert_elapsed(ms(12), ms(10));
    /// Env::new(Kind::Mock).assert_elapsed(ms(10), ms(10));
    /// ```
    #[track_caller]
    pub fn assert_elapsed(&self, actual: Duration, expected: Duration) {
        if self.is_virtual() {
            assert_eq!(actual, expected, "exact virtual time");
        } else {
            assert!(
                actual >= expected,
                "{actual:?} should be at least {expected:?}"
            );
            assert!(
                actual < expected + REAL_CLOCK_SLACK,
                "{actual:?} is far past {expected:?}"
            );
        }
    }

    /// On the mock runtime `actual == expected`; on a real one `actual`
    /// lies in `[expected, expected + slack]`.
    ///
    /// # Panics
    /// When the assertion fails, like `assert!`.
    #[track_caller]
    pub fn assert_about(&self, actual: Duration, expected: Duration, slack: Duration) {
        if self.is_virtual() {
            assert_eq!(actual, expected, "exact virtual time");
        } else {
            assert!(
                actual >= expected && actual <= expected + slack,
                "{actual:?} should be within [{expected:?}, {expected:?} + {slack:?}]"
            );
        }
    }

    /// [`assert_elapsed`](Self::assert_elapsed) for a wait that a group's
    /// window or rate decided on the runtime's fast counter: on a real
    /// runtime `actual` may fall short of `expected` by
    /// [`FAST_CLOCK_SLACK`]; on the mock runtime it is exact.
    ///
    /// # Panics
    /// When the assertion fails, like `assert!`.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_test::{Env, Kind};
    /// use std::time::Duration;
    ///
    /// let (ms, us) = (Duration::from_millis, Duration::from_micros);
    /// Env::new(Kind::Smol).assert_elapsed_on_counter(ms(10) - us(1), ms(10));
    /// Env::new(Kind::Mock).assert_elapsed_on_counter(ms(10), ms(10));
    /// ```
    #[track_caller]
    pub fn assert_elapsed_on_counter(&self, actual: Duration, expected: Duration) {
        if self.is_virtual() {
            assert_eq!(actual, expected, "exact virtual time");
        } else {
            self.assert_elapsed(actual + FAST_CLOCK_SLACK, expected);
        }
    }
}
