//! How the config lives in sled: one tree per kind of object, keyed by id (keys by their
//! hash, credentials by username), values as JSON; plus the `meta`, `audit`, `usage`,
//! `key_uses`, `admins`, `sessions` and `journal` trees.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::spec::{
    CertificateSpec, Config, ConsumerSpec, CredentialRecord, JwtIssuerSpec, KeyRecord, PlanSpec,
    RouteSpec, UpstreamSpec,
};
use crate::{Kind, StoreError};

/// Every tree of one database.
pub(crate) struct Trees {
    /// One per [`Kind`], indexed by `kind as usize` (the order of [`Kind::ALL`]).
    pub config: Vec<sled::Tree>,
    /// `revision` and `schema`, each a big-endian u64.
    pub meta: sled::Tree,
    pub audit: sled::Tree,
    pub usage: sled::Tree,
    /// When each API key was last used: its 32-byte hash, unix seconds (big-endian u64).
    pub key_uses: sled::Tree,
    pub admins: sled::Tree,
    pub sessions: sled::Tree,
    /// A large change on its way into the config trees (see `store/journal.rs`).
    pub journal: sled::Tree,
}

impl Trees {
    pub fn open(db: &sled::Db) -> Result<Self, StoreError> {
        let config = Kind::ALL
            .iter()
            .map(|k| db.open_tree(k.plural()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            config,
            meta: db.open_tree("meta")?,
            audit: db.open_tree("audit")?,
            usage: db.open_tree("usage")?,
            key_uses: db.open_tree("key_uses")?,
            admins: db.open_tree("admins")?,
            sessions: db.open_tree("sessions")?,
            journal: db.open_tree("journal")?,
        })
    }

    pub fn of(&self, kind: Kind) -> &sled::Tree {
        &self.config[kind as usize]
    }
}

/// A stored object type: where it sits in a [`Config`] and what its tree is keyed by.
pub(crate) trait Entity: Serialize + DeserializeOwned + Clone + PartialEq {
    const KIND: Kind;
    /// The id it is known by (a credential's username).
    fn id(&self) -> &str;
    /// The key of its tree entry: the id, except a key's hash (in hex).
    fn tree_key(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.id())
    }
    fn list(config: &Config) -> &Vec<Self>;
    fn list_mut(config: &mut Config) -> &mut Vec<Self>;
}

macro_rules! entity {
    ($ty:ty, $kind:ident, $field:ident, $id:ident $(, $key:ident)?) => {
        impl Entity for $ty {
            const KIND: Kind = Kind::$kind;
            fn id(&self) -> &str {
                &self.$id
            }
            $(fn tree_key(&self) -> Cow<'_, str> {
                Cow::Owned(self.$key.to_string())
            })?
            fn list(config: &Config) -> &Vec<Self> {
                &config.$field
            }
            fn list_mut(config: &mut Config) -> &mut Vec<Self> {
                &mut config.$field
            }
        }
    };
}

entity!(UpstreamSpec, Upstream, upstreams, id);
entity!(RouteSpec, Route, routes, id);
entity!(ConsumerSpec, Consumer, consumers, id);
entity!(PlanSpec, Plan, plans, id);
entity!(JwtIssuerSpec, JwtIssuer, jwt_issuers, id);
entity!(CertificateSpec, Certificate, certificates, id);
entity!(KeyRecord, Key, keys, id, hash);
entity!(CredentialRecord, Credential, credentials, username);

