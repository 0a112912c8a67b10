//! [`Slots`]: the in-flight count of a group whose decisions need no clock
//! (no start window, no rate), kept with the number of waiters in one
//! atomic word, so that taking and giving back a slot needs no lock while
//! nobody waits.
//!
//! # The protocol with waiters
//!
//! The word holds the slots taken (low half) and the waiters queued (high
//! half; the queue itself stays under the group's lock, and changes the
//! count as it changes). A newcomer takes a slot without the lock only
//! while nobody waits, so it never overtakes a waiter. A release gives its
//! slot back and, in the same read-modify-write, learns whether anyone
//! waits: then it wakes the head of the queue under the lock. A waiter
//! joining the queue counts itself in and, in the same read-modify-write,
//! learns whether a slot is free: then it looks again instead of sleeping.
//! The two read-modify-writes on one word are ordered one way or the
//! other, so a freed slot is never left unseen by a waiter that sleeps.
//! The loom models in `loom_model.rs` race exactly these.

use super::sync::{AtomicU64, Ordering};

/// One waiter, in the word's high half.
const WAITER: u64 = 1 << 32;
/// The slots taken, in the word's low half.
const TAKEN: u64 = WAITER - 1;

/// In-flight slots: at most `max` taken at once, and the waiters counted;
/// beside them, the starts made (on the same cache line as the word: a
/// start writes both).
#[derive(Debug)]
#[repr(align(64))]
pub(crate) struct Slots {
    word: AtomicU64,
    max: u64,
    /// Starts made on a slot (a slot handed to a waiter counts when it is
    /// handed; [`uncount_start`](Slots::uncount_start) takes back one
    /// that was not used).
    started: AtomicU64,
}

impl Slots {
    /// `max` slots (`u32::MAX` for no limit), none taken, nobody waiting.
    pub(crate) fn new(max: u32) -> Self {
        Slots {
            word: AtomicU64::new(0),
            max: u64::from(max),
            started: AtomicU64::new(0),
        }
    }

    /// Counts a start made on a slot.
    #[inline]
    pub(crate) fn count_start(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes back a counted start that did not happen (its slot was
    /// given back unused).
    pub(crate) fn uncount_start(&self) {
        self.started.fetch_sub(1, Ordering::Relaxed);
    }

    /// Starts made on slots so far.
    pub(crate) fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Takes a slot if one is free and nobody waits (a newcomer without the
    /// lock).
    #[inline]
    pub(crate) fn try_take_first(&self) -> bool {
        self.take_if(|word| word < self.max)
    }

    /// Takes a slot if one is free, waiters or not (under the group's lock,
    /// for the caller first in line).
    pub(crate) fn try_take(&self) -> bool {
        self.take_if(|word| word & TAKEN < self.max)
    }

    #[inline]
    fn take_if(&self, may: impl Fn(u64) -> bool) -> bool {
        let mut word = self.word.load(Ordering::Relaxed);
        loop {
            if !may(word) {
                return false;
            }
            match self.word.compare_exchange_weak(
                word,
                word + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => word = now,
            }
        }
    }

    /// Gives a slot back; answers whether anyone waits (then the head of
    /// the queue must be woken).
    #[inline]
    pub(crate) fn give_back(&self) -> bool {
        let before = self.word.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(before & TAKEN > 0, "a slot given back that was never taken");
        before >= WAITER
    }

    /// Counts a waiter in (under the group's lock); answers whether a slot
    /// is free at that moment (then the waiter must look again).
    pub(crate) fn waiter_joined(&self) -> bool {
        let before = self.word.fetch_add(WAITER, Ordering::AcqRel);
        before & TAKEN < self.max
    }

    /// Counts a waiter out (under the group's lock).
    pub(crate) fn waiter_left(&self) {
        self.word.fetch_sub(WAITER, Ordering::AcqRel);
    }

    /// Waiters counted in the word (tests check it against the queue).
    #[cfg(test)]
    pub(crate) fn waiters(&self) -> u32 {
        (self.word.load(Ordering::Acquire) >> 32) as u32
    }

    /// Whether anyone waits.
    pub(crate) fn anyone_waiting(&self) -> bool {
        self.word.load(Ordering::Acquire) >= WAITER
    }

    /// Whether a slot is free now.
    pub(crate) fn free(&self) -> bool {
        u64::from(self.taken()) < self.max
    }

    /// Slots taken now.
    pub(crate) fn taken(&self) -> u32 {
        (self.word.load(Ordering::Acquire) & TAKEN) as u32
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn takes_up_to_max_and_gives_back() {
        let slots = Slots::new(2);
        assert!(slots.try_take_first() && slots.try_take_first());
        assert!(!slots.try_take_first() && !slots.free());
        assert_eq!(slots.taken(), 2);
        assert!(!slots.give_back(), "nobody waits");
        assert!(slots.free() && slots.try_take());
        assert_eq!(slots.taken(), 2);
    }

    #[test]
    fn waiters_stop_newcomers_and_learn_of_free_slots() {
        let slots = Slots::new(1);
        assert!(slots.try_take_first());
        assert!(!slots.waiter_joined(), "the one slot is taken");
        assert!(slots.anyone_waiting());
        assert!(slots.give_back(), "a waiter must be woken");
        assert!(!slots.try_take_first(), "a newcomer does not overtake");
        assert!(slots.try_take(), "the first in line takes it");
        slots.waiter_left();
        assert!(!slots.anyone_waiting());
        assert!(!slots.give_back());
        assert!(slots.waiter_joined(), "a slot is free as it joins");
        slots.waiter_left();
    }

    #[test]
    fn never_overfills_across_threads() {
        let slots = std::sync::Arc::new(Slots::new(3));
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (slots, peak) = (slots.clone(), peak.clone());
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        if slots.try_take_first() {
                            peak.fetch_max(slots.taken(), Ordering::SeqCst);
                            slots.give_back();
                        }
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert!(peak.load(Ordering::SeqCst) <= 3);
        assert_eq!(slots.taken(), 0);
    }
}
