//! A group's queue of waiters: tickets in arrival order with their wakers.
//!
//! Tickets only grow, so the queue stays sorted by pushing at the back;
//! the head is served from the front; a cancelled waiter is found by binary
//! search. A `VecDeque` keeps its buffer, so a busy queue does not allocate
//! per waiter (a `BTreeMap` allocates and frees nodes as waiters come and
//! go, often on different threads).

use std::collections::VecDeque;
use std::task::Waker;

#[derive(Debug, Default)]
pub(crate) struct WaitQueue {
    entries: VecDeque<(u64, Waker)>,
}

impl WaitQueue {
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The ticket first in line.
    pub(crate) fn head(&self) -> Option<u64> {
        self.entries.front().map(|(t, _)| *t)
    }

    /// The waker of the waiter first in line.
    pub(crate) fn head_waker(&self) -> Option<Waker> {
        self.entries.front().map(|(_, w)| w.clone())
    }

    /// Queues `ticket`, which must be larger than every ticket queued.
    pub(crate) fn push(&mut self, ticket: u64, waker: Waker) {
        debug_assert!(self.entries.back().is_none_or(|(t, _)| *t < ticket));
        self.entries.push_back((ticket, waker));
    }

    fn position(&self, ticket: u64) -> Option<usize> {
        self.entries.binary_search_by_key(&ticket, |(t, _)| *t).ok()
    }

    /// The waker stored for `ticket`.
    pub(crate) fn waker_mut(&mut self, ticket: u64) -> Option<&mut Waker> {
        let i = self.position(ticket)?;
        self.entries.get_mut(i).map(|(_, w)| w)
    }

    /// Takes `ticket` out of the queue; whether it was there.
    pub(crate) fn remove(&mut self, ticket: u64) -> bool {
        if self.head() == Some(ticket) {
            self.entries.pop_front();
            return true;
        }
        match self.position(ticket) {
            Some(i) => {
                self.entries.remove(i);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_arrival_order_and_removes_from_anywhere() {
        let mut q = WaitQueue::default();
        for t in [3, 5, 8, 13] {
            q.push(t, Waker::noop().clone());
        }
        assert_eq!((q.len(), q.head()), (4, Some(3)));
        assert!(q.remove(8));
        assert!(!q.remove(8));
        assert!(q.waker_mut(5).is_some());
        assert!(q.waker_mut(8).is_none());
        assert!(q.remove(3));
        assert_eq!(q.head(), Some(5));
        assert!(q.remove(5) && q.remove(13));
        assert!(q.is_empty() && q.head_waker().is_none());
    }
}
