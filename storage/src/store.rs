//! [`Store`]: opening (schema check and migration), the in-memory config, and `apply`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use parking_lot::{Mutex, RwLock};
use policies::{Problem, SystemClock};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use tokio::sync::watch;

use crate::acknowledged;
use crate::audit::AuditEntry;
use crate::change::{self, Planned};
use crate::feed::{self, History};
use crate::health::{Health, Op};
use crate::spec::Config;
use crate::trees::{self, decode_u64, encode_u64, Trees};
use crate::validate::{prefix, validate_config};
use crate::{Change, Kind, StoreError};
use recover::Fault;

/// The on-disk layout this build writes. A store with a newer schema is refused; an older
/// one is migrated by [`migrate`] when opened.
pub const SCHEMA_VERSION: u64 = 1;

/// What sled may keep of its pages in memory. Nothing on the request path reads sled (the
/// config lives in memory as [`Config`]; quota counts are written, not read), so the cache
/// only speeds up admin writes and start-up reads, which get by with little: sled's default
/// (1 GiB) kept every page ever read or written, 70 MB of a 100,000-key store.
pub const CACHE_CAPACITY_BYTES: u64 = 8 * 1024 * 1024;

const REVISION: &[u8] = b"revision";
const SCHEMA: &[u8] = b"schema";
/// When [`Store::recover`] last wrote to check the disk takes writes again (unix seconds).
const PROBE: &[u8] = b"probe";

/// Handle to the store; clones share it.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// The open database; `None` only while [`Store::recover`] reopens it (sled keeps an
    /// I/O error for good: a handle that failed once fails every write after it).
    handle: RwLock<Option<Arc<Handle>>>,
    /// The data directory (for the acknowledged-revision file, and reopening).
    dir: PathBuf,
    health: Health,
    current: ArcSwap<Current>,
    /// Serializes `apply`: changes are planned against the latest config, one at a time.
    writer: Mutex<()>,
    notify: watch::Sender<u64>,
    /// What the latest revisions changed, for the config feed. Locked while `current` is
    /// swapped, so the two always agree for [`Store::changes_after`].
    history: Mutex<History>,
    /// [`Store::id`].
    id: String,
    /// Tests make the disk fail here.
    #[cfg(test)]
    fault: Mutex<Fault>,
}

/// One open sled database and its trees.
pub(crate) struct Handle {
    db: sled::Db,
    trees: Trees,
}

impl std::ops::Deref for Handle {
    type Target = Trees;
    fn deref(&self) -> &Trees {
        &self.trees
    }
}

/// The revision and the config it names, swapped together.
struct Current {
    revision: u64,
    config: Arc<Config>,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, migrating an older schema. Reads the
    /// whole config into memory. `Err(Corrupt)` when the schema is newer than
    /// [`SCHEMA_VERSION`] or a record does not decode; `Err(Db)` when sled fails (another
    /// process holding the directory, for one).
    pub fn open(dir: impl AsRef<Path>) -> Result<Store, StoreError> {
        Store::open_reading_apart_above(dir, READ_APART_BYTES)
    }

