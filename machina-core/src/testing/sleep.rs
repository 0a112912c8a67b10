//! The mock runtime's [`Timer`]: virtual-clock readings and sleeps that
//! register in the executor's timer queue on first poll and unregister when
//! dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use super::clock::{TimerKey, VirtualClock};
use super::executor::{Shared, lock};
use crate::rt::{Sleep, Timer};

pub(crate) struct MockTimer {
    pub(crate) clock: Arc<VirtualClock>,
    pub(crate) shared: Weak<Shared>,
}

impl Timer for MockTimer {
    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(MockSleep {
            clock: self.clock.clone(),
            shared: self.shared.clone(),
            deadline: self.clock.to_virtual(deadline),
            key: None,
        })
    }

    fn system_now(&self) -> SystemTime {
        self.clock.system_now()
    }

    fn lateness_tolerance(&self) -> Duration {
        Duration::ZERO
    }
}

struct MockSleep {
    clock: Arc<VirtualClock>,
    shared: Weak<Shared>,
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
        if self.clock.elapsed_nanos() >= self.deadline {
            self.key = None;
            return Poll::Ready(());
        }
        let Some(shared) = self.shared.upgrade() else {
            // The executor is gone: nothing will ever poll this again.
            return Poll::Pending;
        };
        let stale = {
            let mut state = lock(&shared.state);
            match self.key {
                Some(key) => {
                    let (key, stale) = state.timers.update(key, cx.waker());
                    self.key = Some(key);
                    stale
                }
                None => {
                    self.key = Some(state.timers.insert(self.deadline, cx.waker().clone()));
                    None
                }
            }
        };
        drop(stale);
        Poll::Pending
    }
}

impl Drop for MockSleep {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        if self.clock.elapsed_nanos() >= self.deadline {
            return;
        }
        if let Some(shared) = self.shared.upgrade() {
            let removed = lock(&shared.state).timers.remove(key);
            drop(removed);
        }
    }
}