/// Sorts every list by id, so that equal configs compare and export equally, and drops
/// their spare capacity (the config is kept in memory until the next change). A list
/// already in order is left as it is: a stable sort takes a scratch buffer of half the
/// list (8 MB for 100,000 keys) even then.
pub(crate) fn sort(config: &mut Config) {
    fn by_id<T: Entity>(config: &mut Config) {
        let list = T::list_mut(config);
        if !list.is_sorted_by(|a, b| a.id() <= b.id()) {
            list.sort_by(|a, b| a.id().cmp(b.id()));
        }
        list.shrink_to_fit();
    }
    by_id::<UpstreamSpec>(config);
    by_id::<RouteSpec>(config);
    by_id::<ConsumerSpec>(config);
    by_id::<PlanSpec>(config);
    by_id::<JwtIssuerSpec>(config);
    by_id::<CertificateSpec>(config);
    by_id::<KeyRecord>(config);
    by_id::<CredentialRecord>(config);
}

/// Opens a database with `open` and reads the whole config from its trees, sorted; the
/// database is closed again before this returns. Returns what `open` returned beside the
/// database, and the config.
///
/// The database lives on a thread of its own, which reads sled's pages and, once the
/// records are parsed here, drops them: the pages are allocated and freed by one thread,
/// away from the config's many small allocations, so their memory is free whole when that
/// thread ends instead of in fragments around the config that stay resident (more than
/// 10 MB with 100,000 keys). See [`crate::Store::open`] for why the handle is closed.
pub(crate) fn read_config<R: Send>(
    open: impl FnOnce() -> Result<(sled::Db, Trees, R), StoreError> + Send,
) -> Result<(R, Config), StoreError> {
    /// The reader's messages: how many entries each tree holds, then every entry.
    enum Read {
        Counts(Vec<usize>),
        Entry(Kind, sled::IVec, sled::IVec),
    }
    fn push<T: Entity>(config: &mut Config, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let item = serde_json::from_slice::<T>(value).map_err(|e| {
            StoreError::Corrupt(format!(
                "{} entry {}: {e}",
                T::KIND.plural(),
                String::from_utf8_lossy(key)
            ))
        })?;
        T::list_mut(config).push(item);
        Ok(())
    }
    fn reserve<T: Entity>(config: &mut Config, n: usize) {
        T::list_mut(config).reserve_exact(n);
    }
    fn send(trees: &Trees, tx: &SyncSender<Result<Read, sled::Error>>) {
        // Counting first (a scan of the pages the read needs anyway) spares growing each
        // list by doubling and then copying it to its length.
        let counts = Kind::ALL.iter().map(|k| trees.of(*k).len()).collect();
        if tx.send(Ok(Read::Counts(counts))).is_err() {
            return;
        }
        for kind in Kind::ALL {
            for entry in trees.of(kind).iter() {
                let read = entry.map(|(key, value)| Read::Entry(kind, key, value));
                // A closed channel: the parser stopped at an error.
                if tx.send(read).is_err() {
                    return;
                }
            }
        }
    }
    fn parse(rx: Receiver<Result<Read, sled::Error>>) -> Result<Config, StoreError> {
        let mut config = Config::default();
        for read in rx {
            match read? {
                Read::Counts(counts) => {
                    for (kind, n) in Kind::ALL.into_iter().zip(counts) {
                        let c = &mut config;
                        match kind {
                            Kind::Upstream => reserve::<UpstreamSpec>(c, n),
                            Kind::Route => reserve::<RouteSpec>(c, n),
                            Kind::Consumer => reserve::<ConsumerSpec>(c, n),
                            Kind::Plan => reserve::<PlanSpec>(c, n),
                            Kind::JwtIssuer => reserve::<JwtIssuerSpec>(c, n),
                            Kind::Certificate => reserve::<CertificateSpec>(c, n),
                            Kind::Key => reserve::<KeyRecord>(c, n),
                            Kind::Credential => reserve::<CredentialRecord>(c, n),
                        }
                    }
                }
                Read::Entry(kind, key, value) => {
                    let c = &mut config;
                    match kind {
                        Kind::Upstream => push::<UpstreamSpec>(c, &key, &value)?,
                        Kind::Route => push::<RouteSpec>(c, &key, &value)?,
                        Kind::Consumer => push::<ConsumerSpec>(c, &key, &value)?,
                        Kind::Plan => push::<PlanSpec>(c, &key, &value)?,
                        Kind::JwtIssuer => push::<JwtIssuerSpec>(c, &key, &value)?,
                        Kind::Certificate => push::<CertificateSpec>(c, &key, &value)?,
                        Kind::Key => push::<KeyRecord>(c, &key, &value)?,
                        Kind::Credential => push::<CredentialRecord>(c, &key, &value)?,
                    }
                }
            }
        }
        sort(&mut config);
        Ok(config)
    }
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel(1024);
        let (parsed_tx, parsed_rx) = channel::<()>();
        let reader = scope.spawn(move || {
            let (db, trees, extra) = open()?;
            send(&trees, &tx);
            drop(tx);
            // The pages go only once the parser holds none of them (its values point into
            // them): it hangs up when done.
            let _ = parsed_rx.recv();
            drop(trees);
            drop(db);
            Ok::<R, StoreError>(extra)
        });
        let config = parse(rx);
        drop(parsed_tx);
        let extra = reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        Ok((extra, config?))
    })
}

