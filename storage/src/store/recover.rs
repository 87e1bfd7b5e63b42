//! The store's health: counting failed writes (`crate::health`), and recovering from them by
//! reopening sled (which keeps an I/O error for good: every write of a handle that failed
//! once fails), checked against the in-memory config as [`Store::open`] checks a store.

use std::sync::Arc;

use super::{
    check_schema, record_acknowledged, reopen_db, unix_now, Current, Handle, Store, PROBE,
};
use crate::acknowledged;
use crate::health::{Op, StoreHealth};
use crate::trees::{self, encode_u64, Trees};
use crate::StoreError;

/// Where a test makes the disk refuse a write (with ENOSPC), until it is set back to `None`.
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    None,
    /// Before a change's transaction: nothing reaches sled.
    BeforeWrite,
    /// After a change's transaction and flush: sled has it, the caller hears it failed.
    AfterWrite,
    /// At the probe write of a reopen.
    Probe,
    /// A large change's journal written, not committed: nothing of it counts.
    JournalFilled,
    /// A large change's journal committed, not yet replayed into the config trees: the
    /// change is stored (the next open finishes it), the caller hears it failed.
    JournalCommitted,
}

impl Store {
    /// Whether the store writes, and its errors so far (cheap: no I/O).
    pub fn health(&self) -> StoreHealth {
        self.inner.health.report()
    }

    /// When degraded, tries to [`recover`](Store::recover); logs the errors held back by
    /// the rate limit. Call it periodically (every few seconds), off async workers.
    pub fn check_health(&self) {
        self.inner.health.log_held_back();
        if self.inner.health.is_degraded() {
            let _writer = self.inner.writer.lock();
            if self.inner.health.is_degraded() {
                // A failure is recorded (and logged, rate-limited) where it happens.
                let _ = self.recover_locked();
            }
        }
    }

    /// Reopens the database and writes a probe; on success the store is healthy again.
    /// The in-memory config and revision stay, checked against what sled holds: the same
    /// revision, or one more when a change reported failed was stored after all (its
    /// outcome was unknown; it is then adopted, as a restart would). Sled behind the
    /// in-memory revision, or behind the acknowledged-revision file, is refused
    /// (`Err(Behind)`) as [`Store::open`] refuses it, and the store stays degraded.
    pub fn recover(&self) -> Result<(), StoreError> {
        let _writer = self.inner.writer.lock();
        self.recover_locked()
    }

    pub(super) fn recover_locked(&self) -> Result<(), StoreError> {
        match self.reopen() {
            Ok(()) => {
                self.inner.health.recovered();
                Ok(())
            }
            Err(e @ StoreError::Behind { .. }) => {
                self.inner.health.failed(Op::Write, &e);
                Err(e)
            }
            Err(e) => Err(self.failed(Op::Write, e)),
        }
    }

    /// Drops the handle, opens a new one, checks it against memory, probes a write.
    pub(super) fn reopen(&self) -> Result<(), StoreError> {
        let dir = &self.inner.dir;
        // sled lets go of its lock file only once every handle is gone.
        drop(self.inner.handle.write().take());
        let acknowledged = acknowledged::read(dir).map_err(|source| StoreError::Io {
            path: acknowledged::path(dir).display().to_string(),
            source,
        })?;
        let db = reopen_db(dir)?;
        let handle = Arc::new(Handle {
            trees: Trees::open(&db)?,
            db,
        });
        // Installed before the checks and the probe: reads (sessions, the audit log) work
        // on it even while the disk refuses writes; writes stay refused (degraded).
        *self.inner.handle.write() = Some(Arc::clone(&handle));
        let stored = check_schema(&handle.db, &handle.trees, dir, acknowledged)?;
        let current = self.inner.current.load_full();
        if stored < current.revision {
            return Err(StoreError::Behind {
                dir: dir.display().to_string(),
                file: "the running process".to_owned(),
                revision: stored,
                acknowledged: current.revision,
            });
        }
        if stored > current.revision {
            let (revision, config) =
                trees::read_config(|| Ok((handle.db.clone(), Trees::open(&handle.db)?, stored)))?;
            tracing::warn!(
                revision,
                "a config change reported failed was stored after all; serving it"
            );
            self.inner.current.store(Arc::new(Current {
                revision,
                config: Arc::new(config),
            }));
            self.inner.notify.send_replace(revision);
        }
        self.inject(Fault::Probe)?;
        handle.meta.insert(PROBE, &encode_u64(unix_now()))?;
        handle.db.flush()?;
        if acknowledged != Some(stored) {
            record_acknowledged(dir, stored)?;
        }
        Ok(())
    }

    /// Records a failure of `op` and turns it into the error its caller returns.
    pub(super) fn failed(&self, op: Op, e: StoreError) -> StoreError {
        match e {
            StoreError::Db(_) | StoreError::Io { .. } | StoreError::Unwritable { .. } => {
                self.inner.health.failed(op, &e);
                match e {
                    e @ StoreError::Unwritable { .. } => e,
                    e => StoreError::Unwritable {
                        dir: self.dir_name(),
                        cause: e.to_string(),
                    },
                }
            }
            other => other,
        }
    }

    #[cfg(test)]
    pub(crate) fn set_fault(&self, fault: Fault) {
        *self.inner.fault.lock() = fault;
    }

    #[cfg(test)]
    pub(super) fn inject(&self, at: Fault) -> Result<(), StoreError> {
        if *self.inner.fault.lock() == at {
            let enospc = std::io::Error::from_raw_os_error(28);
            return Err(StoreError::Db(sled::Error::Io(enospc)));
        }
        Ok(())
    }

    #[cfg(not(test))]
    #[inline(always)]
    pub(super) fn inject(&self, _at: Fault) -> Result<(), StoreError> {
        Ok(())
    }

    pub(super) fn dir_name(&self) -> String {
        self.inner.dir.display().to_string()
    }

    /// The open handle; `Err(Unwritable)` (recorded under `op`) while it is being reopened.
    pub(super) fn handle(&self, op: Op) -> Result<Arc<Handle>, StoreError> {
        match self.inner.handle.read().as_ref() {
            Some(handle) => Ok(Arc::clone(handle)),
            None => Err(self.failed(
                op,
                StoreError::Unwritable {
                    dir: self.dir_name(),
                    cause: "the store is being reopened".to_owned(),
                },
            )),
        }
    }

    /// Runs a write of `op` on the open handle, recording its failure.
    pub(crate) fn writing<T>(
        &self,
        op: Op,
        f: impl FnOnce(&Handle) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let handle = self.handle(op)?;
        f(&handle).map_err(|e| self.failed(op, e))
    }
}
