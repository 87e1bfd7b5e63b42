//! Large changes written through a journal, so that no sled transaction holds them whole.
//!
//! sled keeps every page a transaction touches, and all the garbage of its writes, until
//! the transaction ends (one epoch is pinned for all of it): writing 100,000 keys in one
//! took 757 MB at its peak, and what its garbage left scattered among the pages stayed
//! resident after it (a follower's first full sync: +530 MB). A change of more than
//! [`JOURNAL_ABOVE`] writes is instead:
//!
//! 1. copied into the `journal` tree in batches of [`BATCH`] and flushed (a crash here
//!    leaves the config as it was; the partial journal is cleared at the next open);
//! 2. committed in one small transaction: the revision, its audit entries and the
//!    `journaled` mark, flushed (from here the change is durable);
//! 3. replayed from the journal into the config trees in batches, then the mark removed
//!    and the journal cleared. A crash during this step is finished by the next open
//!    (every journal entry holds the final value of its key, so replaying twice is harmless).
//!
//! The same 100,000 keys now peak at 189 MB, and a follower settles at +67 MB.

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use sled::Batch;

use super::recover::Fault;
use super::{committed, Handle, REVISION};
use crate::trees::{encode_u64, Trees, Write};
use crate::StoreError;

/// Changes of more tree writes than this go through the journal.
pub(super) const JOURNAL_ABOVE: usize = 1000;
/// Writes per sled batch while filling and replaying the journal.
const BATCH: usize = 1000;
/// In `meta`: the revision whose journal is committed and not yet replayed.
const JOURNALED: &[u8] = b"journaled";

/// Steps 1 to 3 above. `inject` lets tests make the disk fail between them.
pub(super) fn write(
    handle: &Handle,
    writes: &[Write],
    revision: u64,
    audit: &[([u8; 8], Vec<u8>)],
    inject: &dyn Fn(Fault) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let trees = &handle.trees;
    trees.journal.clear()?;
    for (n, chunk) in writes.chunks(BATCH).enumerate() {
        let mut batch = Batch::default();
        for (i, write) in chunk.iter().enumerate() {
            let seq = (n * BATCH + i) as u64;
            batch.insert(&encode_u64(seq), encode(write));
        }
        trees.journal.apply_batch(batch)?;
    }
    handle.db.flush()?;
    inject(Fault::JournalFilled)?;
    let result: Result<(), TransactionError<()>> =
        (&trees.meta, &trees.audit).transaction(|(meta, log)| {
            meta.insert(REVISION, &encode_u64(revision))?;
            meta.insert(JOURNALED, &encode_u64(revision))?;
            for (key, json) in audit {
                log.insert(key, json.as_slice())?;
            }
            Ok::<(), ConflictableTransactionError<()>>(())
        });
    committed(result)?;
    handle.db.flush()?;
    inject(Fault::JournalCommitted)?;
    replay(&handle.db, trees)
}

/// Step 3, also at open: a committed journal is replayed into the config trees; one left
/// uncommitted (a change interrupted before its commit) is cleared. Flushed.
pub(super) fn finish(db: &sled::Db, trees: &Trees) -> Result<(), StoreError> {
    if trees.meta.get(JOURNALED)?.is_some() {
        tracing::warn!("finishing a large config change interrupted after its commit");
        return replay(db, trees);
    }
    if !trees.journal.is_empty() {
        tracing::warn!("dropping a large config change interrupted before its commit");
        trees.journal.clear()?;
        db.flush()?;
    }
    Ok(())
}

fn replay(db: &sled::Db, trees: &Trees) -> Result<(), StoreError> {
    let mut batches: Vec<Batch> = trees.config.iter().map(|_| Batch::default()).collect();
    let mut pending = 0;
    for entry in trees.journal.iter() {
        let (seq, value) = entry?;
        let (tree, key, value) = decode(&value).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "journal entry {} does not decode",
                String::from_utf8_lossy(&seq)
            ))
        })?;
        let batch = batches.get_mut(tree).ok_or_else(|| {
            StoreError::Corrupt(format!("journal entry names tree {tree}, which is none"))
        })?;
        match value {
            Some(value) => batch.insert(key, value),
            None => batch.remove(key),
        }
        pending += 1;
        if pending == BATCH {
            apply(trees, &mut batches)?;
            pending = 0;
        }
    }
    apply(trees, &mut batches)?;
    trees.meta.remove(JOURNALED)?;
    db.flush()?;
    trees.journal.clear()?;
    db.flush()?;
    Ok(())
}

/// Applies and empties every batch (one per config tree, in tree order: a batch holds one
/// write per key, the latest, so the order within a tree is kept).
fn apply(trees: &Trees, batches: &mut [Batch]) -> Result<(), StoreError> {
    for (tree, batch) in trees.config.iter().zip(batches.iter_mut()) {
        tree.apply_batch(std::mem::take(batch))?;
    }
    Ok(())
}

/// `[tree][1: insert | 0: remove][key length, u32 big-endian][key][value]`.
fn encode((tree, key, value): &Write) -> Vec<u8> {
    let mut out = Vec::with_capacity(6 + key.len() + value.as_ref().map_or(0, Vec::len));
    out.push(*tree as u8);
    out.push(u8::from(value.is_some()));
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key);
    if let Some(value) = value {
        out.extend_from_slice(value);
    }
    out
}

/// A decoded entry: the config tree's index, the key, the value (`None`: removed).
type Entry<'a> = (usize, &'a [u8], Option<&'a [u8]>);

fn decode(bytes: &[u8]) -> Option<Entry<'_>> {
    let (&tree, rest) = bytes.split_first()?;
    let (&insert, rest) = rest.split_first()?;
    let (len, rest) = rest.split_first_chunk::<4>()?;
    let len = u32::from_be_bytes(*len) as usize;
    if rest.len() < len {
        return None;
    }
    let (key, value) = rest.split_at(len);
    match insert {
        1 => Some((usize::from(tree), key, Some(value))),
        0 if value.is_empty() => Some((usize::from(tree), key, None)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_decode_as_encoded() {
        let insert: Write = (6, b"abc".to_vec(), Some(b"{\"id\":1}".to_vec()));
        let remove: Write = (2, b"k".to_vec(), None);
        let encoded = encode(&insert);
        assert_eq!(
            decode(&encoded),
            Some((6, &b"abc"[..], Some(&b"{\"id\":1}"[..])))
        );
        assert_eq!(decode(&encode(&remove)), Some((2, &b"k"[..], None)));
        assert_eq!(decode(&encoded[..5]), None);
        assert_eq!(decode(&[2, 0, 0, 0, 0, 1, b'k', b'x']), None);
    }
}
