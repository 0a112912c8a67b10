//! Errors of concurrent groups.

use std::time::Duration;

/// A concurrent group that could never admit a call, refused when made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// The name was empty.
    #[error("invalid concurrent group name: it is empty; give every group a unique name")]
    EmptyName,
    /// `max_in_flight` was 0.
    #[error(
        "invalid concurrent group {group:?}: max_in_flight is 0, so no call could ever start; leave it unset for no limit, or use at least 1"
    )]
    ZeroInFlight {
        /// The group's name.
        group: String,
    },
    /// Zero starts were allowed over a non-zero window.
    #[error(
        "invalid concurrent group {group:?}: 0 starts per {window:?} would never let a call start; allow at least 1, or use a zero window for no rate limit"
    )]
    ZeroStarts {
        /// The group's name.
        group: String,
        /// The window given.
        window: Duration,
    },
    /// A token bucket with zero starts or a zero period.
    #[error(
        "invalid concurrent group {group:?}: a rate of {n} per {per:?} would never let a call start; use at least 1 start per a non-zero period, such as Limits::rate(50, Duration::from_secs(1))"
    )]
    ZeroRate {
        /// The group's name.
        group: String,
        /// The starts given.
        n: u32,
        /// The period given.
        per: Duration,
    },
    /// A burst was given without a rate.
    #[error(
        "invalid concurrent group {group:?}: burst is set but there is no rate for it to add to; use Limits::rate(n, per).burst(b)"
    )]
    BurstWithoutRate {
        /// The group's name.
        group: String,
    },
    /// A group was registered under a name that is not its own.
    #[error(
        "concurrent group {group:?} registered as {name:?}: register a group under its own name"
    )]
    NameMismatch {
        /// The group's own name.
        group: String,
        /// The name it was registered under.
        name: String,
    },
    /// An empty list of groups was given where at least one is needed.
    #[error("no concurrent group given: acquire_all needs at least one group")]
    NoGroups,
}

/// Why waiting for a concurrent group ended without a permit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AcquireError {
    /// The wait took longer than allowed.
    #[error("gave up waiting for concurrent group {groups} after {waited:?}")]
    TimedOut {
        /// The group name(s), comma-separated.
        groups: String,
        /// How long the caller waited.
        waited: Duration,
    },
}
