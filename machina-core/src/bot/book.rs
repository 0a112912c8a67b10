//! The bot's book of spawned executes that are still running: a slab of
//! entries with generation-checked ids, so that adding and removing one is
//! O(1) without hashing, and a late update for a finished execute can
//! never touch the entry that reused its slot.

use std::sync::Arc;

use crate::rt::AbortHandle;

struct Slot {
    generation: u32,
    entry: Option<(Arc<str>, AbortHandle)>,
}

#[derive(Default)]
pub(crate) struct ExecuteBook {
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
}

/// Identifies one entry: its slot and the slot's generation.
pub(crate) type EntryId = u64;

fn split(id: EntryId) -> (usize, u32) {
    ((id & 0xffff_ffff) as usize, (id >> 32) as u32)
}

impl ExecuteBook {
    /// Adds a running execute named `name`, aborted through `abort`.
    pub(crate) fn insert(&mut self, name: Arc<str>, abort: AbortHandle) -> EntryId {
        self.live += 1;
        let index = match self.free.pop() {
            Some(index) => index as usize,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    entry: None,
                });
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[index];
        slot.entry = Some((name, abort));
        (u64::from(slot.generation) << 32) | index as u64
    }

    fn slot_mut(&mut self, id: EntryId) -> Option<&mut Slot> {
        let (index, generation) = split(id);
        self.slots
            .get_mut(index)
            .filter(|s| s.generation == generation && s.entry.is_some())
    }

    /// Removes entry `id`; returns its name if it was running.
    pub(crate) fn remove(&mut self, id: EntryId) -> Option<Arc<str>> {
        let slot = self.slot_mut(id)?;
        let (name, _) = slot.entry.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(split(id).0 as u32);
        self.live -= 1;
        Some(name)
    }

    /// How many executes are running.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// The running executes: id, name and abort handle.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (EntryId, &Arc<str>, &AbortHandle)> {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            let (name, abort) = slot.entry.as_ref()?;
            Some((
                (u64::from(slot.generation) << 32) | index as u64,
                name,
                abort,
            ))
        })
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
        let mut book = ExecuteBook::default();
        let a = book.insert("a".into(), abort());
        let b = book.insert("b".into(), abort());
        assert_eq!(book.len(), 2);
        assert_eq!(book.remove(a).as_deref(), Some("a"));
        assert_eq!(book.remove(a), None, "removed once");
        let c = book.insert("c".into(), abort());
        assert_ne!(a, c, "same slot, new generation");
        assert_eq!(book.remove(a), None, "a stale id does not remove c");
        let names: Vec<_> = book.iter().map(|(_, n, _)| n.to_string()).collect();
        assert_eq!(names, ["c", "b"]);
        assert_eq!(book.remove(b).as_deref(), Some("b"));
        assert_eq!(book.remove(c).as_deref(), Some("c"));
        assert_eq!(book.len(), 0);
    }
}
