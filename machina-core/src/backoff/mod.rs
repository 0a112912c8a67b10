//! Backoff for one call (aiomisc `asyncbackoff` and `asyncretry`): a time
//! limit per attempt, a deadline for the whole call (attempts *and* pauses),
//! pauses between attempts, a cap on attempts, which errors are retried
//! and when to give up.
//!
//! A [`Backoff`] is a preset of the [`call`](crate::call) pipeline: its
//! pauses and filters become one retry rule (with a
//! [`giveup`](crate::retry::Retry::giveup) matcher), and its time limits
//! the stack's attempt timeout and deadline. [`Backoff::stack`] gives that
//! stack, to add groups or a breaker.
//!
//! Durations and counts are typed, so aiomisc's negative values cannot be
//! expressed; zero values that could never work are refused by
//! [`BackoffBuilder::build`].

mod error;

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::num::NonZeroU32;
use std::time::Duration;

pub use error::BackoffConfigError;

use crate::call::{AsDynError, AttemptTimedOut, CallError, CallStack};
use crate::error::ErrorMatcher;
use crate::retry::{Retry, Rule};
use crate::rt::Runtime;
use crate::waits::Wait;

/// Configures a [`Backoff`].
#[derive(Clone)]
#[must_use = "call .build() to get a Backoff"]
pub struct BackoffBuilder {
    attempt_timeout: Option<Duration>,
    deadline: Option<Duration>,
    pauses: Wait,
    max_tries: Option<u32>,
    retryable: ErrorMatcher,
    giveup: ErrorMatcher,
}

impl Default for BackoffBuilder {
    fn default() -> Self {
        BackoffBuilder {
            attempt_timeout: None,
            deadline: None,
            pauses: Wait::Fixed(Duration::ZERO),
            max_tries: None,
            retryable: ErrorMatcher::none(),
            giveup: ErrorMatcher::none(),
        }
    }
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
        self.pauses = Wait::Fixed(pause);
        self
    }

    /// Waits between attempts by any [`Wait`] sequence (Fibonacci,
    /// exponential with jitter, …) instead of a fixed pause.
    pub fn pauses(mut self, pauses: Wait) -> Self {
        self.pauses = pauses;
        self
    }

    /// At most this many attempts in all (1 = no retries).
    pub fn max_tries(mut self, tries: u32) -> Self {
        self.max_tries = Some(tries);
        self
    }

    /// Retries only errors of type `E` (or with an `E` in their source
    /// chain); several calls allow any of the types (aiomisc `exceptions`).
    /// Without any, every error is retried. A timed-out attempt is always
    /// retryable.
    pub fn retry_on<E: Error + 'static>(mut self) -> Self {
        self.retryable.add_type::<E>();
        self
    }

    /// Retries only errors for which `predicate` holds; combines with
    /// [`retry_on`](Self::retry_on) as "any of".
    pub fn retry_if(
        mut self,
        predicate: impl Fn(&(dyn Error + 'static)) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.retryable.add_when(predicate);
        self
    }

    /// Stops at once, without further attempts, on errors for which
    /// `predicate` holds (aiomisc `giveup`). It is asked only when another
    /// attempt would be made: never after the last allowed one.
    pub fn giveup(
        mut self,
        predicate: impl Fn(&(dyn Error + 'static)) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.giveup.add_when(predicate);
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
        let mut rule = Rule::waiting(self.pauses);
        if !self.retryable.is_empty() {
            rule = rule.matching(&self.retryable.clone().or_type::<AttemptTimedOut>());
        }
        let rule = match self.max_tries {
            Some(tries) => rule.retries(tries - 1),
            None => rule.unlimited(),
        };
        let mut retry = Retry::new().rule(rule);
        if !self.giveup.is_empty() {
            retry = retry.giveup(self.giveup.clone());
        }
        let mut stack = CallStack::new().retry(retry);
        if let Some(limit) = self.attempt_timeout {
            stack = stack.timeout(limit);
        }
        if let Some(limit) = self.deadline {
            stack = stack.deadline(limit);
        }
        Ok(Backoff {
            config: self,
            stack,
        })
    }
}

impl fmt::Debug for BackoffBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackoffBuilder")
            .field("attempt_timeout", &self.attempt_timeout)
            .field("deadline", &self.deadline)
            .field("pauses", &self.pauses)
            .field("max_tries", &self.max_tries)
            .field("retryable", &self.retryable)
            .field("giveup", &self.giveup)
            .finish()
    }
}

/// A validated backoff policy; see the module docs.
///
/// # Examples
///
/// ```
/// use machina_core::backoff::Backoff;
/// use machina_core::call::CallErrorKind;
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
/// assert!(matches!(err.kind(), CallErrorKind::DeadlineExceeded { .. }));
/// assert_eq!(err.operation_error().unwrap().to_string(), "connection refused");
/// ```
#[derive(Clone, Debug)]
pub struct Backoff {
    config: BackoffBuilder,
    stack: CallStack,
}

impl Backoff {
    /// Starts a configuration: no limits, no pause, every error retried
    /// forever until one of them is set.
    pub fn builder() -> BackoffBuilder {
        BackoffBuilder::default()
    }

    /// The call stack this policy runs: add groups or a breaker to it.
    pub fn stack(&self) -> &CallStack {
        &self.stack
    }

    /// The configuration.
    pub fn config(&self) -> &BackoffBuilder {
        &self.config
    }

    /// Runs `op` under this policy on `runtime`'s clock.
    ///
    /// # Errors
    /// A [`CallError`]: attempts exhausted or not retryable (`Failed` /
    /// `TimedOut`, with the reason), or the deadline passed (with how the
    /// last attempt ended).
    pub async fn run<T, E, M, F, Fut>(&self, runtime: &Runtime, op: F) -> Result<T, CallError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: AsDynError<M>,
    {
        self.stack.run(runtime, op).await
    }
}

/// Retries `op` up to `max_tries` attempts in all, pausing `pause` between
/// them (aiomisc `asyncretry`); every error is retried.
///
/// # Errors
/// [`CallErrorKind::Failed`](crate::call::CallErrorKind::Failed) with the last error once every attempt failed.
pub async fn retry_async<T, E, M, F, Fut>(
    runtime: &Runtime,
    max_tries: NonZeroU32,
    pause: Duration,
    op: F,
) -> Result<T, CallError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: AsDynError<M>,
{
    let backoff = BackoffBuilder::default()
        .max_tries(max_tries.get())
        .pause(pause)
        .build();
    match backoff {
        Ok(backoff) => backoff.run(runtime, op).await,
        // A non-zero count and no time limits: nothing to refuse.
        Err(_) => CallStack::new().run(runtime, op).await,
    }
}

#[cfg(all(test, feature = "test-util"))]
mod tests;
