//! Usage counters for quotas, kept in the `usage` tree keyed by consumer and period, and
//! when each API key was last used, in the `key_uses` tree keyed by the key's hash.
//! Saving them does not change the config revision.

use serde::{Deserialize, Serialize};

use crate::trees::decode_u64;
use crate::{KeyHash, Op, Store, StoreError};

/// Requests counted for one consumer in one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    pub consumer: String,
    /// `day:2026-11-27` or `month:2026-11` (UTC).
    pub period: String,
    pub count: u64,
}

/// The `policies::Quotas` form: `(consumer, period, count)`.
impl From<(String, String, u64)> for UsageRecord {
    fn from((consumer, period, count): (String, String, u64)) -> Self {
        Self {
            consumer,
            period,
            count,
        }
    }
}

impl From<UsageRecord> for (String, String, u64) {
    fn from(r: UsageRecord) -> Self {
        (r.consumer, r.period, r.count)
    }
}

/// Consumer ids never hold a NUL byte, so it separates the two parts of a key.
const SEPARATOR: u8 = 0;

fn usage_key(consumer: &str, period: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(consumer.len() + 1 + period.len());
    key.extend_from_slice(consumer.as_bytes());
    key.push(SEPARATOR);
    key.extend_from_slice(period.as_bytes());
    key
}

impl Store {
    /// Every stored counter, ordered by consumer then period.
    pub fn load_usage(&self) -> Result<Vec<UsageRecord>, StoreError> {
        self.trees()?
            .usage
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                let text = std::str::from_utf8(&key)
                    .map_err(|_| StoreError::Corrupt("usage key is not UTF-8".to_owned()))?;
                let (consumer, period) = text
                    .split_once(char::from(SEPARATOR))
                    .ok_or_else(|| StoreError::Corrupt(format!("usage key {text:?}")))?;
                Ok(UsageRecord {
                    consumer: consumer.to_owned(),
                    period: period.to_owned(),
                    count: decode_u64("usage count", &value)?,
                })
            })
            .collect()
    }

    /// Writes the counters in one batch (each overwrites the stored count of its consumer
    /// and period) and flushes. Counters not named are left alone.
    pub fn save_usage(&self, records: &[UsageRecord]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for r in records {
            batch.insert(usage_key(&r.consumer, &r.period), &r.count.to_be_bytes());
        }
        self.writing(Op::Usage, |h| {
            h.usage.apply_batch(batch)?;
            h.usage.flush()?;
            Ok(())
        })?;
        Ok(())
    }

    /// Drops the counters of periods other than those `keep` accepts (old days and months),
    /// and flushes. Returns how many were dropped.
    pub fn prune_usage(&self, keep: impl Fn(&UsageRecord) -> bool) -> Result<usize, StoreError> {
        let mut batch = sled::Batch::default();
        let mut dropped = 0;
        for r in self.load_usage()? {
            if !keep(&r) {
                batch.remove(usage_key(&r.consumer, &r.period));
                dropped += 1;
            }
        }
        self.writing(Op::Usage, |h| {
            h.usage.apply_batch(batch)?;
            h.usage.flush()?;
            Ok(())
        })?;
        Ok(dropped)
    }

    /// When each API key was last used (unix seconds), by key hash, as last saved. May
    /// name keys deleted since (see [`Store::forget_key_uses`]).
    pub fn load_key_uses(&self) -> Result<Vec<(KeyHash, u64)>, StoreError> {
        self.trees()?
            .key_uses
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                let hash = <[u8; 32]>::try_from(key.as_ref()).map_err(|_| {
                    StoreError::Corrupt(format!("key use of a {}-byte hash", key.len()))
                })?;
                Ok((KeyHash(hash), decode_u64("key use", &value)?))
            })
            .collect()
    }

    /// Writes last-use times in one batch (each overwrites its key's) and flushes.
    pub fn save_key_uses(&self, uses: &[(KeyHash, u64)]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (hash, secs) in uses {
            batch.insert(&hash.0[..], &secs.to_be_bytes());
        }
        self.writing(Op::Usage, |h| {
            h.key_uses.apply_batch(batch)?;
            h.key_uses.flush()?;
            Ok(())
        })?;
        Ok(())
    }

    /// Drops the last-use times of `hashes` (keys that are gone) and flushes.
    pub fn forget_key_uses(&self, hashes: &[KeyHash]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for hash in hashes {
            batch.remove(&hash.0[..]);
        }
        self.writing(Op::Usage, |h| {
            h.key_uses.apply_batch(batch)?;
            h.key_uses.flush()?;
            Ok(())
        })?;
        Ok(())
    }
}
