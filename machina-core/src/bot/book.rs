//! The bot's book of spawned executes that are still running, and what
//! those that ended came to: [`ExecuteBook`].
//!
//! Every spawned execute is booked when its task is made and struck off
//! when it ends, usually on another worker thread than the one that
//! booked it. The book is therefore split into shards, each a slab of
//! entries under its own lock on its own cache line: a thread books into
//! the shards in turn, so the thread spawning executes and the threads
//! finishing them seldom wait for the same lock. Entries have
//! generation-checked ids, so that adding and removing one is O(1)
//! without hashing, and a late update for a finished execute can never
//! touch the entry that reused its slot. An entry names its execute by
//! the index the bot gave it at registration (no reference count to
//! update per call).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::rt::AbortHandle;

/// Shards of the book: a power of two, enough that two or three busy
/// threads rarely meet on one lock.
const SHARDS: usize = 16;

/// No slot: the end of a shard's list of free slots.
const NO_SLOT: u32 = u32::MAX;

/// One entry of a slab (24 bytes): a running execute, or a free slot
/// linked to the next free one (so a booking touches no list of its own).
struct Slot {
    generation: u32,
    /// Booked: the execute's name index. Free: the next free slot, or
    /// [`NO_SLOT`].
    link: u32,
    /// Booked: how to abort the execute's task. Free: `None`.
    abort: Option<AbortHandle>,
}

/// One shard's entries and the counts of those that ended: the slots'
/// vector and the head of the free list first, on the shard's first cache
/// line with its lock and count.
#[repr(C)]
struct Slab {
    slots: Vec<Slot>,
    /// The first free slot, or [`NO_SLOT`].
    free: u32,
    ended: EndedCounts,
}

impl Default for Slab {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: NO_SLOT,
            ended: EndedCounts::default(),
        }
    }
}

/// How the executes struck off the book ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct EndedCounts {
    pub(crate) ok: u64,
    pub(crate) failed: u64,
    pub(crate) cancelled: u64,
}

/// How one execute ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    Ok,
    Failed,
    Cancelled,
}

/// A shard, alone on its cache lines: its count, lock, slots' vector and
/// free list on the first (everything a booking touches: bytes 0–44),
/// then the ended counts (bytes 48–72, so a cancelled ending also touches
/// the second line). The layout is checked below.
#[repr(C, align(64))]
#[derive(Default)]
struct Shard {
    /// The slab's entries (low 32 bits) and how many it has ever booked
    /// (high 32 bits, wrapping): written under its lock, read without it
    /// (see [`ExecuteBook::is_empty`]).
    count: AtomicU64,
    slab: Mutex<Slab>,
}

// The layout the comments above describe, on the platform they were
// measured on (std's `Mutex` is a 4-byte futex and a poison flag there).
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<Slot>() == 24);
    assert!(offset_of!(Shard, count) == 0 && offset_of!(Shard, slab) == 8);
    assert!(size_of::<Mutex<Slab>>() == 8 + size_of::<Slab>());
    assert!(offset_of!(Slab, free) == 24 && offset_of!(Slab, ended) == 32);
    assert!(size_of::<Shard>() == 128);
};

/// One more booking in a shard's count word.
const BOOKED: u64 = 1 << 32;
/// The running entries in a shard's count word.
const LIVE: u64 = BOOKED - 1;

impl Shard {
    fn lock(&self) -> MutexGuard<'_, Slab> {
        self.slab.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Identifies one entry: its shard, its slot and the slot's generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct EntryId {
    shard: u32,
    slot: u32,
    generation: u32,
}

/// The running executes, sharded (see the module docs).
pub(crate) struct ExecuteBook {
    shards: Box<[Shard]>,
}

