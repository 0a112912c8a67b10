//! A group's queue of waiters: tickets in arrival order with their wakers.
//!
//! Tickets are handed out in one process-wide order of arrival
//! ([`next_ticket`]), so a caller waiting for several groups is ordered by
//! its age in each. A newcomer's ticket is the newest, so it goes at the
//! back; a multi-group caller that starts waiting for this group later
//! goes in at its place by age (binary search). The head is served from
//! the front. A `VecDeque` keeps its buffer, so a busy queue does not
//! allocate per waiter (a `BTreeMap` allocates and frees nodes as waiters
//! come and go, often on different threads).
//!
//! A group on [`Slots`] has its waiters counted in the slots' word as they
//! join and leave (see `slots.rs`).

use std::sync::atomic::{AtomicU64, Ordering};

use std::collections::VecDeque;
use std::task::Waker;

use super::slots::Slots;
use super::sync::Arc;

/// The next arrival ticket: one order of arrival across every group, so
/// that age compares between queues. (A counter only; it holds no other
/// state.)
pub(crate) fn next_ticket() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[derive(Debug, Default)]
pub(crate) struct WaitQueue {
    entries: VecDeque<(u64, Waker)>,
    /// The group's slots, if it is on slots: told of every waiter that
    /// joins or leaves.
    slots: Option<Arc<Slots>>,
}

impl WaitQueue {
    /// An empty queue of a group on `slots` (or on its policy: `None`).
    pub(crate) fn new(slots: Option<Arc<Slots>>) -> Self {
        WaitQueue {
            entries: VecDeque::new(),
            slots,
        }
    }

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

    /// Queues `ticket` at its place by age (at the back for a newcomer).
    /// Queues `ticket`; answers whether the group's slots had one free
    /// as it joined (then the waiter must look again rather than sleep: a
    /// release may have given it back without seeing this waiter).
    #[must_use = "a waiter that joins beside a free slot must look again"]
    pub(crate) fn insert(&mut self, ticket: u64, waker: Waker) -> bool {
        if self.entries.back().is_none_or(|(t, _)| *t < ticket) {
            self.entries.push_back((ticket, waker));
        } else {
            match self.entries.binary_search_by_key(&ticket, |(t, _)| *t) {
                Ok(_) => {
                    debug_assert!(false, "ticket {ticket} queued twice");
                    return false;
                }
                Err(i) => self.entries.insert(i, (ticket, waker)),
            }
        }
        self.slots.as_ref().is_some_and(|s| s.waiter_joined())
    }

    /// Whether a waiter older than `ticket` is queued.
    pub(crate) fn has_older_than(&self, ticket: u64) -> bool {
        self.head().is_some_and(|head| head < ticket)
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
        let removed = if self.head() == Some(ticket) {
            self.entries.pop_front();
            true
        } else {
            match self.position(ticket) {
                Some(i) => {
                    self.entries.remove(i);
                    true
                }
                None => false,
            }
        };
        if removed && let Some(slots) = &self.slots {
            slots.waiter_left();
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_arrival_order_and_removes_from_anywhere() {
        let mut q = WaitQueue::default();
        for t in [3, 8, 13] {
            assert!(!q.insert(t, Waker::noop().clone()));
        }
        // An older caller that starts waiting here later goes in by age.
        assert!(!q.insert(5, Waker::noop().clone()));
        assert!(q.has_older_than(4) && !q.has_older_than(3));
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

    #[test]
    fn counts_its_waiters_in_the_slots() {
        let slots = Arc::new(Slots::new(1));
        let mut q = WaitQueue::new(Some(slots.clone()));
        assert!(q.insert(1, Waker::noop().clone()), "the slot is free");
        assert!(slots.try_take());
        assert!(!q.insert(2, Waker::noop().clone()), "and now taken");
        assert!(slots.anyone_waiting());
        assert!(q.remove(1) && !q.remove(1));
        assert!(slots.anyone_waiting());
        assert!(q.remove(2));
        assert!(!slots.anyone_waiting());
    }
}
