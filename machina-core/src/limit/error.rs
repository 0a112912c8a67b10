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