    /// [`Store::open`], reading the config through a handle of its own when the store takes
    /// at least `bytes` on disk (tests use it to take either way).
    #[doc(hidden)]
    pub fn open_reading_apart_above(
        dir: impl AsRef<Path>,
        bytes: u64,
    ) -> Result<Store, StoreError> {
        let dir = dir.as_ref();
        let acknowledged = acknowledged::read(dir).map_err(|source| StoreError::Io {
            path: acknowledged::path(dir).display().to_string(),
            source,
        })?;
        let check = |db: &sled::Db, trees: &Trees| check_schema(db, trees, dir, acknowledged);
        // sled keeps every page it reads until its cache has seen thousands of accesses per
        // shard, whatever the capacity: reading the whole config would leave all of it
        // (70 MB for 100,000 keys) resident in sled beside the `Config` that holds it. So a
        // large store is read through a handle that is closed before the store's own opens.
        // A small one is read through the store's own handle: what sled keeps of it is
        // small, and a second open of sled costs more resident memory (5 MB) than it saves.
        let (db, revision, config) = if disk_size(dir) < bytes {
            // Waiting out a lock sled's threads still hold: a store dropped a moment ago in
            // this process (tests, tools) lets go of its directory only after them.
            let db = reopen_db(dir)?;
            let (revision, config) = trees::read_config(|| {
                let trees = Trees::open(&db)?;
                let revision = check(&db, &trees)?;
                Ok((db.clone(), trees, revision))
            })?;
            (db, revision, config)
        } else {
            let (revision, config) = trees::read_config(|| {
                let db = reopen_db(dir)?;
                let trees = Trees::open(&db)?;
                let revision = check(&db, &trees)?;
                Ok((db, trees, revision))
            })?;
            (reopen_db(dir)?, revision, config)
        };
        let trees = Trees::open(&db)?;
        let id = identity::read_or_make(&db, &trees)?;
        if acknowledged != Some(revision) {
            // A store from before the file, or a crash between sled's flush and the file.
            record_acknowledged(dir, revision)?;
        }
        let (notify, _) = watch::channel(revision);
        Ok(Store {
            inner: Arc::new(Inner {
                handle: RwLock::new(Some(Arc::new(Handle { db, trees }))),
                dir: dir.to_owned(),
                health: Health::new(Arc::new(SystemClock)),
                current: ArcSwap::from_pointee(Current {
                    revision,
                    config: Arc::new(config),
                }),
                writer: Mutex::new(()),
                notify,
                history: Mutex::new(History::new(revision)),
                id,
                #[cfg(test)]
                fault: Mutex::new(Fault::None),
            }),
        })
    }

    /// The current config revision (0 for an empty new store).
    pub fn revision(&self) -> u64 {
        self.inner.current.load().revision
    }

