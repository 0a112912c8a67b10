//! Errors of [`Backoff`](super::Backoff): bad configurations, and the ways
//! a call under backoff can end without a value.

use std::time::Duration;

use crate::retry::BoxError;

/// A backoff configuration that could never work, refused by
/// [`BackoffBuilder::build`](super::BackoffBuilder::build).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackoffConfigError {
    /// `max_tries` was 0: not even one attempt.
    #[error(
        "invalid backoff: max_tries is 0, so the call would never run; use at least 1 (1 = no retries)"
    )]
    ZeroMaxTries,
    /// `attempt_timeout` was zero: every attempt would time out at once.
    #[error(
        "invalid backoff: attempt_timeout is zero, so every attempt would time out at once; leave it unset for no per-attempt limit"
    )]
    ZeroAttemptTimeout,
    /// `deadline` was zero: the call would be over before it began.
    #[error(
        "invalid backoff: deadline is zero, so no attempt could run; leave it unset for no overall limit"
    )]
    ZeroDeadline,
}

/// The error an attempt ends with when it runs past `attempt_timeout`.
/// Such an attempt is always retryable (unless `giveup` says otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("attempt timed out after {limit:?}")]
pub struct AttemptTimedOut {
    /// The per-attempt limit.
    pub limit: Duration,
}

/// Why the call gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotRetriedReason {
    /// The error is not of a retryable kind.
    NotRetryable,
    /// The `giveup` predicate said to stop.
    GiveUp,
}

impl std::fmt::Display for NotRetriedReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotRetriedReason::NotRetryable => "the error is not retryable",
            NotRetriedReason::GiveUp => "the giveup predicate said to stop",
        })
    }
}

/// How a call under backoff ended without a value. Every variant that
/// follows a failed attempt carries that attempt's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackoffError {
    /// Every allowed attempt failed.
    #[error("gave up after {attempts} attempt(s), the most allowed: {last}")]
    Exhausted {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last: BoxError,
    },
    /// The deadline for the whole call passed.
    #[error("deadline of {deadline:?} passed after {attempts} attempt(s); last error: {}", last.as_ref().map_or_else(|| "none (no attempt had finished)".to_owned(), ToString::to_string))]
    DeadlineExceeded {
        /// The deadline.
        deadline: Duration,
        /// Attempts started.
        attempts: u32,
        /// The last finished attempt's error; `None` when the deadline cut
        /// the first attempt short.
        last: Option<BoxError>,
    },
    /// The error was not to be retried.
    #[error("not retried after {attempts} attempt(s) ({reason}): {last}")]
    NotRetried {
        /// Attempts made.
        attempts: u32,
        /// Why.
        reason: NotRetriedReason,
        /// The attempt's error.
        last: BoxError,
    },
}

impl BackoffError {
    /// The last attempt's error, if an attempt finished.
    pub fn last_error(&self) -> Option<&BoxError> {
        match self {
            BackoffError::Exhausted { last, .. } | BackoffError::NotRetried { last, .. } => {
                Some(last)
            }
            BackoffError::DeadlineExceeded { last, .. } => last.as_ref(),
        }
    }

    /// The last attempt's error, by value.
    pub fn into_last_error(self) -> Option<BoxError> {
        match self {
            BackoffError::Exhausted { last, .. } | BackoffError::NotRetried { last, .. } => {
                Some(last)
            }
            BackoffError::DeadlineExceeded { last, .. } => last,
        }
    }

    /// Attempts started.
    pub fn attempts(&self) -> u32 {
        match self {
            BackoffError::Exhausted { attempts, .. }
            | BackoffError::NotRetried { attempts, .. }
            | BackoffError::DeadlineExceeded { attempts, .. } => *attempts,
        }
    }
}
