//! The tuple index: both tuples of every entry, each found with one hash
//! probe.
//!
//! A bucket holds 4 bytes, the entry's slot and the tuple's direction
//! (`slot << 1 | direction`), not the tuple: a probe compares the key
//! with the tuple in the slot, which the caller reads next anyway (the
//! 7-bit tags of the control bytes rule out almost every other bucket
//! first). A table of `2 * capacity` tuples is then about 5 bytes per
//! bucket instead of 25 with the tuple and the id stored.

use hashbrown::HashTable;

use super::{Direction, EntryId, Hasher, Slot};
use crate::wire::packet::FlowKey;

/// See the module documentation.
pub(super) struct FlowIndex {
    table: HashTable<u32>,
    hasher: Hasher,
}

fn bucket(slot: u32, dir: Direction) -> u32 {
    slot << 1 | dir as u32
}

fn direction(bucket: u32) -> Direction {
    if bucket & 1 == 0 {
        Direction::Original
    } else {
        Direction::Reply
    }
}

/// The tuple `bucket` stands for, read from its slot.
#[inline]
fn key_of(slots: &[Slot], bucket: u32) -> Option<&FlowKey> {
    let e = slots.get((bucket >> 1) as usize)?.entry.as_ref()?;
    Some(match direction(bucket) {
        Direction::Original => &e.original,
        Direction::Reply => &e.reply,
    })
}

impl FlowIndex {
    /// An index with room for `tuples` tuples before it grows.
    pub(super) fn with_capacity(tuples: usize, hasher: Hasher) -> Self {
        Self {
            table: HashTable::with_capacity(tuples),
            hasher,
        }
    }

    #[inline]
    fn hash(&self, key: &FlowKey) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The entry `key` belongs to, and which of its tuples it is.
    #[inline]
    pub(super) fn get(&self, slots: &[Slot], key: &FlowKey) -> Option<(EntryId, Direction)> {
        let b = *self
            .table
            .find(self.hash(key), |&b| key_of(slots, b) == Some(key))?;
        Some((EntryId(b >> 1), direction(b)))
    }

    /// Whether `key` is indexed.
    pub(super) fn contains(&self, slots: &[Slot], key: &FlowKey) -> bool {
        self.get(slots, key).is_some()
    }

    /// Indexes tuple `dir` of the entry in `slot` (already there), whose
    /// tuple is `key` and not indexed yet.
    pub(super) fn insert(&mut self, slots: &[Slot], key: &FlowKey, slot: u32, dir: Direction) {
        let hasher = &self.hasher;
        self.table
            .insert_unique(self.hasher.hash_one(key), bucket(slot, dir), |&b| {
                // Growing: every indexed tuple is in its slot.
                key_of(slots, b).map_or(0, |k| hasher.hash_one(k))
            });
    }

    /// Forgets tuple `dir` (`key`) of the entry in `slot`.
    pub(super) fn remove(&mut self, key: &FlowKey, slot: u32, dir: Direction) {
        let b = bucket(slot, dir);
        if let Ok(found) = self.table.find_entry(self.hash(key), |&x| x == b) {
            found.remove();
        }
    }
}
