//! The audit log: who applied which change, at which revision. Entries are written in the
//! same transaction as the change they describe, keyed by revision.

use serde::{Deserialize, Serialize};

use crate::{Store, StoreError};

/// One applied change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The revision the change produced.
    pub revision: u64,
    /// Unix seconds.
    pub at: u64,
    /// Who asked for it (an admin user, a token name, `cli`).
    pub actor: String,
    /// What was done: `create route orders`, `delete consumer acme`, `import config (merge)`.
    pub action: String,
}

impl Store {
    /// The latest `limit` entries, newest first.
    pub fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.trees()?
            .audit
            .iter()
            .rev()
            .take(limit)
            .map(|entry| {
                let (_, value) = entry?;
                serde_json::from_slice(&value)
                    .map_err(|e| StoreError::Corrupt(format!("audit entry: {e}")))
            })
            .collect()
    }
}
