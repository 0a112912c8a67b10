//! [`CallStack`]: the layers a call runs under, as a value you build once
//! and run many calls through.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use super::driver::{Layers, run, run_attempts};
use super::error::{AsDynError, CallError};
use crate::breaker::CircuitBreaker;
use crate::limit::Group;
use crate::retry::Retry;
use crate::rt::Runtime;

/// The layers around an async operation: groups, a breaker, retry rules
/// (with their budget), a per-attempt timeout and an overall deadline.
/// Every layer is optional; see the [module docs](super) for the order
/// they apply in.
///
/// # Examples
///
/// ```
/// use machina_core::breaker::CircuitBreaker;
/// use machina_core::call::{CallError, CallStack};
/// use machina_core::limit::{ConcurrentGroup, Limits};
/// use machina_core::retry::{Retry, Rule};
/// use machina_core::testing::MockRuntime;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
///
/// let mock = MockRuntime::new();
/// let rt = mock.runtime();
/// let api = ConcurrentGroup::new(&rt, "api", Limits::new().max_in_flight(4)).unwrap();
/// let stack = CallStack::new()
///     .group(api.clone())
///     .breaker(CircuitBreaker::builder("api").build(&rt).unwrap())
///     .retry(Retry::new().rule(Rule::fixed(Duration::from_secs(1)).retries(2)))
///     .timeout(Duration::from_secs(5))
///     .deadline(Duration::from_secs(30));
/// let tries = AtomicU32::new(0);
/// let value = mock.block_on(stack.run(&rt, || async {
///     assert_eq!(api.in_flight(), 1, "a slot is held while the attempt runs");
///     match tries.fetch_add(1, Ordering::SeqCst) {
///         0 => Err(std::io::Error::other("reset")),
///         _ => Ok("done"),
///     }
/// })).unwrap();
/// assert_eq!(value.unwrap(), "done");
/// assert_eq!(mock.elapsed(), Duration::from_secs(1));
/// assert_eq!(api.in_flight(), 0);
/// ```
#[derive(Clone, Default)]
#[must_use = "a stack does nothing until a call runs through it"]
pub struct CallStack {
    pub(super) groups: Vec<Group>,
    pub(super) breaker: Option<CircuitBreaker>,
    pub(super) retry: Option<Retry>,
    pub(super) attempt_timeout: Option<Duration>,
    pub(super) deadline: Option<Duration>,
}

impl CallStack {
    /// No layers: the operation runs once, as it is.
    pub fn new() -> Self {
        CallStack::default()
    }

    /// Adds a group: each attempt takes a slot (and a start) in every group
    /// of the stack, all or none, and gives it back when the attempt ends.
    pub fn group(mut self, group: impl Into<Group>) -> Self {
        self.groups.push(group.into());
        self
    }

    /// Adds groups; see [`group`](Self::group).
    pub fn groups<G: Into<Group>>(mut self, groups: impl IntoIterator<Item = G>) -> Self {
        self.groups.extend(groups.into_iter().map(Into::into));
        self
    }

    /// Runs each attempt through `breaker`: refused attempts do not run,
    /// and each outcome is counted.
    pub fn breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// Retries failed attempts under `retry`'s rules (and budget).
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Each attempt may run at most `limit`; one that runs longer is
    /// cancelled and fails with
    /// [`AttemptTimedOut`](super::AttemptTimedOut), which retry rules may
    /// retry.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.attempt_timeout = Some(limit);
        self
    }

    /// The whole call — waits for groups, attempts and pauses — may take at
    /// most `limit`.
    pub fn deadline(mut self, limit: Duration) -> Self {
        self.deadline = Some(limit);
        self
    }

    /// The groups, in the order they were added.
    pub fn group_list(&self) -> &[Group] {
        &self.groups
    }

    /// The breaker, if any.
    pub fn breaker_layer(&self) -> Option<&CircuitBreaker> {
        self.breaker.as_ref()
    }

    /// The retry rules, if any.
    pub fn retry_layer(&self) -> Option<&Retry> {
        self.retry.as_ref()
    }

    pub(crate) fn layers(&self) -> Layers<'_> {
        Layers {
            groups: &self.groups,
            breaker: self.breaker.as_ref(),
            retry: self.retry.as_ref(),
            attempt_timeout: self.attempt_timeout,
            deadline: self.deadline,
        }
    }

    /// Runs `op` through the stack on `runtime`'s clock: `op` makes a fresh
    /// attempt each time it is called.
    ///
    /// # Errors
    /// A [`CallError`]: the operation's last error, or the layer that
    /// stopped the call.
    pub fn run<'a, T, E, M, F, Fut>(
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
        run(self.layers(), runtime, op)
    }

    /// Runs one future through the stack: a single attempt (a retry layer
    /// cannot make another from a future already spent).
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub async fn run_once<T, E, M, Fut>(
        &self,
        runtime: &Runtime,
        fut: Fut,
    ) -> Result<T, CallError<E>>
    where
        Fut: Future<Output = Result<T, E>>,
        E: AsDynError<M>,
    {
        let mut fut = Some(fut);
        let layers = Layers {
            retry: None,
            ..self.layers()
        };
        run_attempts(layers, runtime, move || fut.take()).await
    }
}

impl fmt::Debug for CallStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallStack")
            .field(
                "groups",
                &self.groups.iter().map(Group::name).collect::<Vec<_>>(),
            )
            .field("breaker", &self.breaker.as_ref().map(CircuitBreaker::name))
            .field("retry", &self.retry)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("deadline", &self.deadline)
            .finish()
    }
}
