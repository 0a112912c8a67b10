//! When a periodic body runs: [`Schedule`], and the exmachina interval
//! strings it accepts ([`parse_interval`]).
//!
//! This module decides nothing at run time; the `Loop` engine follows the
//! schedule.

mod cron;
mod interval;

use std::time::Duration;

pub use cron::{CronError, CronSchedule};
pub use interval::{ParseIntervalError, parse_interval};

use crate::rt::MissedTick;

/// A value usable as an interval: a [`Duration`], or an exmachina string
/// such as `"1m30s"`.
pub trait IntoInterval {
    /// The interval.
    ///
    /// # Errors
    /// [`ParseIntervalError`] for a malformed string.
    fn into_interval(self) -> Result<Duration, ParseIntervalError>;
}

impl IntoInterval for Duration {
    fn into_interval(self) -> Result<Duration, ParseIntervalError> {
        Ok(self)
    }
}

impl IntoInterval for &str {
    fn into_interval(self) -> Result<Duration, ParseIntervalError> {
        parse_interval(self)
    }
}

impl IntoInterval for String {
    fn into_interval(self) -> Result<Duration, ParseIntervalError> {
        parse_interval(&self)
    }
}

impl IntoInterval for &String {
    fn into_interval(self) -> Result<Duration, ParseIntervalError> {
        parse_interval(self)
    }
}

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The interval string was malformed.
    #[error(transparent)]
    Interval(#[from] ParseIntervalError),
    /// A cron pattern or time zone was refused.
    #[error(transparent)]
    Cron(#[from] CronError),
    /// `change_interval` on a cron schedule, which has no interval.
    #[error("a cron schedule has no interval to change; replace the schedule instead")]
    NoInterval,
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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
    /// Run at the calendar times a cron pattern matches, in its time zone,
    /// read from the runtime's calendar clock; a run that overruns the next
    /// match simply skips it.
    Cron(CronSchedule),
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

    /// Runs at the times `pattern` matches in the time zone `zone` (an
    /// IANA name such as `"UTC"`).
    ///
    /// # Errors
    /// [`ScheduleError::Cron`] for a bad pattern or zone.
    pub fn cron(pattern: &str, zone: &str) -> Result<Self, ScheduleError> {
        Ok(Schedule::Cron(CronSchedule::new(pattern, zone)?))
    }

    /// The interval or period (zero for a cron schedule).
    pub fn interval(&self) -> Duration {
        match self {
            Schedule::After(d) | Schedule::FixedRate(d, _) => *d,
            Schedule::Cron(_) => Duration::ZERO,
        }
    }

    /// The same kind of schedule with another interval (for
    /// `change_interval`).
    ///
    /// # Errors
    /// [`ScheduleError::ZeroPeriod`] for a zero fixed-rate period,
    /// [`ScheduleError::NoInterval`] for a cron schedule.
    pub fn with_interval(&self, interval: Duration) -> Result<Self, ScheduleError> {
        match self {
            Schedule::After(_) => Ok(Schedule::After(interval)),
            Schedule::FixedRate(_, missed) => Schedule::fixed_rate(interval, *missed),
            Schedule::Cron(_) => Err(ScheduleError::NoInterval),
        }
    }
}

#[cfg(all(test, feature = "test-util"))]
mod cron_tests;
