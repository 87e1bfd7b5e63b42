//! Which store this is ([`Store::id`]), and on a follower which control node's store its
//! config came from: revision numbers only mean something within one store.

use crate::health::Op;
use crate::trees::Trees;
use crate::StoreError;

use super::Store;

/// The store's identity ([`Store::id`]).
const IDENTITY: &[u8] = b"store_id";
/// On a follower, the identity of the store its config comes from.
const FOLLOWED: &[u8] = b"followed_store";

impl Store {
    /// This store's identity: random, made when the store was created (or first opened
    /// by a build that knows identities) and kept for its life. Revision numbers only mean
    /// something within one identity: a control node restarted on another data directory
    /// counts from 0 again, and its followers must not take its revisions as the ones they
    /// have (the feed carries it, see `admin-ui`'s cluster feed).
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// On a follower: the identity of the control node's store its config came from
    /// (`None` before its first sync).
    pub fn followed_store(&self) -> Result<Option<String>, StoreError> {
        let handle = self.handle(Op::Write)?;
        Ok(handle
            .meta
            .get(FOLLOWED)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Records, durably, the identity of the control node's store this follower's config
    /// now comes from.
    pub fn set_followed_store(&self, id: &str) -> Result<(), StoreError> {
        let handle = self.handle(Op::Write)?;
        let written = handle
            .meta
            .insert(FOLLOWED, id.as_bytes())
            .and_then(|_| handle.db.flush().map(drop));
        written.map_err(|e| self.failed(Op::Write, e.into()))
    }
}

/// The store's identity, made (and flushed) on the first open that finds none.
pub(super) fn read_or_make(db: &sled::Db, trees: &Trees) -> Result<String, StoreError> {
    if let Some(id) = trees.meta.get(IDENTITY)? {
        return Ok(String::from_utf8_lossy(&id).into_owned());
    }
    let id = hex::encode(rand::random::<[u8; 8]>());
    trees.meta.insert(IDENTITY, id.as_bytes())?;
    db.flush()?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use crate::Store;

    #[test]
    fn the_identity_and_the_followed_store_outlive_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (id, other_id) = {
            let store = Store::open(dir.path()).expect("open");
            assert_eq!(store.followed_store().expect("read"), None);
            store.set_followed_store("abc").expect("write");
            let other = tempfile::tempdir().expect("tempdir");
            let other_id = Store::open(other.path()).expect("open").id().to_owned();
            (store.id().to_owned(), other_id)
        };
        assert_eq!(id.len(), 16);
        assert_ne!(id, other_id, "each store its own");
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(store.id(), id);
        assert_eq!(
            store.followed_store().expect("read").as_deref(),
            Some("abc")
        );
    }
}
