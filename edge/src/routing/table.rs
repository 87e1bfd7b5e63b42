//! The trie's literal edges, all in one flat open-addressing table keyed by (parent node,
//! segment text). Short keys sit inline in the slot, so a lookup usually touches one
//! cache line; the table is built once and never changes.

use std::collections::HashMap;

use super::hasher::SegmentHash;

/// Keys up to this many bytes are stored inline; longer ones in `long_keys`.
const INLINE: usize = 16;
/// Marks an empty slot.
const EMPTY: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Slot {
    /// High half of the hash, to skip most non-matching slots without comparing keys.
    tag: u32,
    parent: u32,
    /// The child node, or [`EMPTY`].
    child: u32,
    len: u32,
    /// The key when `len <= INLINE`; otherwise its offset in `long_keys`, little-endian,
    /// in the first four bytes.
    key: [u8; INLINE],
}

const VACANT: Slot = Slot {
    tag: 0,
    parent: 0,
    child: EMPTY,
    len: 0,
    key: [0; INLINE],
};

#[derive(Debug)]
pub(super) struct EdgeTable {
    slots: Box<[Slot]>,
    mask: usize,
    long_keys: Box<[u8]>,
    hash: SegmentHash,
    len: usize,
}

impl EdgeTable {
    /// Freezes `edges` ((parent, key) -> child). The table is at most half full, so probe
    /// sequences stay short.
    pub(super) fn build(edges: &HashMap<(u32, Box<str>), u32>) -> EdgeTable {
        let capacity = (edges.len() * 2).next_power_of_two().max(8);
        let mut table = EdgeTable {
            slots: vec![VACANT; capacity].into_boxed_slice(),
            mask: capacity - 1,
            long_keys: Box::default(),
            hash: SegmentHash::default(),
            len: 0,
        };
        let mut long_keys = Vec::new();
        for ((parent, key), &child) in edges {
            let (Ok(len), Ok(offset)) = (u32::try_from(key.len()), u32::try_from(long_keys.len()))
            else {
                continue;
            };
            let mut slot = Slot {
                tag: 0,
                parent: *parent,
                child,
                len,
                key: [0; INLINE],
            };
            if key.len() <= INLINE {
                slot.key[..key.len()].copy_from_slice(key.as_bytes());
            } else {
                slot.key[..4].copy_from_slice(&offset.to_le_bytes());
                long_keys.extend_from_slice(key.as_bytes());
            }
            let hash = table.hash.hash_edge(*parent, key.as_bytes());
            slot.tag = (hash >> 32) as u32;
            let mut i = hash as usize & table.mask;
            while table.slots[i].child != EMPTY {
                i = (i + 1) & table.mask;
            }
            table.slots[i] = slot;
            table.len += 1;
        }
        table.long_keys = long_keys.into_boxed_slice();
        table
    }

    /// The child of `parent` along the edge labelled `key`.
    pub(super) fn get(&self, parent: u32, key: &str) -> Option<u32> {
        let key = key.as_bytes();
        let hash = self.hash.hash_edge(parent, key);
        let tag = (hash >> 32) as u32;
        let mut i = hash as usize & self.mask;
        loop {
            let slot = self.slots.get(i)?;
            if slot.child == EMPTY {
                return None;
            }
            if slot.tag == tag
                && slot.parent == parent
                && slot.len as usize == key.len()
                && self.key_of(slot) == key
            {
                return Some(slot.child);
            }
            i = (i + 1) & self.mask;
        }
    }

    fn key_of<'a>(&'a self, slot: &'a Slot) -> &'a [u8] {
        let len = slot.len as usize;
        if len <= INLINE {
            return &slot.key[..len];
        }
        let mut offset = [0u8; 4];
        offset.copy_from_slice(&slot.key[..4]);
        let start = u32::from_le_bytes(offset) as usize;
        self.long_keys.get(start..start + len).unwrap_or_default()
    }

    /// Number of edges.
    pub(super) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_short_and_long_keys_by_parent() {
        let long = "a-segment-longer-than-the-inline-bytes";
        let mut edges = HashMap::new();
        edges.insert((0, Box::from("v1")), 1);
        edges.insert((1, Box::from("v1")), 2);
        edges.insert((0, Box::from(long)), 3);
        edges.insert((0, Box::from("")), 4);
        let table = EdgeTable::build(&edges);
        assert_eq!(table.get(0, "v1"), Some(1));
        assert_eq!(table.get(1, "v1"), Some(2));
        assert_eq!(table.get(0, long), Some(3));
        assert_eq!(table.get(0, ""), Some(4));
        assert_eq!(table.get(2, "v1"), None);
        assert_eq!(table.get(0, "v2"), None);
        assert_eq!(table.get(0, &long[..20]), None);
        assert_eq!(table.len(), 4);
    }

    #[test]
    fn finds_every_key_of_a_large_table() {
        let edges: HashMap<(u32, Box<str>), u32> = (0..5000)
            .map(|i| ((i % 7, Box::from(format!("seg{i}"))), i))
            .collect();
        let table = EdgeTable::build(&edges);
        for i in 0..5000 {
            assert_eq!(table.get(i % 7, &format!("seg{i}")), Some(i));
            assert_eq!(table.get(i % 7 + 1, &format!("seg{i}")), None);
        }
    }
}
