//! The store's index from flow keys to rows, eight bytes a row so that a million rows (16 MB)
//! stay in cache: at that size a general hash map's random accesses go to memory, and they were
//! the costliest part of storing a flow.
//!
//! An open-addressed table with linear probing. A slot holds 32 bits of the key's hash (the tag)
//! and the low 32 bits of the row's id; the caller compares keys for a tag that matches. The slot
//! of an entry follows from its tag alone, so growing never reads the rows.

/// The low 32 bits of a row id; the store turns them back into the id (it holds fewer than 2^32
/// rows, so they are unique among stored rows).
pub type ShortId = u32;

#[derive(Debug, Default)]
pub struct RowIndex {
    /// `tag << 32 | short id`; 0 is an empty slot (tags are odd, so no entry is 0).
    slots: Vec<u64>,
    len: usize,
}

/// The tag of a hash: its high 32 bits, made odd.
fn tag(hash: u64) -> u64 {
    (hash >> 32) | 1
}

impl RowIndex {
    /// Where the probe for `tag` starts: its top bits.
    fn home(&self, tag: u64) -> usize {
        let bits = self.slots.len().trailing_zeros();
        (tag >> (32 - bits)) as usize
    }

    fn next(&self, slot: usize) -> usize {
        (slot + 1) & (self.slots.len() - 1)
    }

    /// The entry with this hash whose row `is_match` accepts.
    pub fn find(&self, hash: u64, is_match: impl Fn(ShortId) -> bool) -> Option<ShortId> {
        if self.slots.is_empty() {
            return None;
        }
        let tag = tag(hash);
        let mut slot = self.home(tag);
        loop {
            let entry = self.slots[slot];
            if entry == 0 {
                return None;
            }
            if entry >> 32 == tag && is_match(entry as ShortId) {
                return Some(entry as ShortId);
            }
            slot = self.next(slot);
        }
    }

    /// Adds an entry; the key must not be in the index yet.
    pub fn insert(&mut self, hash: u64, id: ShortId) {
        // At most three quarters full: probes stay short.
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        self.place(tag(hash) << 32 | id as u64);
        self.len += 1;
    }

    fn place(&mut self, entry: u64) {
        let mut slot = self.home(entry >> 32);
        while self.slots[slot] != 0 {
            slot = self.next(slot);
        }
        self.slots[slot] = entry;
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![0; size]);
        for entry in old.into_iter().filter(|&entry| entry != 0) {
            self.place(entry);
        }
    }

    /// Removes the entry of row `id` (with the key of this hash), if there is one.
    pub fn remove(&mut self, hash: u64, id: ShortId) {
        let Some(mut hole) = self.position(hash, id) else {
            return;
        };
        self.slots[hole] = 0;
        self.len -= 1;
        // Move later entries of the run back into the hole if their probe passes it, so that
        // every entry stays reachable from its home without tombstones.
        let mut slot = self.next(hole);
        while self.slots[slot] != 0 {
            let home = self.home(self.slots[slot] >> 32);
            let passes_hole = (slot.wrapping_sub(home) & (self.slots.len() - 1))
                >= (slot.wrapping_sub(hole) & (self.slots.len() - 1));
            if passes_hole {
                self.slots[hole] = self.slots[slot];
                self.slots[slot] = 0;
                hole = slot;
            }
            slot = self.next(slot);
        }
    }

    fn position(&self, hash: u64, id: ShortId) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let entry = tag(hash) << 32 | id as u64;
        let mut slot = self.home(entry >> 32);
        loop {
            match self.slots[slot] {
                0 => return None,
                found if found == entry => return Some(slot),
                _ => slot = self.next(slot),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        /// Inserting and removing in any order, the index answers as a map would. Hashes are
        /// drawn from few values, so that runs collide and wrap around the table's end.
        #[test]
        fn the_index_agrees_with_a_map(
            steps in prop::collection::vec((any::<bool>(), 0u64..64, 0u32..200), 0..400),
        ) {
            let mut index = RowIndex::default();
            let mut map: HashMap<ShortId, u64> = HashMap::new();
            for (insert, hash_choice, id) in steps {
                // Spread the few hashes over the high bits (the tag and the home slot).
                let hash = hash_choice.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 0xFFFF;
                if insert && !map.contains_key(&id) {
                    index.insert(hash, id);
                    map.insert(id, hash);
                } else if let Some(hash) = map.remove(&id) {
                    index.remove(hash, id);
                    prop_assert_eq!(index.find(hash, |found| found == id), None);
                }
                for (&id, &hash) in &map {
                    prop_assert_eq!(index.find(hash, |found| found == id), Some(id));
                }
                prop_assert_eq!(index.len, map.len());
            }
        }
    }
}