impl Default for ExecuteBook {
    fn default() -> Self {
        ExecuteBook {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }
}

/// The shard this thread books into next: each thread goes round the
/// shards from a place of its own.
fn next_shard() -> usize {
    /// Where the next thread to book starts (threads start spread out).
    static STARTS: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static NEXT: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    NEXT.with(|next| {
        let mut at = next.get();
        if at == usize::MAX {
            at = STARTS.fetch_add(SHARDS / 4 + 1, Ordering::Relaxed);
        }
        next.set(at.wrapping_add(1));
        at % SHARDS
    })
}

impl ExecuteBook {
    /// Adds a running execute (its registration index `name`), aborted
    /// through `abort`.
    pub(crate) fn insert(&self, name: u32, abort: AbortHandle) -> EntryId {
        let shard_index = next_shard();
        let shard = &self.shards[shard_index];
        let mut slab = shard.lock();
        let slab = &mut *slab;
        let index = match slab.slots.get_mut(slab.free as usize) {
            Some(free) => {
                let index = slab.free as usize;
                slab.free = free.link;
                index
            }
            None => {
                slab.slots.push(Slot {
                    generation: 0,
                    link: NO_SLOT,
                    abort: None,
                });
                slab.slots.len() - 1
            }
        };
        let slot = &mut slab.slots[index];
        slot.link = name;
        slot.abort = Some(abort);
        let id = EntryId {
            shard: shard_index as u32,
            slot: index as u32,
            generation: slot.generation,
        };
        // Sequentially consistent: a booking must be seen by an idle
        // check's second look if it came after the first (see
        // `is_empty`).
        let count = shard.count.load(Ordering::Relaxed);
        shard
            .count
            .store(count.wrapping_add(BOOKED) + 1, Ordering::SeqCst);
        id
    }

    /// Strikes entry `id` off, counting how it `ended`. Returns its name
    /// index if it was running, and whether its shard is now empty.
    pub(crate) fn remove(&self, id: EntryId, ended: Ended) -> Option<(u32, bool)> {
        let shard = self.shards.get(id.shard as usize)?;
        let mut slab = shard.lock();
        let slab_ref = &mut *slab;
        let slot = slab_ref
            .slots
            .get_mut(id.slot as usize)
            .filter(|s| s.generation == id.generation)?;
        let abort = slot.abort.take()?;
        let name = slot.link;
        slot.generation = slot.generation.wrapping_add(1);
        slot.link = slab_ref.free;
        slab_ref.free = id.slot;
        match ended {
            Ended::Ok => slab.ended.ok += 1,
            Ended::Failed => slab.ended.failed += 1,
            Ended::Cancelled => slab.ended.cancelled += 1,
        }
        let count = shard.count.load(Ordering::Relaxed) - 1;
        let emptied = count & LIVE == 0;
        if emptied {
            // Sequentially consistent with the bot's idle flag: a waiter
            // that set the flag before this store sees the zero, or this
            // remover sees the flag. (A count above zero is never what
            // makes a waiter ready: a plain store will do, and a waiter
            // that reads a stale one waits for the fall to zero.)
            shard.count.store(count, Ordering::SeqCst);
        } else {
            shard.count.store(count, Ordering::Release);
        }
        // The abort handle's count is the task's, on another cache line:
        // given back once the shard's lock is free.
        drop(slab);
        drop(abort);
        Some((name, emptied))
    }

    /// Whether no execute is running, read without the locks.
    ///
    /// The shards are read one after another, so one look is no snapshot:
    /// an execute running in a shard already read could book another
    /// into it and end before its own shard is read. So every shard is
    /// looked at twice: empty both times, and with no booking between the
    /// two looks, means every shard was empty at once (between the looks
    /// counts can only fall). Any change between the looks answers "not
    /// empty"; the removal that later empties a shard looks again.
    pub(crate) fn is_empty(&self) -> bool {
        let mut first = [0u64; SHARDS];
        for (seen, shard) in first.iter_mut().zip(self.shards.iter()) {
            *seen = shard.count.load(Ordering::SeqCst);
            if *seen & LIVE != 0 {
                return false;
            }
        }
        first
            .iter()
            .zip(self.shards.iter())
            .all(|(seen, shard)| shard.count.load(Ordering::SeqCst) == *seen)
    }

    /// How many executes are running.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| (s.count.load(Ordering::SeqCst) & LIVE) as usize)
            .sum()
    }

    /// The running executes: id, name index and abort handle.
    pub(crate) fn entries(&self) -> Vec<(EntryId, u32, AbortHandle)> {
        let mut entries = Vec::new();
        for (shard_index, shard) in self.shards.iter().enumerate() {
            let slab = shard.lock();
            for (index, slot) in slab.slots.iter().enumerate() {
                if let Some(abort) = &slot.abort {
                    let id = EntryId {
                        shard: shard_index as u32,
                        slot: index as u32,
                        generation: slot.generation,
                    };
                    entries.push((id, slot.link, abort.clone()));
                }
            }
        }
        entries
    }

