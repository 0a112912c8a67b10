//! The mock runtime's virtual clock and its ordered timer queue.
//!
//! Virtual time is kept as nanoseconds since the runtime was made; it moves
//! only when the executor (`executor.rs`) says so. This module owns the
//! reading of that time and the ordering of timers; it decides nothing
//! about when to advance.

use std::collections::BTreeMap;
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

    pub(crate) fn system_now(&self) -> SystemTime {
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

/// A timer's place in the queue: its deadline, then the order in which it
/// was registered, so that equal deadlines fire first-come first-served.
pub(crate) type TimerKey = (u64, u64);

/// Pending timers, ordered by (deadline, registration sequence).
#[derive(Default)]
pub(crate) struct TimerQueue {
    timers: BTreeMap<TimerKey, Waker>,
    next_seq: u64,
}

impl TimerQueue {
    /// Registers a waker for `deadline`; returns its key.
    pub(crate) fn insert(&mut self, deadline: u64, waker: Waker) -> TimerKey {
        let key = (deadline, self.next_seq);
        self.next_seq += 1;
        self.timers.insert(key, waker);
        key
    }

    /// Replaces the waker of a registered timer, returning the old one for
    /// the caller to drop outside any lock; re-registers a timer that is
    /// missing (never expected, but harmless).
    pub(crate) fn update(&mut self, key: TimerKey, waker: &Waker) -> (TimerKey, Option<Waker>) {
        match self.timers.get_mut(&key) {
            Some(current) if current.will_wake(waker) => (key, None),
            Some(current) => (key, Some(std::mem::replace(current, waker.clone()))),
            None => (self.insert(key.0, waker.clone()), None),
        }
    }

    pub(crate) fn remove(&mut self, key: TimerKey) -> Option<Waker> {
        self.timers.remove(&key)
    }

    /// The earliest deadline, if any timer is pending.
    pub(crate) fn earliest(&self) -> Option<u64> {
        self.timers.first_key_value().map(|(&(deadline, _), _)| deadline)
    }

    /// Removes every timer due exactly at `deadline`, in registration order.
    pub(crate) fn take_due(&mut self, deadline: u64, into: &mut Vec<Waker>) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 != deadline {
                break;
            }
            into.push(entry.remove());
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.timers.len()
    }

    pub(crate) fn take_all(&mut self) -> BTreeMap<TimerKey, Waker> {
        std::mem::take(&mut self.timers)
    }
}
