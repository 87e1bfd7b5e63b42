//! The store's side of the config feed: [`Store::changes_after`] on a control node,
//! [`Store::apply_replica`] on a follower (the control node's revision numbers kept).

use std::sync::Arc;

use super::recover::Fault;
use super::{record_acknowledged, unix_now, write, Current, Store};
use crate::audit::AuditEntry;
use crate::feed::{self, Feed, Replica};
use crate::health::Op;
use crate::trees;
use crate::validate::validate_config;
use crate::StoreError;

/// The actor of replicated changes in the audit log.
pub(crate) const SYNC_ACTOR: &str = "sync";

impl Store {
    /// What changed after revision `after`: nothing ([`Feed::Current`]), every change since
    /// in order ([`Feed::Changes`]), or, when the in-memory history does not reach back to
    /// `after` (bounded, lost on restart) or `after` is ahead of this store, the whole
    /// config ([`Feed::Whole`]). Cheap: no I/O, `Arc` clones.
    pub fn changes_after(&self, after: u64) -> Feed {
        let history = self.inner.history.lock();
        let current = self.inner.current.load_full();
        // They differ only after a recovery adopted a revision the history never saw.
        if history.last() == current.revision {
            if after == current.revision {
                return Feed::Current { revision: after };
            }
            if let Some(deltas) = history.after(after) {
                return Feed::Changes {
                    revision: current.revision,
                    deltas,
                };
            }
        }
        Feed::Whole {
            revision: current.revision,
            config: Arc::clone(&current.config),
        }
    }

    /// Applies what a follower received from `source` (the control node's URL, for the
    /// audit log): validated like any change, written in one transaction at the control
    /// node's revision (one audit entry `sync from <source>: …` per revision), the
    /// acknowledged revision recorded, watchers notified. Returns the new revision.
    ///
    /// [`Replica::Whole`] replaces the config whatever the local revision (the control
    /// node is the truth, also when it went back); an identical config at the same
    /// revision writes nothing. [`Replica::Changes`] must start at the revision after this
    /// store's (`Err(OutOfOrder)` otherwise, nothing written) and be consecutive.
    /// `Err(Invalid)`: the result has problems the local config did not already have.
    /// Blocking (disk flush): call it off async workers.
    pub fn apply_replica(&self, replica: Replica, source: &str) -> Result<u64, StoreError> {
        let _writer = self.inner.writer.lock();
        if self.inner.health.is_degraded() {
            self.recover_locked()?;
        }
        let current = self.inner.current.load_full();
        let at = unix_now();
        let entry = |revision: u64, what: &str| AuditEntry {
            revision,
            at,
            actor: SYNC_ACTOR.to_owned(),
            action: format!("sync from {source}: {what}"),
        };
        let (config, entries) = match replica {
            Replica::Whole {
                revision,
                mut config,
            } => {
                trees::sort(&mut config);
                if revision == current.revision && config == *current.config {
                    return Ok(revision);
                }
                (config, vec![entry(revision, "whole config")])
            }
            Replica::Changes(deltas) => {
                let mut config = (*current.config).clone();
                let mut entries = Vec::with_capacity(deltas.len());
                for (expected, delta) in (current.revision + 1..).zip(deltas) {
                    if delta.revision != expected {
                        return Err(StoreError::OutOfOrder {
                            current: current.revision,
                            got: delta.revision,
                        });
                    }
                    entries.push(entry(delta.revision, &delta.action));
                    feed::replay(&mut config, delta);
                }
                if entries.is_empty() {
                    return Ok(current.revision);
                }
                trees::sort(&mut config);
                (config, entries)
            }
        };
        let mut problems = validate_config(&config);
        if !problems.is_empty() {
            let before = validate_config(&current.config);
            problems.retain(|p| !before.contains(p));
            if !problems.is_empty() {
                return Err(StoreError::Invalid { problems });
            }
        }
        let revision = entries.last().map_or(current.revision, |e| e.revision);
        let handle = self.handle(Op::Write)?;
        let written = self.inject(Fault::BeforeWrite).and_then(|()| {
            write(&handle, &current.config, &config, &entries, &|at| {
                self.inject(at)
            })
        });
        let journaled = match written {
            Ok(journaled) => journaled,
            Err(e) => return Err(self.failed(Op::Write, e)),
        };
        drop(handle);
        {
            let mut history = self.inner.history.lock();
            // A follower serves no feed of its own history: whoever follows it gets its
            // whole config.
            history.reset(revision);
            self.inner.current.store(Arc::new(Current {
                revision,
                config: Arc::new(config),
            }));
        }
        self.inner.notify.send_replace(revision);
        if let Err(e) = record_acknowledged(&self.inner.dir, revision) {
            self.inner.health.failed(Op::Write, &e);
        }
        if journaled {
            self.reopen_after_large_write();
        }
        Ok(revision)
    }
}