    /// How the executes struck off so far ended.
    pub(crate) fn ended(&self) -> EndedCounts {
        let mut total = EndedCounts::default();
        for shard in self.shards.iter() {
            let ended = shard.lock().ended;
            total.ok += ended.ok;
            total.failed += ended.failed;
            total.cancelled += ended.cancelled;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn abort() -> AbortHandle {
        crate::rt::Task::new(async {}).1.abort_handle()
    }

    #[test]
    fn a_reused_slot_ignores_updates_for_its_former_entry() {
        let book = ExecuteBook::default();
        // Sixteen more entries than shards: every shard is used, and some
        // slot of each is reused below.
        let ids: Vec<EntryId> = (0..SHARDS as u32 + 16)
            .map(|n| book.insert(n, abort()))
            .collect();
        assert_eq!(book.len(), SHARDS + 16);
        let a = ids[0];
        assert_eq!(book.remove(a, Ended::Ok).map(|(n, _)| n), Some(0));
        assert_eq!(book.remove(a, Ended::Ok), None, "removed once");
        let fresh: Vec<EntryId> = (0..SHARDS as u32)
            .map(|n| book.insert(100 + n, abort()))
            .collect();
        let reused = fresh
            .iter()
            .find(|id| id.shard == a.shard && id.slot == a.slot)
            .expect("the freed slot is reused by the next entry of its shard");
        assert_ne!(*reused, a, "same slot, new generation");
        assert_eq!(
            book.remove(a, Ended::Failed),
            None,
            "a stale id removes nothing"
        );
        let names: Vec<u32> = book.entries().iter().map(|(_, n, _)| *n).collect();
        assert_eq!(names.len(), 2 * SHARDS + 15);
        assert!(!names.contains(&0));
        for id in ids.iter().skip(1).chain(&fresh) {
            assert!(book.remove(*id, Ended::Cancelled).is_some());
        }
        assert!(book.is_empty());
        assert_eq!(
            book.ended(),
            EndedCounts {
                ok: 1,
                failed: 0,
                cancelled: 2 * SHARDS as u64 + 15,
            }
        );
    }

    #[test]
    fn a_removal_says_when_its_shard_empties() {
        let book = ExecuteBook::default();
        let ids: Vec<EntryId> = (0..2 * SHARDS as u32)
            .map(|n| book.insert(n, abort()))
            .collect();
        // Each shard holds two entries: the first removal leaves one.
        let first = ids[0];
        let twin = ids
            .iter()
            .skip(1)
            .find(|id| id.shard == first.shard)
            .copied()
            .expect("two entries per shard");
        assert_eq!(book.remove(first, Ended::Ok).map(|(_, e)| e), Some(false));
        assert_eq!(book.remove(twin, Ended::Ok).map(|(_, e)| e), Some(true));
        assert!(!book.is_empty(), "other shards still hold entries");
    }

    #[test]
    fn a_chain_of_executes_never_looks_empty() {
        // Each execute books the next before it ends, so one is always
        // running, moving from shard to shard: a look that reads the
        // shards one after another must still never find them all empty.
        use std::sync::Arc;
        use std::sync::atomic::AtomicBool;
        let book = Arc::new(ExecuteBook::default());
        let done = Arc::new(AtomicBool::new(false));
        let looker = {
            let (book, done) = (book.clone(), done.clone());
            std::thread::spawn(move || {
                let mut looks = 0u64;
                while !done.load(Ordering::Relaxed) {
                    assert!(!book.is_empty(), "empty while an execute runs");
                    looks += 1;
                }
                looks
            })
        };
        let handle = abort();
        let mut running = book.insert(0, handle.clone());
        for n in 1..300_000 {
            let next = book.insert(n, handle.clone());
            assert!(book.remove(running, Ended::Ok).is_some());
            running = next;
        }
        done.store(true, Ordering::Relaxed);
        assert!(looker.join().expect("looker") > 0);
        assert!(book.remove(running, Ended::Ok).is_some());
        assert!(book.is_empty());
    }

    #[test]
    fn threads_book_and_strike_off_concurrently() {
        let book = std::sync::Arc::new(ExecuteBook::default());
        let (tx, rx) = std::sync::mpsc::channel::<EntryId>();
        let remover = {
            let book = book.clone();
            std::thread::spawn(move || {
                let mut removed = 0;
                for id in rx {
                    assert!(book.remove(id, Ended::Ok).is_some());
                    removed += 1;
                }
                removed
            })
        };
        for n in 0..10_000 {
            tx.send(book.insert(n, abort())).expect("remover");
        }
        drop(tx);
        assert_eq!(remover.join().expect("remover"), 10_000);
        assert!(book.is_empty());
        assert_eq!(book.ended().ok, 10_000);
    }
}
