//! [`Retry::call`]: a call under retry rules alone — the
//! [`call`](crate::call) driver with a retry layer and nothing else.

use std::future::Future;

use super::policy::Retry;
use crate::call::{AsDynError, CallError, Layers, run};
use crate::rt::Runtime;

impl Retry {
    /// Runs `op` until it succeeds or the rules give up, sleeping through
    /// `runtime` between attempts. For groups, a breaker or timeouts
    /// around the same rules, use a [`CallStack`](crate::call::CallStack).
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
    /// [`CallErrorKind::Failed`](crate::call::CallErrorKind::Failed) with the last attempt's error once no rule
    /// grants another retry (or `Refused` when the last error was another
    /// layer's refusal).
    pub fn call<'a, T, E, M, F, Fut>(
        &'a self,
        runtime: &'a Runtime,
        op: F,
    ) -> impl Future<Output = Result<T, CallError<E>>> + 'a
    where
        F: FnMut() -> Fut + 'a,
        Fut: Future<Output = Result<T, E>> + 'a,
        E: AsDynError<M>,
        T: 'a,
        M: 'a,
    {
        run(Layers::retry_only(self), runtime, op)
    }
}
