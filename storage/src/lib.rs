//! The sled-backed config store: typed trees of upstreams, routes, consumers, keys (hashed),
//! credentials, plans, JWT issuers and certificates; a config revision; validation of every
//! change before it is written; one sled transaction per change, flushed before it is
//! acknowledged; change notification; import/export; usage counters; audit log.
//!
//! The whole config is also kept in memory ([`Store::config`], sorted by id); reading it
//! never touches sled. Writers are serialized; readers are never blocked.
//!
//! Exports ([`Store::export_yaml`], `tollgate export`) hold keys and credentials as hashes
//! only, and certificates' private keys and JWT HMAC secrets in clear (so an export restores
//! a fresh store): export files are secrets. What admins are shown goes through
//! [`without_secrets`]; a change that leaves a secret hidden keeps the stored one.
//!
//! Depends on `policies` (for the specs it validates) and never on edge or admin-ui.

pub mod spec;

pub mod acknowledged;
mod admins;
mod audit;
mod change;
mod feed;
mod health;
mod import;
mod keys;
pub mod log_limit;
mod secrets;
mod store;
mod trees;
mod usage;
mod validate;

pub use admins::Session;
pub use audit::AuditEntry;
pub use feed::{Deleted, Delta, Feed, Replica, MAX_OBJECTS, MAX_REVISIONS};
pub use health::{Op, StoreHealth};
pub use import::parse_config;
pub use keys::{
    hash_key, hash_password, new_api_key, verify_password, verify_password_or_decoy, PasswordError,
};
pub use policies::{Problem, Problems};
pub use secrets::{hide_certificate_key, hide_issuer_secrets, without_secrets};
pub use spec::*;
pub use store::{Store, SCHEMA_VERSION};
pub use usage::UsageRecord;
pub use validate::validate_config;

/// An object of the config, as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "object", rename_all = "snake_case")]
pub enum Object {
    Upstream(UpstreamSpec),
    Route(RouteSpec),
    Consumer(ConsumerSpec),
    Plan(PlanSpec),
    JwtIssuer(JwtIssuerSpec),
    Certificate(CertificateSpec),
    Key(KeyRecord),
    Credential(CredentialRecord),
}

/// The kinds of object, named as in error messages (`upstream`, `jwt_issuer`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Upstream,
    Route,
    Consumer,
    Plan,
    JwtIssuer,
    Certificate,
    Key,
    Credential,
}

impl Object {
    /// The kind of this object.
    pub fn kind(&self) -> Kind {
        match self {
            Self::Upstream(_) => Kind::Upstream,
            Self::Route(_) => Kind::Route,
            Self::Consumer(_) => Kind::Consumer,
            Self::Plan(_) => Kind::Plan,
            Self::JwtIssuer(_) => Kind::JwtIssuer,
            Self::Certificate(_) => Kind::Certificate,
            Self::Key(_) => Kind::Key,
            Self::Credential(_) => Kind::Credential,
        }
    }

    /// The id the object is known by: its `id`, or a credential's `username`.
    pub fn id(&self) -> &str {
        match self {
            Self::Upstream(o) => &o.id,
            Self::Route(o) => &o.id,
            Self::Consumer(o) => &o.id,
            Self::Plan(o) => &o.id,
            Self::JwtIssuer(o) => &o.id,
            Self::Certificate(o) => &o.id,
            Self::Key(o) => &o.id,
            Self::Credential(o) => &o.username,
        }
    }
}

impl Kind {
    /// Every kind, in the order `Config` lists them.
    pub const ALL: [Kind; 8] = [
        Kind::Upstream,
        Kind::Route,
        Kind::Consumer,
        Kind::Plan,
        Kind::JwtIssuer,
        Kind::Certificate,
        Kind::Key,
        Kind::Credential,
    ];

    /// The singular name used in messages (`upstream`, `jwt_issuer`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Upstream => "upstream",
            Self::Route => "route",
            Self::Consumer => "consumer",
            Self::Plan => "plan",
            Self::JwtIssuer => "jwt_issuer",
            Self::Certificate => "certificate",
            Self::Key => "key",
            Self::Credential => "credential",
        }
    }

    /// The `Config` field (and sled tree) holding this kind (`upstreams`, `jwt_issuers`).
    pub fn plural(self) -> &'static str {
        match self {
            Self::Upstream => "upstreams",
            Self::Route => "routes",
            Self::Consumer => "consumers",
            Self::Plan => "plans",
            Self::JwtIssuer => "jwt_issuers",
            Self::Certificate => "certificates",
            Self::Key => "keys",
            Self::Credential => "credentials",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One change to the store. Every change is validated against the whole resulting config
/// before anything is written.
#[derive(Debug, Clone)]
pub enum Change {
    /// POST: the id must not exist (else `Conflict`).
    Create(Object),
    /// PUT: the id must exist (else `NotFound`).
    Replace(Object),
    /// DELETE: the id must exist; deleting something still referenced is `InUse`.
    /// Deleting a consumer deletes its keys and credentials.
    Delete { kind: Kind, id: String },
    /// Import a whole config: upsert every object in it; with `replace`, also delete every
    /// object the config lacks (keys and credentials too). Atomic.
    Import { config: Config, replace: bool },
}

/// Why the store refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {id} not found")]
    NotFound { kind: Kind, id: String },
    #[error("{kind} {id} already exists")]
    Conflict { kind: Kind, id: String },
    #[error("{kind} {id} is used by {by}")]
    InUse { kind: Kind, id: String, by: String },
    #[error("invalid config")]
    Invalid { problems: Vec<Problem> },
    #[error("database: {0}")]
    Db(#[from] sled::Error),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// The store opened at an older revision than one it acknowledged: its data lost
    /// writes (see [`acknowledged`]). Nothing was written to it.
    #[error(
        "the store in {dir} is at revision {revision}, but revision {acknowledged} was \
         acknowledged ({file} says so): its data lost acknowledged writes, and serving it \
         would roll the config back. Recover by moving {dir} aside and importing the last \
         backup (`tollgate export --with-secrets`) into a new data directory \
         (`tollgate import --data-dir NEW FILE`), or, on a \
         node that follows a control node, by starting it on an empty data directory to \
         resync"
    )]
    Behind {
        dir: String,
        file: String,
        revision: u64,
        acknowledged: u64,
    },
    /// A follower received changes that do not start at the revision after its own: it
    /// must ask again (nothing was written).
    #[error("replicated changes start at revision {got}, but this store is at {current}")]
    OutOfOrder { current: u64, got: u64 },
    /// The disk refused a write (full, failing): nothing was acknowledged, and the store
    /// is degraded until it recovers (see [`Store::recover`]).
    #[error("the store in {dir} cannot write: {cause}")]
    Unwritable { dir: String, cause: String },
    /// A file of the store other than sled's could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}
