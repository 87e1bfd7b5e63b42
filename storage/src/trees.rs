//! How the config lives in sled: one tree per kind of object, keyed by id (keys by their
//! hash, credentials by username), values as JSON; plus the `meta`, `audit`, `usage`,
//! `admins` and `sessions` trees.

use std::collections::BTreeMap;

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
    pub admins: sled::Tree,
    pub sessions: sled::Tree,
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
            admins: db.open_tree("admins")?,
            sessions: db.open_tree("sessions")?,
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
    /// The key of its tree entry: the id, except a key's hash.
    fn tree_key(&self) -> &str {
        self.id()
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
            $(fn tree_key(&self) -> &str {
                &self.$key
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

/// Sorts every list by id, so that equal configs compare and export equally.
pub(crate) fn sort(config: &mut Config) {
    fn by_id<T: Entity>(config: &mut Config) {
        T::list_mut(config).sort_by(|a, b| a.id().cmp(b.id()));
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

/// Reads the whole config from its trees, sorted.
pub(crate) fn load_config(trees: &Trees) -> Result<Config, StoreError> {
    fn load<T: Entity>(trees: &Trees, config: &mut Config) -> Result<(), StoreError> {
        let list = T::list_mut(config);
        for entry in trees.of(T::KIND).iter() {
            let (key, value) = entry?;
            let item = serde_json::from_slice::<T>(&value).map_err(|e| {
                StoreError::Corrupt(format!(
                    "{} entry {}: {e}",
                    T::KIND.plural(),
                    String::from_utf8_lossy(&key)
                ))
            })?;
            list.push(item);
        }
        Ok(())
    }
    let mut config = Config::default();
    load::<UpstreamSpec>(trees, &mut config)?;
    load::<RouteSpec>(trees, &mut config)?;
    load::<ConsumerSpec>(trees, &mut config)?;
    load::<PlanSpec>(trees, &mut config)?;
    load::<JwtIssuerSpec>(trees, &mut config)?;
    load::<CertificateSpec>(trees, &mut config)?;
    load::<KeyRecord>(trees, &mut config)?;
    load::<CredentialRecord>(trees, &mut config)?;
    sort(&mut config);
    Ok(config)
}

/// One write of a transaction: `(tree index in Trees::config, key, value or removal)`.
pub(crate) type Write = (usize, Vec<u8>, Option<Vec<u8>>);

/// The tree writes that turn `old` into `new` (only entries that differ).
pub(crate) fn diff(old: &Config, new: &Config) -> Result<Vec<Write>, StoreError> {
    fn kind<T: Entity>(old: &Config, new: &Config, out: &mut Vec<Write>) -> Result<(), StoreError> {
        let (before, after) = (T::list(old), T::list(new));
        if before == after {
            return Ok(());
        }
        let before: BTreeMap<&str, &T> = before.iter().map(|o| (o.tree_key(), o)).collect();
        let after: BTreeMap<&str, &T> = after.iter().map(|o| (o.tree_key(), o)).collect();
        let tree = T::KIND as usize;
        for (key, item) in &after {
            if before.get(key) != Some(item) {
                let value = serde_json::to_vec(item).map_err(|e| {
                    StoreError::Corrupt(format!("cannot encode {} {key}: {e}", T::KIND))
                })?;
                out.push((tree, key.as_bytes().to_vec(), Some(value)));
            }
        }
        for key in before.keys().filter(|k| !after.contains_key(*k)) {
            out.push((tree, key.as_bytes().to_vec(), None));
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
