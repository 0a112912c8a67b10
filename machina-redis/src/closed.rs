//! [`Closed`]: the signal that a handle is gone, which its background
//! tasks (holding it only weakly) wait on to end.

use std::sync::atomic::{AtomicBool, Ordering};

use event_listener::Event;

/// Set once, when the handle owning it is dropped.
#[derive(Debug, Default)]
pub(crate) struct Closed {
    flag: AtomicBool,
    event: Event,
}

impl Closed {
    /// Sets the signal and wakes every waiter.
    pub(crate) fn close(&self) {
        self.flag.store(true, Ordering::Release);
        self.event.notify(usize::MAX);
    }

    /// Whether it is set.
    pub(crate) fn is_closed(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Completes once it is set.
    pub(crate) async fn wait(&self) {
        loop {
            let listener = self.event.listen();
            if self.is_closed() {
                return;
            }
            listener.await;
        }
    }
}