    /// The whole current config (kept in memory; cheap: an `Arc` clone). Every list is
    /// sorted by id.
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.inner.current.load().config)
    }

    /// The revision and the config it names, read together (calling [`Store::revision`]
    /// then [`Store::config`] may straddle a change).
    pub fn current(&self) -> (u64, Arc<Config>) {
        let current = self.inner.current.load();
        (current.revision, Arc::clone(&current.config))
    }

    /// Receives the revision after every applied change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.notify.subscribe()
    }

    /// Validates, writes in one transaction, flushes, bumps the revision, notifies.
    /// `actor` is recorded in the audit log. Returns the new revision.
    ///
    /// `Err(Invalid)` carries every problem of the resulting config (paths relative to the
    /// object for `Create`/`Replace`, full paths otherwise); problems the stored config
    /// already had do not block other changes, except a replacing import. On any `Err`
    /// nothing was acknowledged and the in-memory config is unchanged.
    /// `Err(Unwritable)`: the disk refused the write (full, failing); the store is then
    /// degraded, and this and later writes first try to [`recover`](Store::recover) it.
    /// Blocking (disk flush, maybe DNS): call it off async workers.
    pub fn apply(&self, change: Change, actor: &str) -> Result<u64, StoreError> {
        let _writer = self.inner.writer.lock();
        // Before planning: recovery may find a change reported failed stored after all,
        // and this one must be planned against it.
        if self.inner.health.is_degraded() {
            self.recover_locked()?;
        }
        let current = self.inner.current.load_full();
        let planned = change::plan(&current.config, change)?;
        let problems = refused_problems(&current.config, &planned);
        if !problems.is_empty() {
            return Err(StoreError::Invalid { problems });
        }
        let revision = current.revision + 1;
        let entry = AuditEntry {
            revision,
            at: unix_now(),
            actor: actor.to_owned(),
            action: planned.action,
        };
        let handle = self.handle(Op::Write)?;
        let written = self
            .inject(Fault::BeforeWrite)
            .and_then(|()| {
                write(
                    &handle,
                    &current.config,
                    &planned.config,
                    std::slice::from_ref(&entry),
                    &|at| self.inject(at),
                )
            })
            // Not reopened after a large write, as a follower does: here (20,000 routes
            // replaced by one through the REST API) the reopen left more resident (79 MB
            // against 71 MB).
            .and_then(|_journaled| self.inject(Fault::AfterWrite));
        if let Err(e) = written {
            return Err(self.failed(Op::Write, e));
        }
        drop(handle);
        let limit = self.inner.history.lock().max_objects();
        let delta = feed::delta(
            &current.config,
            &planned.config,
            revision,
            entry.action,
            limit,
        );
        {
            let mut history = self.inner.history.lock();
            history.record(revision, delta);
            self.inner.current.store(Arc::new(Current {
                revision,
                config: Arc::new(planned.config),
            }));
        }
        self.inner.notify.send_replace(revision);
        // sled has the change durably, so it is acknowledged whatever happens to the file:
        // a file left behind only weakens the damage check for this revision. The store is
        // marked degraded, so the next write (or probe) reopens it, which rewrites the file.
        if let Err(e) = record_acknowledged(&self.inner.dir, revision) {
            self.inner.health.failed(Op::Write, &e);
        }
        Ok(revision)
    }

    /// sled keeps the pages of a large write resident (tens of MB for 10,000 objects)
    /// whatever its cache capacity; a new handle starts without them, as `Store::open`
    /// reads a large store apart for the same reason. A follower's full sync of 100,000
    /// keys: +71 MB resident after it with the reopen.
    pub(super) fn reopen_after_large_write(&self) {
        if let Err(e) = self.reopen() {
            self.inner.health.failed(Op::Write, &e);
        }
    }

    /// The whole config as YAML (keys and credentials as hashes; certificates with their
    /// private keys, JWT issuers with their HMAC secrets: a backup that restores a fresh
    /// store).
    pub fn export_yaml(&self) -> String {
        crate::import::to_yaml(&self.config())
    }

    /// The whole config as YAML as admins are shown it: secrets hidden (see
    /// [`crate::without_secrets`]). Imported back into this store, it keeps the secrets.
    pub fn export_yaml_without_secrets(&self) -> String {
        crate::import::to_yaml(&crate::without_secrets(&self.config()))
    }

    /// The whole config as pretty JSON; the same content as [`Store::export_yaml`].
    pub fn export_json(&self) -> String {
        crate::import::to_json(&self.config())
    }

    /// Writes everything still in memory to disk (for shutdown). `Err(Unwritable)` when
    /// the disk refuses it, or when the store is degraded and cannot recover (writes it
    /// took since, usage counts for one, may not be on disk).
    pub fn flush(&self) -> Result<(), StoreError> {
        if self.inner.health.is_degraded() {
            let _writer = self.inner.writer.lock();
            if self.inner.health.is_degraded() {
                self.recover_locked()?;
            }
        }
        self.writing(Op::Flush, |h| {
            h.db.flush()?;
            Ok(())
        })
    }

    /// The open handle, for reads (`Err(Unwritable)` while it is being reopened).
    pub(crate) fn trees(&self) -> Result<Arc<Handle>, StoreError> {
        match self.inner.handle.read().as_ref() {
            Some(handle) => Ok(Arc::clone(handle)),
            None => Err(StoreError::Unwritable {
                dir: self.dir_name(),
                cause: "the store is being reopened".to_owned(),
            }),
        }
    }
}

