//! Small shared pieces of the crate's tasks: a lock that survives a
//! poisoned mutex, a race of two futures, and the wait between tries to
//! reach Redis again.

use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use futures::future::select;
use machina_core::waits::Wait;

/// How long a task waits between tries to reach Redis again.
pub(crate) const RECONNECT: Wait = Wait::Exponential {
    base: Duration::from_millis(50),
    factor: 2,
    cap: Duration::from_secs(2),
};

/// Locks `mutex`, taking the data of a poisoned one as it is.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Races `a` and `b`, ignoring which won.
pub(crate) async fn either<A: Future, B: Future>(a: A, b: B) {
    let _ = select(std::pin::pin!(a), std::pin::pin!(b)).await;
}
