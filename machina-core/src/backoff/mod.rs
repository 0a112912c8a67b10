//! Backoff for one call (aiomisc `asyncbackoff` and `asyncretry`): a time
//! limit per attempt, a deadline for the whole call (attempts *and* pauses),
//! a pause between attempts, a cap on attempts, which errors are retried
//! and when to give up.
//!
//! Rule-based waits that grow (Fibonacci, jitter) and concurrency limits
//! are the `retry` and `limit` modules'; this one is the simple, strict
//! time-boxed loop.
//!
//! Durations and counts are typed, so aiomisc's negative values cannot be
//! expressed; zero values that could never work are refused by
//! [`BackoffBuilder::build`].

mod error;

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use error::{AttemptTimedOut, BackoffConfigError, BackoffError, NotRetriedReason};

use crate::retry::BoxError;
use crate::rt::Runtime;

type Predicate = Arc<dyn Fn(&(dyn Error + 'static)) -> bool + Send + Sync>;

/// Configures a [`Backoff`].
#[derive(Clone, Default)]
#[must_use = "call .build() to get a Backoff"]
pub struct BackoffBuilder {
    attempt_timeout: Option<Duration>,
    deadline: Option<Duration>,
    pause: Duration,
    max_tries: Option<u32>,
    retryable: Vec<Predicate>,
    giveup: Option<Predicate>,
}

impl BackoffBuilder {
    /// Each attempt may run at most this long; one that runs longer is
    /// cancelled and counts as a retryable failure ([`AttemptTimedOut`]).
    pub fn attempt_timeout(mut self, limit: Duration) -> Self {
        self.attempt_timeout = Some(limit);
        self
    }

    /// The whole call — attempts and pauses — may take at most this long.
    pub fn deadline(mut self, limit: Duration) -> Self {
        self.deadline = Some(limit);
        self
    }

    /// Waits this long between attempts (zero by default).
    pub fn pause(mut self, pause: Duration) -> Self {
        self.pause = pause;
        self
    }

    /// At most this many attempts in all (1 = no retries).
    pub fn max_tries(mut self, tries: u32) -> Self {
        self.max_tries = Some(tries);
        self
    }

    /// Retries only errors of type `E` (or with an `E` in their source
    /// chain); several calls allow any of the types (aiomisc `exceptions`).
    /// Without any, every error is retried.
    pub fn retry_on<E: Error + 'static>(self) -> Self {
        self.retry_if(|e| std::iter::successors(Some(e), |&e| e.source()).any(|e| e.is::<E>()))
    }

    /// Retries only errors for which `predicate` holds; combines with
    /// [`retry_on`](Self::retry_on) as "any of".
    pub fn retry_if(
        mut self,
        predicate: impl Fn(&(dyn Error + 'static)) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.retryable.push(Arc::new(predicate));
        self
    }

    /// Stops at once, without further attempts, on errors for which
    /// `predicate` holds (aiomisc `giveup`).
    pub fn giveup(
        mut self,
        predicate: impl Fn(&(dyn Error + 'static)) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.giveup = Some(Arc::new(predicate));
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`BackoffConfigError`] for a zero `max_tries`, `attempt_timeout` or
    /// `deadline`.
    pub fn build(self) -> Result<Backoff, BackoffConfigError> {
        if self.max_tries == Some(0) {
            return Err(BackoffConfigError::ZeroMaxTries);
        }
        if self.attempt_timeout.is_some_and(|t| t.is_zero()) {
            return Err(BackoffConfigError::ZeroAttemptTimeout);
        }
        if self.deadline.is_some_and(|d| d.is_zero()) {
            return Err(BackoffConfigError::ZeroDeadline);
        }
        Ok(Backoff { config: self })
    }
}

impl fmt::Debug for BackoffBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackoffBuilder")
            .field("attempt_timeout", &self.attempt_timeout)
            .field("deadline", &self.deadline)
            .field("pause", &self.pause)
            .field("max_tries", &self.max_tries)
            .field("retry_filters", &self.retryable.len())
            .field("giveup", &self.giveup.is_some())
            .finish()
    }
}

/// A validated backoff policy; see the module docs.
///
/// # Examples
///
/// ```
/// use machina_core::backoff::{Backoff, BackoffError};
/// use machina_core::testing::MockRuntime;
/// use std::time::Duration;
///
/// let ms = Duration::from_millis;
/// // aiomisc: @asyncbackoff(attempt_timeout=0.1, deadline=1, pause=0.1)
/// let backoff = Backoff::builder()
///     .attempt_timeout(ms(100))
///     .deadline(ms(1000))
///     .pause(ms(100))
///     .build()
///     .unwrap();
/// let mock = MockRuntime::new();
/// let rt = mock.runtime();
/// let outcome = mock.block_on(async {
///     backoff.run(&rt, || async {
///         Err::<(), _>(std::io::Error::other("connection refused"))
///     }).await
/// }).unwrap();
/// let err = outcome.unwrap_err();
/// assert!(matches!(err, BackoffError::DeadlineExceeded { .. }));
/// assert_eq!(err.last_error().unwrap().to_string(), "connection refused");
/// ```
#[derive(Clone, Debug)]
pub struct Backoff {
    config: BackoffBuilder,
}

impl Backoff {
    /// Starts a configuration: no limits, no pause, every error retried
    /// forever until one of them is set.
    pub fn builder() -> BackoffBuilder {
        BackoffBuilder::default()
    }

    fn is_retryable(&self, error: &(dyn Error + 'static)) -> bool {
        self.config.retryable.is_empty() || self.config.retryable.iter().any(|p| p(error))
    }

    /// Runs `op` under this policy on `runtime`'s clock.
    ///
    /// # Errors
    /// [`BackoffError`]: attempts exhausted, deadline passed (with the last
    /// attempt's error), or an error not to be retried.
    pub async fn run<T, E, F, Fut>(&self, runtime: &Runtime, mut op: F) -> Result<T, BackoffError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<BoxError>,
    {
        let c = &self.config;
        let deadline_at = c.deadline.map(|d| runtime.now() + d);
        let deadline_exceeded = |attempts, last| BackoffError::DeadlineExceeded {
            deadline: c.deadline.unwrap_or_default(),
            attempts,
            last,
        };
        let mut attempts = 0u32;
        let mut last: Option<BoxError> = None;
        loop {
            attempts += 1;
            let attempt_limit_at = c.attempt_timeout.map(|t| runtime.now() + t);
            let cut_at = earliest(attempt_limit_at, deadline_at);
            let attempt = op();
            let outcome = match cut_at {
                Some(at) => runtime.timeout_at(at, attempt).await.ok(),
                None => Some(attempt.await),
            };
            let error: BoxError = match outcome {
                Some(Ok(value)) => return Ok(value),
                Some(Err(error)) => error.into(),
                None if cut_at == deadline_at => return Err(deadline_exceeded(attempts, last)),
                None => Box::new(AttemptTimedOut {
                    limit: c.attempt_timeout.unwrap_or_default(),
                }),
            };
            if c.giveup.as_ref().is_some_and(|giveup| giveup(&*error)) {
                return Err(BackoffError::NotRetried {
                    attempts,
                    reason: NotRetriedReason::GiveUp,
                    last: error,
                });
            }
            if !error.is::<AttemptTimedOut>() && !self.is_retryable(&*error) {
                return Err(BackoffError::NotRetried {
                    attempts,
                    reason: NotRetriedReason::NotRetryable,
                    last: error,
                });
            }
            if c.max_tries.is_some_and(|max| attempts >= max) {
                return Err(BackoffError::Exhausted {
                    attempts,
                    last: error,
                });
            }
            // A pause that would end at or past the deadline leaves no time
            // for another attempt: report now rather than sleep for nothing.
            if deadline_at.is_some_and(|d| runtime.now() + c.pause >= d) {
                return Err(deadline_exceeded(attempts, Some(error)));
            }
            tracing::warn!(error = %error, attempt = attempts, pause = ?c.pause, "attempt failed; retrying");
            last = Some(error);
            if !c.pause.is_zero() {
                runtime.sleep(c.pause).await;
            }
        }
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Retries `op` up to `max_tries` attempts in all, pausing `pause` between
/// them (aiomisc `asyncretry`); every error is retried.
///
/// # Errors
/// [`BackoffError::Exhausted`] with the last error once every attempt
/// failed.
pub async fn retry_async<T, E, F, Fut>(
    runtime: &Runtime,
    max_tries: NonZeroU32,
    pause: Duration,
    op: F,
) -> Result<T, BackoffError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    let backoff = Backoff {
        config: BackoffBuilder::default()
            .max_tries(max_tries.get())
            .pause(pause),
    };
    backoff.run(runtime, op).await
}

#[cfg(all(test, feature = "test-util"))]
mod tests;
