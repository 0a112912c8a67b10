//! [`Tasks`]: the handler tasks a server runs (one per connection or
//! datagram) — kept without piling up finished ones, drained within a
//! timeout at stop, and aborted if the server's loop is dropped.

use std::time::Duration;

use futures::future::join_all;

use std::sync::atomic::Ordering;

use super::counters::ServerCounters;
use crate::rt::{JoinError, JoinHandle, Runtime};

/// The running handler tasks of one server loop.
pub(crate) struct Tasks {
    handles: Vec<JoinHandle<()>>,
    /// When the list next sheds its finished tasks (so it stays within
    /// twice the number running, at a cost amortised per push).
    prune_at: usize,
}

impl Tasks {
    pub(crate) fn new() -> Self {
        Tasks {
            handles: Vec::new(),
            prune_at: 64,
        }
    }

    pub(crate) fn push(&mut self, handle: JoinHandle<()>) {
        if self.handles.len() >= self.prune_at {
            self.handles.retain(|h| !h.is_finished());
            self.prune_at = (self.handles.len() * 2).max(64);
        }
        self.handles.push(handle);
    }

    /// Waits up to `within` for every task to finish, then aborts the rest;
    /// returns how many were cancelled.
    pub(crate) async fn drain(&mut self, runtime: &Runtime, within: Duration) -> u64 {
        self.handles.retain(|h| !h.is_finished());
        if self.handles.is_empty() {
            return 0;
        }
        let all = join_all(self.handles.iter_mut());
        if runtime.timeout(within, all).await.is_ok() {
            self.handles.clear();
            return 0;
        }
        // A handle whose outcome `join_all` already took reports finished
        // and is not awaited again.
        let rest: Vec<JoinHandle<()>> = self
            .handles
            .drain(..)
            .filter(|h| !h.is_finished())
            .collect();
        for handle in &rest {
            handle.abort();
        }
        let outcomes = join_all(rest).await;
        outcomes
            .iter()
            .filter(|o| matches!(o, Err(JoinError::Cancelled)))
            .count() as u64
    }
}

impl Tasks {
    /// [`drain`](Self::drain), counting the cancelled handlers of
    /// `service` (whose handlers serve `what`) and saying so.
    pub(crate) async fn drain_counted(
        &mut self,
        runtime: &Runtime,
        within: Duration,
        counters: &ServerCounters,
        service: &str,
        what: &str,
    ) {
        let cancelled = self.drain(runtime, within).await;
        counters.cancelled.fetch_add(cancelled, Ordering::Relaxed);
        if cancelled > 0 {
            tracing::warn!(service, cancelled, drain_timeout = ?within, "{what} still being handled at the end of the drain were cancelled");
        }
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for handle in &self.handles {
            handle.abort();
        }
    }
}
