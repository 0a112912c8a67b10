//! Errors of [`Backoff`](super::Backoff) configurations. How a call under
//! backoff ends without a value is a [`CallError`](crate::call::CallError).

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
