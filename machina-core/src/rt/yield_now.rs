//! [`yield_now`]: give the executor a turn, on any runtime.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Returns `Pending` once (waking itself at once), then `Ready`: the
/// calling task goes to the back of the executor's queue, so a task that
/// loops without ever waiting cannot starve the others.
///
/// # Examples
///
/// ```
/// use machina_core::rt::yield_now;
/// use machina_core::testing::MockRuntime;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let mock = MockRuntime::new();
/// let rt = mock.runtime();
/// let other_ran = Arc::new(AtomicBool::new(false));
/// let flag = other_ran.clone();
/// let seen = mock.block_on(async move {
///     rt.spawn(async move { flag.store(true, Ordering::SeqCst) }).unwrap().detach();
///     yield_now().await; // the spawned task runs now
///     other_ran.load(Ordering::SeqCst)
/// }).unwrap();
/// assert!(seen);
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
