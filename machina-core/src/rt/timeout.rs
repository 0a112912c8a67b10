//! Deadlines on futures: [`Timeout`] and its [`Elapsed`] error.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project::pin_project;

use super::timer::Sleep;

/// The error of a [`Timeout`] whose deadline passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("operation timed out after {limit:?}")]
pub struct Elapsed {
    limit: Duration,
}

impl Elapsed {
    pub(crate) fn new(limit: Duration) -> Self {
        Elapsed { limit }
    }

    /// The time limit that was exceeded.
    pub fn limit(&self) -> Duration {
        self.limit
    }
}

/// A future with a deadline, made by
/// [`Runtime::timeout`](super::Runtime::timeout).
///
/// The inner future is polled first, so a value that is ready exactly at the
/// deadline wins. When the deadline passes first, the inner future is
/// dropped with the `Timeout`.
#[pin_project]
#[must_use = "futures do nothing unless awaited"]
pub struct Timeout<F> {
    #[pin]
    future: F,
    sleep: Sleep,
    limit: Duration,
}

impl<F> Timeout<F> {
    pub(crate) fn new(future: F, sleep: Sleep, limit: Duration) -> Self {
        Timeout {
            future,
            sleep,
            limit,
        }
    }

    /// The inner future, giving up the deadline.
    pub fn into_inner(self) -> F {
        self.future
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(value) = this.future.poll(cx) {
            return Poll::Ready(Ok(value));
        }
        match Pin::new(this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed::new(*this.limit))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F> std::fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timeout")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}
