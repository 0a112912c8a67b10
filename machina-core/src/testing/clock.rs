//! The mock runtime's virtual clock and its ordered timer queue.
//!
//! Virtual time is kept as nanoseconds since the runtime was made; it moves
//! only when the executor (`executor.rs`) says so. This module owns the
//! reading of that time and the ordering of timers; it decides nothing
//! about when to advance.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Waker;
use std::time::{Duration, Instant, SystemTime};

/// Virtual time, readable from any thread without a lock.
pub(crate) struct VirtualClock {
    base: Instant,
    system_base: SystemTime,
    elapsed_nanos: AtomicU64,
}

impl VirtualClock {
    pub(crate) fn new(system_base: SystemTime) -> Self {
        VirtualClock {
            // The one real-clock reading of the mock runtime: an anchor for
            // `Instant`, which has no other constructor. Nothing depends on
            // its value.
            base: Instant::now(),
            system_base,
            elapsed_nanos: AtomicU64::new(0),
        }
    }

    /// Virtual nanoseconds since the runtime was made.
    pub(crate) fn elapsed_nanos(&self) -> u64 {
        self.elapsed_nanos.load(Ordering::Acquire)
    }

    pub(crate) fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.elapsed_nanos())
    }

    pub(crate) fn now(&self) -> Instant {
        self.base + self.elapsed()
    }

    pub(crate) fn calendar_now(&self) -> SystemTime {
        self.system_base + self.elapsed()
    }

    /// Moves the clock forward to `nanos`; never backwards.
    pub(crate) fn advance_to(&self, nanos: u64) {
        self.elapsed_nanos.fetch_max(nanos, Ordering::AcqRel);
    }

    /// An `Instant` as virtual nanoseconds: instants before the start count
    /// as 0, instants past `u64::MAX` ns (584 years) as that.
    pub(crate) fn to_virtual(&self, instant: Instant) -> u64 {
        let since = instant.saturating_duration_since(self.base);
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Where a registered timer lives: its deadline, its registration sequence
/// (so that equal deadlines fire first-come first-served) and its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerKey {
    deadline: u64,
    seq: u64,
    slot: usize,
}

struct Slot {
    seq: u64,
    waker: Option<Waker>,
}

/// Pending timers, ordered by (deadline, registration sequence).
///
/// A binary heap of keys over a slab of wakers. Removing a timer empties its
/// slot at once (so it never fires and the clock never jumps to it); its key
/// stays in the heap until it reaches the top or the heap is compacted, and
/// is skipped as stale because its sequence no longer matches the slot.
#[derive(Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<TimerKey>>,
    slots: Vec<Slot>,
    free: Vec<usize>,
    live: usize,
    next_seq: u64,
}

impl TimerQueue {
    /// Registers a waker for `deadline`; returns its key.
    pub(crate) fn insert(&mut self, deadline: u64, waker: Waker) -> TimerKey {
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Slot {
                    seq,
                    waker: Some(waker),
                };
                slot
            }
            None => {
                self.slots.push(Slot {
                    seq,
                    waker: Some(waker),
                });
                self.slots.len() - 1
            }
        };
        let key = TimerKey {
            deadline,
            seq,
            slot,
        };
        self.heap.push(Reverse(key));
        self.live += 1;
        key
    }

    fn slot_mut(&mut self, key: TimerKey) -> Option<&mut Option<Waker>> {
        self.slots
            .get_mut(key.slot)
            .filter(|slot| slot.seq == key.seq && slot.waker.is_some())
            .map(|slot| &mut slot.waker)
    }

    /// Replaces the waker of a registered timer, returning the old one for
    /// the caller to drop outside any lock; re-registers a timer that is
    /// missing (never expected, but harmless).
    pub(crate) fn update(&mut self, key: TimerKey, waker: &Waker) -> (TimerKey, Option<Waker>) {
        match self.slot_mut(key) {
            Some(Some(current)) if current.will_wake(waker) => (key, None),
            Some(current) => (key, current.replace(waker.clone())),
            None => (self.insert(key.deadline, waker.clone()), None),
        }
    }

    /// Unregisters a timer; returns its waker if it was still pending.
    pub(crate) fn remove(&mut self, key: TimerKey) -> Option<Waker> {
        let waker = self.slot_mut(key)?.take();
        self.free.push(key.slot);
        self.live -= 1;
        // Keep stale keys from piling up when many timers are dropped
        // before they are due (timeouts that did not fire).
        if self.heap.len() > 2 * self.live + 64 {
            let slots = &self.slots;
            self.heap
                .retain(|Reverse(k)| slots[k.slot].seq == k.seq && slots[k.slot].waker.is_some());
        }
        waker
    }

    fn is_live(&self, key: &TimerKey) -> bool {
        let slot = &self.slots[key.slot];
        slot.seq == key.seq && slot.waker.is_some()
    }

    /// The earliest deadline, if any timer is pending.
    pub(crate) fn earliest(&mut self) -> Option<u64> {
        while let Some(Reverse(top)) = self.heap.peek() {
            if self.is_live(top) {
                return Some(top.deadline);
            }
            self.heap.pop();
        }
        None
    }

    /// Removes every timer due exactly at `deadline`, in registration order.
    pub(crate) fn take_due(&mut self, deadline: u64, into: &mut Vec<Waker>) {
        while let Some(Reverse(top)) = self.heap.peek() {
            if top.deadline != deadline {
                break;
            }
            let key = *top;
            self.heap.pop();
            if let Some(waker) = self.slot_mut(key).and_then(Option::take) {
                self.free.push(key.slot);
                self.live -= 1;
                into.push(waker);
            }
        }
    }

    /// How many timers are registered.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Unregisters everything, returning the wakers to drop outside a lock.
    pub(crate) fn take_all(&mut self) -> Vec<Waker> {
        self.heap.clear();
        self.free.clear();
        self.live = 0;
        std::mem::take(&mut self.slots)
            .into_iter()
            .filter_map(|slot| slot.waker)
            .collect()
    }
}
