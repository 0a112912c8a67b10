//! Calendar schedules: cron patterns (with an optional seconds field) in a
//! time zone, parsed with `croner` and evaluated against the runtime's
//! calendar clock ([`Runtime::calendar_now`]), so that on the mock runtime a
//! test chooses the date and crosses midnight, month ends and daylight
//! saving changes in virtual time.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::rt::Runtime;

/// Why a cron schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CronError {
    /// The pattern does not parse.
    #[error(
        "invalid cron pattern {pattern:?}: {reason}; expected e.g. \"*/5 * * * *\" or, with seconds, \"0 */5 * * * *\""
    )]
    Pattern {
        /// The pattern given.
        pattern: String,
        /// What `croner` said.
        reason: String,
    },
    /// The time zone is unknown.
    #[error("unknown time zone {0:?}; use an IANA name such as \"Europe/Berlin\" or \"UTC\"")]
    TimeZone(String),
}

/// A cron pattern in a time zone.
///
/// A [`Loop`](crate::loops::Loop) on a cron schedule waits for the first match
/// after its previous body ended: matches that passed while a body overran
/// are skipped, never run in a burst.
///
/// # Examples
///
/// ```
/// use machina_core::schedule::CronSchedule;
///
/// let nightly = CronSchedule::new("30 2 * * *", "Europe/Berlin").unwrap();
/// assert_eq!(nightly.pattern(), "30 2 * * *");
/// assert!(CronSchedule::new("61 * * * *", "UTC").is_err());
/// assert!(CronSchedule::new("* * * * *", "Mars/Olympus").is_err());
/// ```
#[derive(Clone)]
pub struct CronSchedule {
    pattern: Arc<str>,
    zone: Arc<str>,
    cron: Arc<Cron>,
    tz: TimeZone,
}

impl CronSchedule {
    /// Parses `pattern` (5 fields, or 6 with seconds first) for the IANA
    /// time zone `zone`.
    ///
    /// # Errors
    /// [`CronError`] for a pattern that does not parse or an unknown zone.
    pub fn new(pattern: &str, zone: &str) -> Result<Self, CronError> {
        // An empty item in a list (",5", "5,", "5,,6", ",") is a typo; croner
        // takes some of them as a field that matches nothing, whose next
        // match it then searches for for minutes (found by the `cron` fuzz
        // target).
        // Likewise a field that is only croner's `+` (day-of-month AND
        // day-of-week) with nothing after it.
        if let Some(field) = pattern.split_whitespace().find(|field| {
            field
                .strip_prefix('+')
                .unwrap_or(field)
                .split(',')
                .any(str::is_empty)
        }) {
            return Err(CronError::Pattern {
                pattern: pattern.to_owned(),
                reason: format!("the field {field:?} has an empty item in its list"),
            });
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(pattern)
            .map_err(|e| CronError::Pattern {
                pattern: pattern.to_owned(),
                reason: e.to_string(),
            })?;
        let tz = TimeZone::get(zone).map_err(|_| CronError::TimeZone(zone.to_owned()))?;
        Ok(CronSchedule {
            pattern: pattern.into(),
            zone: zone.into(),
            cron: Arc::new(cron),
            tz,
        })
    }

    /// The pattern.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The time zone's name.
    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// The first calendar time strictly after `after` that matches.
    pub fn next_after(&self, after: SystemTime) -> Option<SystemTime> {
        let start = Timestamp::try_from(after).ok()?.to_zoned(self.tz.clone());
        let next = self.cron.find_next_occurrence(&start, false).ok()?;
        Some(SystemTime::from(next.timestamp()))
    }

    /// How long from now, on `runtime`'s calendar clock, until the next
    /// match; `None` if the pattern never matches again.
    pub fn wait_from(&self, runtime: &Runtime) -> Option<Duration> {
        let now = runtime.calendar_now();
        let next = self.next_after(now)?;
        Some(next.duration_since(now).unwrap_or_default())
    }
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern && self.zone == other.zone
    }
}

impl Eq for CronSchedule {}

impl std::hash::Hash for CronSchedule {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.pattern.hash(state);
        self.zone.hash(state);
    }
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CronSchedule")
            .field("pattern", &self.pattern)
            .field("zone", &self.zone)
            .finish()
    }
}
