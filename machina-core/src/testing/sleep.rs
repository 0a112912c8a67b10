//! The mock runtime's [`Timer`]: virtual-clock readings and sleeps that
//! register in the executor's timer queue on first poll and unregister when
//! dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use super::clock::TimerKey;
use super::executor::{Shared, lock};
use crate::rt::{Sleep, SleepFuture, Timer};

pub(crate) struct MockTimer {
    pub(crate) shared: Arc<Shared>,
}

impl Timer for MockTimer {
    fn now(&self) -> Instant {
        self.shared.clock.now()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep::new(MockSleep {
            deadline: self.shared.clock.to_virtual(deadline),
            shared: self.shared.clone(),
            key: None,
        })
    }

    fn calendar_now(&self) -> SystemTime {
        self.shared.clock.calendar_now()
    }

    fn lateness_tolerance(&self) -> Duration {
        Duration::ZERO
    }
}

struct MockSleep {
    shared: Arc<Shared>,
    /// Virtual nanoseconds.
    deadline: u64,
    /// Where this sleep is registered, once polled.
    key: Option<TimerKey>,
}

impl Future for MockSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // The executor fires every timer due at an instant before it lets
        // the clock pass it, so a deadline that has been reached means the
        // registration is already gone.
        if self.shared.clock.elapsed_nanos() >= self.deadline {
            self.key = None;
            return Poll::Ready(());
        }
        let this = &mut *self;
        let stale = {
            let mut state = lock(&this.shared.state);
            if state.closed {
                // The runtime is gone: nothing will ever fire this.
                return Poll::Pending;
            }
            match this.key {
                Some(key) => {
                    let (key, stale) = state.timers.update(key, cx.waker());
                    this.key = Some(key);
                    stale
                }
                None => {
                    this.key = Some(state.timers.insert(this.deadline, cx.waker().clone()));
                    None
                }
            }
        };
        drop(stale);
        Poll::Pending
    }
}

impl MockSleep {
    /// Takes this sleep's timer out of the queue, if it is still there.
    fn unregister(&mut self) {
        let Some(key) = self.key.take() else { return };
        if self.shared.clock.elapsed_nanos() >= self.deadline {
            return;
        }
        let removed = lock(&self.shared.state).timers.remove(key);
        drop(removed);
    }
}

impl SleepFuture for MockSleep {
    fn reset(mut self: Pin<&mut Self>, deadline: Instant) {
        self.unregister();
        self.deadline = self.shared.clock.to_virtual(deadline);
    }
}

impl Drop for MockSleep {
    fn drop(&mut self) {
        self.unregister();
    }
}
