//! What a concurrent group limits: [`Limits`], checked when a group is
//! made.

use std::time::Duration;

use super::error::LimitError;

/// The limits of a concurrent group; any combination may be set.
///
/// - **max in flight** (exmachina `entire_calls_limit`): how many calls may
///   hold a slot at once; unset = unlimited.
/// - **max starts per window** (exmachina `time_calls_limit` per
///   `time_limit`): a sliding window on start times; a zero window means no
///   rate limit.
/// - **rate** ([`Limits::rate`], with [`burst`](Limits::burst)): a token
///   bucket, `n` starts per `per` spread evenly (one every `per / n`), up
///   to `burst` more at once after a quiet spell. It is GCRA on absolute
///   theoretical arrival times, so a waiting caller that wakes a little
///   late (less than an interval) does not push the later ones back: the
///   starts stay on their grid, with no drift.
///
/// The clock a window or a rate reads: on a runtime with a fast counter
/// ([`Runtime::fast_clock`](crate::rt::Runtime::fast_clock): smol,
/// async-std, a multi-thread tokio runtime) decisions read the CPU's time
/// stamp counter, anchored to the monotonic clock every millisecond (see
/// [`FastClock`](crate::rt::FastClock)): a few nanoseconds per start
/// instead of tens, and within a fraction of a microsecond of `Instant`'s
/// time (so a window may open, and a refusal's `until` fall, that much
/// before `Instant` says; a waiter woken by its timer is never sent back
/// to sleep by it). A bucket whose interval is a whole number of
/// nanoseconds (100 per second, not 3) counts on the counter's nanoseconds
/// directly; a window, or another rate, on instants made from them
/// ([`FastClock::now`](crate::rt::FastClock::now)). On the mock runtime
/// and a current-thread tokio runtime (whose clocks may be paused)
/// decisions are read on the runtime's `now()`, exactly.
///
/// # Examples
///
/// ```
/// use machina_core::limit::Limits;
/// use std::time::Duration;
///
/// // exmachina's README group: 4 in flight, 3 starts per second.
/// let limits = Limits::new().max_in_flight(4).max_starts(3, Duration::from_secs(1));
/// assert_eq!(limits.in_flight_limit(), Some(4));
/// assert_eq!(limits.starts_limit(), Some((3, Duration::from_secs(1))));
/// ```
///
/// A token bucket of 50 starts per second, no burst, at most 4 in flight:
///
/// ```
/// use machina_core::limit::Limits;
/// use std::time::Duration;
///
/// let limits = Limits::rate(50, Duration::from_secs(1)).burst(0).max_in_flight(4);
/// assert_eq!(limits.rate_limit(), Some((50, Duration::from_secs(1), 0)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Limits {
    max_in_flight: Option<u32>,
    max_starts: Option<(u32, Duration)>,
    rate: Option<(u32, Duration)>,
    burst: Option<u32>,
}

impl Limits {
    /// No limits at all.
    pub fn new() -> Self {
        Limits::default()
    }

    /// At most `max` calls in flight at once (0 is refused when the group is
    /// made).
    pub fn max_in_flight(mut self, max: u32) -> Self {
        self.max_in_flight = Some(max);
        self
    }

    /// At most `max` starts in any `window`; a zero `window` removes the rate
    /// limit (exmachina's `time_limit=0`). Zero starts over a non-zero
    /// window is refused when the group is made.
    pub fn max_starts(mut self, max: u32, window: Duration) -> Self {
        self.max_starts = if window.is_zero() {
            None
        } else {
            Some((max, window))
        };
        self
    }

    /// A token bucket: `n` starts per `per`, evenly spaced (see the type's
    /// docs). Combine with [`max_in_flight`](Self::max_in_flight) and
    /// [`burst`](Self::burst); zero `n` or a zero `per` is refused when the
    /// group is made.
    pub fn rate(n: u32, per: Duration) -> Self {
        Limits {
            rate: Some((n, per)),
            ..Limits::default()
        }
    }

    /// Adds a token bucket to these limits; see [`rate`](Self::rate).
    pub fn with_rate(mut self, n: u32, per: Duration) -> Self {
        self.rate = Some((n, per));
        self
    }

    /// Lets up to `extra` starts go at once beyond the rate after a quiet
    /// spell (default 0: one start per `per / n` slot of the grid). With
    /// burst 0 two starts can still come closer than `per / n` by up to the
    /// lateness of a waiter's wake-up (less than one interval), because
    /// the grid holds rather than drifts; no more starts than slots are
    /// ever made. Refused when the group is made if there is no rate.
    pub fn burst(mut self, extra: u32) -> Self {
        self.burst = Some(extra);
        self
    }

    /// The token bucket (starts, per, burst), if any.
    pub fn rate_limit(&self) -> Option<(u32, Duration, u32)> {
        self.rate.map(|(n, per)| (n, per, self.burst.unwrap_or(0)))
    }

    /// The in-flight limit, if any.
    pub fn in_flight_limit(&self) -> Option<u32> {
        self.max_in_flight
    }

    /// The start-rate limit (starts, window), if any.
    pub fn starts_limit(&self) -> Option<(u32, Duration)> {
        self.max_starts
    }

    /// Checks that these limits could ever admit a call.
    ///
    /// # Errors
    /// [`LimitError::ZeroInFlight`], [`LimitError::ZeroStarts`],
    /// [`LimitError::ZeroRate`] or [`LimitError::BurstWithoutRate`], naming
    /// `group`.
    pub fn validate(&self, group: &str) -> Result<(), LimitError> {
        if self.max_in_flight == Some(0) {
            return Err(LimitError::ZeroInFlight {
                group: group.to_owned(),
            });
        }
        if let Some((0, window)) = self.max_starts {
            return Err(LimitError::ZeroStarts {
                group: group.to_owned(),
                window,
            });
        }
        match (self.rate, self.burst) {
            (Some((n, per)), _) if n == 0 || per.is_zero() => Err(LimitError::ZeroRate {
                group: group.to_owned(),
                n,
                per,
            }),
            (None, Some(_)) => Err(LimitError::BurstWithoutRate {
                group: group.to_owned(),
            }),
            _ => Ok(()),
        }
    }
}
