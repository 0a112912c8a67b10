//! What a concurrent group limits: [`Limits`], checked when a group is
//! made.

use std::time::Duration;

use super::error::LimitError;

/// The two limits of a concurrent group.
///
/// - **max in flight** (exmachina `entire_calls_limit`): how many calls may
///   hold a slot at once; unset = unlimited.
/// - **max starts per window** (exmachina `time_calls_limit` per
///   `time_limit`): a sliding window on start times; a zero window means no
///   rate limit.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Limits {
    max_in_flight: Option<u32>,
    max_starts: Option<(u32, Duration)>,
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
    /// [`LimitError::ZeroInFlight`] or [`LimitError::ZeroStarts`], naming
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
        Ok(())
    }
}
