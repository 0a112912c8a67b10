//! Unit tests of the mock runtime: exact virtual instants and orders.
//!
//! Shared helpers live here; each submodule covers one area.

mod advance;
mod intervals;
mod lifecycle;
mod order;
mod reentrancy;
mod seeds;
mod timers;
use std::future::{Future, pending, poll_fn};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, SystemTime};

use futures::FutureExt;
use futures::channel::oneshot;

use super::{MockError, MockRuntime};
use crate::rt::{JoinError, JoinHandle, MissedTick, Runtime, RuntimeRng, SpawnError};

pub(super) use crate::test_kit::secs;

pub(super) use crate::test_kit::ms;

pub(super) use crate::test_kit::{Log, entries, log, push};

/// Sets a flag when dropped: proves a task's future was dropped.
pub(super) struct DropFlag(pub(super) Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Returns `Pending` once after waking its task, so that every other ready
/// task runs before it resumes.
pub(super) async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}

/// Spawns a detached task.
pub(super) fn detach<F>(rt: &Runtime, future: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    rt.spawn(future).unwrap().detach();
}

/// Awaits `sleep`, recording the virtual time since `start` at every poll:
/// shows spurious wakes as well as the instant it completes.
pub(super) async fn sleep_recording_polls(
    rt: Runtime,
    mut sleep: crate::rt::Sleep,
    start: std::time::Instant,
    polls: Log<Duration>,
) {
    poll_fn(|cx| {
        push(&polls, rt.now() - start);
        std::pin::Pin::new(&mut sleep).poll(cx)
    })
    .await;
}
