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

/// One waiter: its ticket, its waker, and whether a freed slot may be
/// handed to it directly (a caller waiting for this group alone; a caller
/// waiting for several starts in all of them together or in none).
#[derive(Debug)]
struct Entry {
    ticket: u64,
    waker: Waker,
    takes_handoff: bool,
}

#[derive(Debug, Default)]
pub(crate) struct WaitQueue {
    entries: VecDeque<Entry>,
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
        self.entries.front().map(|e| e.ticket)
    }

    /// The waker of the waiter first in line.
    pub(crate) fn head_waker(&self) -> Option<Waker> {
        self.entries.front().map(|e| e.waker.clone())
    }

    /// Whether the waiter first in line takes a slot handed to it.
    pub(crate) fn head_takes_handoff(&self) -> bool {
        self.entries.front().is_some_and(|e| e.takes_handoff)
    }

    /// Takes the waiter first in line out of the queue, to hand it a
    /// slot: its ticket and waker. It stays counted in the slots' word
    /// until it has collected the slot ([`granted_left`](Self::granted_left)),
    /// so that newcomers keep taking the lock and queue behind it.
    pub(crate) fn pop_head_for_grant(&mut self) -> Option<(u64, Waker)> {
        let entry = self.entries.pop_front()?;
        Some((entry.ticket, entry.waker))
    }

    /// A waiter handed a slot collected it, or left without it.
    pub(crate) fn granted_left(&self) {
        if let Some(slots) = &self.slots {
            slots.waiter_left();
        }
    }

    /// Queues `ticket` at its place by age (at the back for a newcomer);
    /// `takes_handoff`: a freed slot may be handed to it directly (see
    /// [`Entry`]). Answers whether the group's slots had one free as it
    /// joined (then the waiter must look again rather than sleep: a
    /// release may have given it back without seeing this waiter).
    #[must_use = "a waiter that joins beside a free slot must look again"]
    pub(crate) fn insert(&mut self, ticket: u64, waker: Waker, takes_handoff: bool) -> bool {
        let entry = Entry {
            ticket,
            waker,
            takes_handoff,
        };
        if self.entries.back().is_none_or(|e| e.ticket < ticket) {
            self.entries.push_back(entry);
        } else {
            match self.entries.binary_search_by_key(&ticket, |e| e.ticket) {
                Ok(_) => {
                    debug_assert!(false, "ticket {ticket} queued twice");
                    return false;
                }
                Err(i) => self.entries.insert(i, entry),
            }
        }
        self.slots.as_ref().is_some_and(|s| s.waiter_joined())
    }

    /// Whether a waiter older than `ticket` is queued.
    pub(crate) fn has_older_than(&self, ticket: u64) -> bool {
        self.head().is_some_and(|head| head < ticket)
    }

    fn position(&self, ticket: u64) -> Option<usize> {
        self.entries
            .binary_search_by_key(&ticket, |e| e.ticket)
            .ok()
    }

    /// The waker stored for `ticket`.
    pub(crate) fn waker_mut(&mut self, ticket: u64) -> Option<&mut Waker> {
        let i = self.position(ticket)?;
        self.entries.get_mut(i).map(|e| &mut e.waker)
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

/// Waiters a release handed its slot to (out of the queue, the slot still
/// taken), oldest first, until they collect it at their next poll. Slots
/// are handed in order of arrival; the callers woken start in whatever
/// order the executor polls them (tokio runs the task woken last first:
/// making a younger one wait for the older would cost each such pair a
/// second poll). Queued callers wait while any grant is uncollected.
#[derive(Debug, Default)]
pub(crate) struct Grants {
    entries: Vec<u64>,
}

impl Grants {
    /// Hands a slot to `ticket` (the head of the queue just now: younger
    /// than every grant before it).
    pub(crate) fn push(&mut self, ticket: u64) {
        debug_assert!(self.entries.last().is_none_or(|&t| t < ticket));
        self.entries.push(ticket);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether a grant older than `ticket` is uncollected.
    pub(crate) fn has_older_than(&self, ticket: u64) -> bool {
        self.entries.first().is_some_and(|&t| t < ticket)
    }

    /// Takes `ticket`'s grant: whether it held one (its caller collects
    /// the slot, or left without it).
    pub(crate) fn take(&mut self, ticket: u64) -> bool {
        match self.entries.iter().position(|&t| t == ticket) {
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
        for t in [3, 8, 13] {
            assert!(!q.insert(t, Waker::noop().clone(), true));
        }
        // An older caller that starts waiting here later goes in by age.
        assert!(!q.insert(5, Waker::noop().clone(), true));
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
        assert!(q.insert(1, Waker::noop().clone(), true), "the slot is free");
        assert!(slots.try_take());
        assert!(!q.insert(2, Waker::noop().clone(), false), "and now taken");
        assert!(slots.anyone_waiting());
        assert!(q.remove(1) && !q.remove(1));
        assert!(slots.anyone_waiting());
        assert!(q.remove(2));
        assert!(!slots.anyone_waiting());
    }
}
