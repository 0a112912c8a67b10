//! When a periodic body runs: [`Schedule`], and the exmachina interval
//! strings it accepts ([`parse_interval`]).
//!
//! This module decides nothing at run time; the `Loop` engine follows the
//! schedule.

mod interval;

use std::time::Duration;

pub use interval::{IntervalError, parse_interval};

use crate::rt::MissedTick;

/// A value usable as an interval: a [`Duration`], or an exmachina string
/// such as `"1m30s"`.
pub trait IntoInterval {
    /// The interval.
    ///
    /// # Errors
    /// [`IntervalError`] for a malformed string.
    fn into_interval(self) -> Result<Duration, IntervalError>;
}

impl IntoInterval for Duration {
    fn into_interval(self) -> Result<Duration, IntervalError> {
        Ok(self)
    }
}

impl IntoInterval for &str {
    fn into_interval(self) -> Result<Duration, IntervalError> {
        parse_interval(self)
    }
}

impl IntoInterval for String {
    fn into_interval(self) -> Result<Duration, IntervalError> {
        parse_interval(&self)
    }
}

impl IntoInterval for &String {
    fn into_interval(self) -> Result<Duration, IntervalError> {
        parse_interval(self)
    }
}

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The interval string was malformed.
    #[error(transparent)]
    Interval(#[from] IntervalError),
    /// A fixed-rate schedule had a zero period.
    #[error(
        "invalid fixed-rate schedule: the period is zero, which would run back to back forever; use After(0s) for that, or a period such as 1s"
    )]
    ZeroPeriod,
}

/// When a periodic body runs again.
///
/// # Examples
///
/// ```
/// use machina_core::rt::MissedTick;
/// use machina_core::schedule::Schedule;
/// use std::time::Duration;
///
/// assert_eq!(Schedule::after("1s").unwrap(), Schedule::After(Duration::from_secs(1)));
/// let every = Schedule::fixed_rate("500ms", MissedTick::Skip).unwrap();
/// assert_eq!(every.interval(), Duration::from_millis(500));
/// assert!(Schedule::after("1x").is_err());
/// assert!(Schedule::fixed_rate(Duration::ZERO, MissedTick::Burst).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Schedule {
    /// Sleep `interval` after each body ends (exmachina's default mode);
    /// zero runs bodies back to back.
    After(Duration),
    /// Start bodies on the absolute grid `start + k·period`; what happens
    /// when a body overruns is the [`MissedTick`] policy's: `Burst` runs
    /// missed slots back to back (discord.ext.tasks), `Delay` restarts the
    /// grid (exmachina `entire`), `Skip` drops them.
    FixedRate(Duration, MissedTick),
}

impl Schedule {
    /// Sleep `interval` after each body.
    ///
    /// # Errors
    /// [`ScheduleError::Interval`] for a malformed string.
    pub fn after(interval: impl IntoInterval) -> Result<Self, ScheduleError> {
        Ok(Schedule::After(interval.into_interval()?))
    }

    /// Start bodies every `period` on a fixed grid.
    ///
    /// # Errors
    /// [`ScheduleError::Interval`] for a malformed string,
    /// [`ScheduleError::ZeroPeriod`] for a zero period.
    pub fn fixed_rate(
        period: impl IntoInterval,
        missed: MissedTick,
    ) -> Result<Self, ScheduleError> {
        let period = period.into_interval()?;
        if period.is_zero() {
            return Err(ScheduleError::ZeroPeriod);
        }
        Ok(Schedule::FixedRate(period, missed))
    }

    /// The interval or period.
    pub fn interval(&self) -> Duration {
        match *self {
            Schedule::After(d) | Schedule::FixedRate(d, _) => d,
        }
    }

    /// The same kind of schedule with another interval (for
    /// `change_interval`).
    ///
    /// # Errors
    /// [`ScheduleError::ZeroPeriod`] for a zero fixed-rate period.
    pub fn with_interval(&self, interval: Duration) -> Result<Self, ScheduleError> {
        match *self {
            Schedule::After(_) => Ok(Schedule::After(interval)),
            Schedule::FixedRate(_, missed) => Schedule::fixed_rate(interval, missed),
        }
    }
}