/// One transaction over the changed config trees, `meta` and `audit`, then a flush (a
/// change of many objects goes through the [`journal`] instead). The stored revision
/// becomes that of the last of `entries` (one per revision the change spans: several when
/// a follower applies a batch of replicated changes). `inject` lets tests fail the disk.
/// Returns whether the change went through the journal.
fn write(
    handle: &Handle,
    old: &Config,
    new: &Config,
    entries: &[AuditEntry],
    inject: &dyn Fn(Fault) -> Result<(), StoreError>,
) -> Result<bool, StoreError> {
    let trees = &handle.trees;
    let writes = trees::diff(old, new)?;
    let Some(last) = entries.last() else {
        return Err(StoreError::Corrupt(
            "a change without a revision".to_owned(),
        ));
    };
    let audit = entries
        .iter()
        .map(|entry| {
            serde_json::to_vec(entry)
                .map(|json| (encode_u64(entry.revision), json))
                .map_err(|e| StoreError::Corrupt(format!("cannot encode audit entry: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if writes.len() > journal::JOURNAL_ABOVE {
        return journal::write(handle, &writes, last.revision, &audit, inject).map(|()| true);
    }
    let mut all: Vec<&sled::Tree> = trees.config.iter().collect();
    all.push(&trees.meta);
    all.push(&trees.audit);
    let (meta, log) = (all.len() - 2, all.len() - 1);
    let result: Result<(), TransactionError<()>> = all.as_slice().transaction(|tx| {
        for (tree, key, value) in &writes {
            match value {
                Some(value) => tx[*tree].insert(key.as_slice(), value.as_slice())?,
                None => tx[*tree].remove(key.as_slice())?,
            };
        }
        tx[meta].insert(REVISION, &encode_u64(last.revision))?;
        for (key, json) in &audit {
            tx[log].insert(key, json.as_slice())?;
        }
        Ok::<(), ConflictableTransactionError<()>>(())
    });
    committed(result)?;
    handle.db.flush()?;
    Ok(false)
}

/// A sled transaction's outcome as the store reports it.
fn committed(result: Result<(), TransactionError<()>>) -> Result<(), StoreError> {
    match result {
        Ok(()) => Ok(()),
        Err(TransactionError::Storage(e)) => Err(e.into()),
        Err(TransactionError::Abort(())) => {
            Err(StoreError::Corrupt("transaction aborted".to_owned()))
        }
    }
}

/// The problems that refuse `planned`: those of the new config that the current one did
/// not already have (all of them for a replacing import), made relative to the object a
/// `Create`/`Replace` names.
fn refused_problems(current: &Config, planned: &Planned) -> Vec<Problem> {
    let mut problems = validate_config(&planned.config);
    if problems.is_empty() {
        return problems;
    }
    if !planned.is_whole {
        let before = validate_config(current);
        problems.retain(|p| !before.contains(p));
    }
    if let Some((kind, id)) = &planned.object {
        let at = object_prefix(&planned.config, *kind, id);
        for p in &mut problems {
            if let Some(rest) = p.path.strip_prefix(at.as_str()) {
                if rest.is_empty() || rest.starts_with('[') {
                    p.path = rest.to_owned();
                } else if let Some(field) = rest.strip_prefix('.') {
                    p.path = field.to_owned();
                }
            }
        }
    }
    problems
}

/// The path prefix under which `validate_config` reports the object.
fn object_prefix(config: &Config, kind: Kind, id: &str) -> String {
    fn index<T: trees::Entity>(config: &Config, id: &str) -> usize {
        T::list(config)
            .iter()
            .position(|o| o.id() == id)
            .unwrap_or(0)
    }
    use crate::spec::*;
    let i = match kind {
        Kind::Upstream => index::<UpstreamSpec>(config, id),
        Kind::Route => index::<RouteSpec>(config, id),
        Kind::Consumer => index::<ConsumerSpec>(config, id),
        Kind::Plan => index::<PlanSpec>(config, id),
        Kind::JwtIssuer => index::<JwtIssuerSpec>(config, id),
        Kind::Certificate => index::<CertificateSpec>(config, id),
        Kind::Key => index::<KeyRecord>(config, id),
        Kind::Credential => index::<CredentialRecord>(config, id),
    };
    prefix(kind.plural(), id, i)
}

/// Opens sled in `dir` with a [`CACHE_CAPACITY_BYTES`] cache.
///
/// sled 0.34 writes a snapshot to `snap.<lsn>.generating` and renames it when complete;
/// a write the disk refused (full) leaves the partial file behind, and sled's next open
/// takes it for the newest snapshot and fails with "corrupted data" for good. So when an
/// open fails as corrupt, such leftovers (never a complete snapshot: sled reads its data
/// from the log when there is none) are removed and the open tried once more.
fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
    let open = || {
        sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_CAPACITY_BYTES)
            .open()
    };
    match open() {
        Err(sled::Error::Corruption { .. }) if remove_unfinished_snapshots(dir) > 0 => Ok(open()?),
        other => Ok(other?),
    }
}

/// Removes sled's `snap.*.generating` files in `dir`; returns how many.
fn remove_unfinished_snapshots(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::warn!(file = %entry.path().display(), "removed an unfinished sled snapshot");
                    removed += 1;
                }
                Err(e) => {
                    tracing::warn!(file = %entry.path().display(), error = %e, "cannot remove an unfinished sled snapshot");
                }
            }
        }
    }
    removed
}