/// One write of a transaction: `(tree index in Trees::config, key, value or removal)`.
pub(crate) type Write = (usize, Vec<u8>, Option<Vec<u8>>);

/// The tree writes that turn `old` into `new` (only entries that differ), removals first.
/// Both configs are sorted by id, as every config the store holds is ([`sort`]): one walk
/// over each list pairs the objects up, with no index built (a list may hold 100,000 keys).
pub(crate) fn diff(old: &Config, new: &Config) -> Result<Vec<Write>, StoreError> {
    fn kind<T: Entity>(old: &Config, new: &Config, out: &mut Vec<Write>) -> Result<(), StoreError> {
        let (before, after) = (T::list(old), T::list(new));
        let tree = T::KIND as usize;
        let mut removed = Vec::new();
        let mut written = Vec::new();
        let (mut b, mut a) = (before.iter().peekable(), after.iter().peekable());
        loop {
            let order = match (b.peek(), a.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(old), Some(new)) => old.id().cmp(new.id()),
            };
            match order {
                Ordering::Less => removed.extend(b.next().map(Entity::tree_key)),
                Ordering::Greater => written.extend(a.next()),
                Ordering::Equal => {
                    if let (Some(old), Some(new)) = (b.next(), a.next()) {
                        if old != new {
                            // A key whose hash changed leaves its old entry behind.
                            if old.tree_key() != new.tree_key() {
                                removed.push(old.tree_key());
                            }
                            written.push(new);
                        }
                    }
                }
            }
        }
        // Removals first: a hash that moves from a deleted key to a new one stays written.
        for key in removed {
            out.push((tree, key.as_bytes().to_vec(), None));
        }
        for item in written {
            let key = item.tree_key();
            let value = serde_json::to_vec(item).map_err(|e| {
                StoreError::Corrupt(format!("cannot encode {} {key}: {e}", T::KIND))
            })?;
            out.push((tree, key.as_bytes().to_vec(), Some(value)));
        }
        Ok(())
    }
    let mut out = Vec::new();
    kind::<UpstreamSpec>(old, new, &mut out)?;
    kind::<RouteSpec>(old, new, &mut out)?;
    kind::<ConsumerSpec>(old, new, &mut out)?;
    kind::<PlanSpec>(old, new, &mut out)?;
    kind::<JwtIssuerSpec>(old, new, &mut out)?;
    kind::<CertificateSpec>(old, new, &mut out)?;
    kind::<KeyRecord>(old, new, &mut out)?;
    kind::<CredentialRecord>(old, new, &mut out)?;
    Ok(out)
}

/// Big-endian encoding of the u64 values in `meta` and the audit keys.
pub(crate) fn encode_u64(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

pub(crate) fn decode_u64(what: &str, bytes: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt(format!("{what} is not an 8-byte number")))
}
