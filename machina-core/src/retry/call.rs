//! Running a call under a [`Retry`]: the async loop around the pure
//! [`RetryState`](super::RetryState), with a `tracing` event per retry.

use std::future::Future;

use super::policy::{Decision, Retry, RetryState};
use super::rule::BoxError;
use crate::limit::{ConcurrentGroup, Permit, acquire_all};
use crate::rt::Runtime;

impl Retry {
    /// Runs `op` until it succeeds or the rules give up, sleeping through
    /// `runtime` between attempts; returns the value, or the last error
    /// unchanged.
    ///
    /// The success path allocates nothing: retry bookkeeping starts at the
    /// first failure.
    ///
    /// # Examples
    ///
    /// ```
    /// use machina_core::retry::{Retry, Rule};
    /// use machina_core::testing::MockRuntime;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::time::Duration;
    ///
    /// let mock = MockRuntime::new();
    /// let rt = mock.runtime();
    /// let retry = Retry::new().rule(Rule::fixed(Duration::from_secs(2)).retries(3));
    /// let tries = AtomicU32::new(0);
    /// let value = mock.block_on(async {
    ///     retry.call(&rt, || async {
    ///         if tries.fetch_add(1, Ordering::SeqCst) < 2 {
    ///             Err(std::io::Error::other("flaky"))
    ///         } else {
    ///             Ok("done")
    ///         }
    ///     }).await
    /// }).unwrap();
    /// assert_eq!(value.unwrap(), "done");
    /// assert_eq!(mock.elapsed(), Duration::from_secs(4)); // two waits of 2 s
    /// ```
    ///
    /// # Errors
    /// The last attempt's error, once no rule grants another retry.
    pub async fn call<T, E, F, Fut>(&self, runtime: &Runtime, op: F) -> Result<T, BoxError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<BoxError>,
    {
        self.run(runtime, &[], op).await
    }

    /// Like [`call`](Self::call), with every attempt a new start in all of
    /// `groups` ([`acquire_all`]): the attempt holds a slot only while it
    /// runs, releases it while waiting to retry, and spends a fresh start
    /// token each time. The retry wraps the whole call once, however many
    /// groups there are.
    ///
    /// # Errors
    /// The last attempt's error, once no rule grants another retry.
    pub async fn call_limited<T, E, F, Fut>(
        &self,
        runtime: &Runtime,
        groups: &[ConcurrentGroup],
        op: F,
    ) -> Result<T, BoxError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<BoxError>,
    {
        self.run(runtime, groups, op).await
    }

    /// The loop shared by `call` and `call_limited`: each attempt takes a
    /// permit in every group (if any), calls `op` only once it holds it, and
    /// drops it before any wait.
    async fn run<T, E, F, Fut>(
        &self,
        runtime: &Runtime,
        groups: &[ConcurrentGroup],
        mut op: F,
    ) -> Result<T, BoxError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<BoxError>,
    {
        if let Some(budget) = self.retry_budget() {
            budget.deposit();
        }
        let mut state: Option<RetryState<'_>> = None;
        loop {
            let permit = match acquire_all(groups) {
                Ok(acquire) => acquire.await,
                Err(_) => Permit::none(),
            };
            let outcome = op().await;
            drop(permit);
            let error: BoxError = match outcome {
                Ok(value) => return Ok(value),
                Err(error) => error.into(),
            };
            let state = state.get_or_insert_with(|| self.start(runtime.rng().clone()));
            match state.on_error(&*error) {
                Decision::Retry {
                    wait,
                    rule,
                    remaining,
                } => {
                    tracing::warn!(
                        error = %error,
                        attempt = state.attempts() - 1,
                        ?wait,
                        rule,
                        remaining = remaining.map_or_else(|| "unlimited".to_owned(), |n| n.to_string()),
                        "call failed; retrying"
                    );
                    runtime.sleep(wait).await;
                }
                Decision::GiveUp(reason) => {
                    tracing::debug!(error = %error, attempts = state.attempts(), ?reason, "call failed; not retrying");
                    return Err(error);
                }
            }
        }
    }
}