/// Stores at least this large on disk are read through a handle of their own (see
/// [`Store::open`]).
const READ_APART_BYTES: u64 = 16 * 1024 * 1024;

/// Bytes of the files in `dir` and its subdirectories (sled's log, snapshots and blobs);
/// 0 for a new store.
fn disk_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// How long [`reopen_db`] waits for sled to let go of the directory.
const REOPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens sled in `dir`, also just after a handle on it was dropped: sled's background
/// writer threads hold the lock file for a moment after the last handle goes (a write they
/// finished may still be unwinding), so a lock refusal is retried for [`REOPEN_TIMEOUT`]
/// (another process holding the directory fails after that).
fn reopen_db(dir: &Path) -> Result<sled::Db, StoreError> {
    let deadline = Instant::now() + REOPEN_TIMEOUT;
    loop {
        match open_db(dir) {
            Err(StoreError::Db(sled::Error::Io(e)))
                if e.to_string().contains("could not acquire lock")
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            other => return other,
        }
    }
}

/// Reads the revision, refuses a store behind its `acknowledged` revision (before writing
/// anything to it), and checks the schema version: marks a new store, migrates an older
/// one, refuses a newer one. Then finishes a large change interrupted by a crash
/// ([`journal::finish`]).
fn check_schema(
    db: &sled::Db,
    trees: &Trees,
    dir: &Path,
    acknowledged: Option<u64>,
) -> Result<u64, StoreError> {
    let revision = match trees.meta.get(REVISION)? {
        Some(v) => decode_u64("revision", &v)?,
        None => 0,
    };
    if let Some(acknowledged) = acknowledged.filter(|a| *a > revision) {
        return Err(StoreError::Behind {
            dir: dir.display().to_string(),
            file: acknowledged::path(dir).display().to_string(),
            revision,
            acknowledged,
        });
    }
    match trees.meta.get(SCHEMA)? {
        Some(v) => {
            let schema = decode_u64("schema", &v)?;
            if schema > SCHEMA_VERSION {
                return Err(StoreError::Corrupt(format!(
                    "schema version {schema} was written by a newer tollgate; this one \
                     reads up to {SCHEMA_VERSION}: upgrade tollgate"
                )));
            }
            if schema < SCHEMA_VERSION {
                migrate(db, trees, schema)?;
            }
        }
        // Data without a schema mark predates schema 1.
        None if revision > 0 => migrate(db, trees, 0)?,
        None => {
            trees.meta.insert(SCHEMA, &encode_u64(SCHEMA_VERSION))?;
            trees.meta.insert(REVISION, &encode_u64(0))?;
            db.flush()?;
        }
    }
    journal::finish(db, trees)?;
    Ok(revision)
}

/// Upgrades the stored data from schema `from` to [`SCHEMA_VERSION`], flushed.
/// Schema 0 (no mark) has the same records as schema 1, so only the mark is written; a
/// later schema adds its conversion step here.
fn migrate(db: &sled::Db, trees: &Trees, from: u64) -> Result<(), StoreError> {
    let mut schema = from;
    while schema < SCHEMA_VERSION {
        // 0 -> 1: nothing to convert.
        schema += 1;
    }
    trees.meta.insert(SCHEMA, &encode_u64(schema))?;
    db.flush()?;
    Ok(())
}

/// [`acknowledged::write`], as a [`StoreError`].
fn record_acknowledged(dir: &Path, revision: u64) -> Result<(), StoreError> {
    acknowledged::write(dir, revision).map_err(|source| StoreError::Io {
        path: acknowledged::path(dir).display().to_string(),
        source,
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

mod identity;
mod journal;
mod recover;
mod replica;
#[cfg(test)]
mod tests;
