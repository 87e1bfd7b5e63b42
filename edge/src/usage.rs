//! Quota counts and API keys' last use on disk. Both are recorded in memory on the request
//! path (`policies::Quotas`, lock-free; each key's own slot in the live
//! `policies::Directory`); this module loads what was stored at start, writes what changed
//! every [`FLUSH_INTERVAL`], and once more, exactly, at graceful shutdown.
//!
//! Guarantee: after a graceful stop (SIGTERM/SIGINT) the next start sees every counted
//! request; after a crash or `kill -9` it has lost at most the requests counted in the last
//! [`FLUSH_INTERVAL`] (the quota then lets that many more through), and a key's last use
//! may read up to that much earlier.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use policies::{Clock, Counters, Directory, SystemClock};
use storage::{Store, StoreError, UsageRecord};

use crate::gateway::Shared;

/// How often changed quota counts and key uses are written to the store.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(5);

/// Persists one process's quota counts and key uses to its store.
pub struct UsageBook {
    store: Store,
    counters: Arc<Counters>,
    /// Held from taking the changed counts until they are written, so that a slower write
    /// of older counts never lands after a newer one (e.g. the final flush).
    writing: Mutex<()>,
    /// Key uses at or after this second (unix) may not be stored yet.
    key_uses_from: AtomicU64,
    /// The request path's clock, which stamps key uses.
    clock: Arc<dyn Clock>,
}

/// What one flush wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    pub counts: usize,
    pub key_uses: usize,
}

impl UsageBook {
    pub fn new(store: Store, counters: Arc<Counters>) -> Arc<UsageBook> {
        Self::with_clock(store, counters, Arc::new(SystemClock))
    }

    /// With the clock the request path stamps key uses with (tests: a manual one).
    pub fn with_clock(
        store: Store,
        counters: Arc<Counters>,
        clock: Arc<dyn Clock>,
    ) -> Arc<UsageBook> {
        Arc::new(UsageBook {
            store,
            counters,
            writing: Mutex::new(()),
            key_uses_from: AtomicU64::new(0),
            clock,
        })
    }

    /// Loads the stored counts into the counters (at start, before traffic). Returns how
    /// many records were read.
    pub fn restore(&self) -> Result<usize, StoreError> {
        let records = self.store.load_usage()?;
        let n = records.len();
        self.counters
            .quotas
            .restore(records.into_iter().map(<(String, String, u64)>::from));
        Ok(n)
    }

    /// Loads the stored key uses into `directory` (the first snapshot's, at start) and
    /// drops those of keys deleted since. Returns how many keys got their last use back.
    pub fn restore_key_uses(&self, directory: &Directory) -> Result<usize, StoreError> {
        let uses = self.store.load_key_uses()?;
        let gone = directory.restore_key_uses(&uses);
        if !gone.is_empty() {
            self.store.forget_key_uses(&gone)?;
        }
        // What is stored needs no writing again.
        self.key_uses_from
            .store(self.clock.now().as_secs(), Ordering::Relaxed);
        Ok(uses.len() - gone.len())
    }

    /// Writes every count that changed since the last flush, and the uses `directory` (the
    /// live one) recorded since. Blocking (sled flushes).
    pub fn flush(&self, directory: &Directory) -> Result<Flushed, StoreError> {
        // A panic while writing poisons nothing that matters: the guard holds no data.
        let _writing = self
            .writing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let records: Vec<UsageRecord> = self
            .counters
            .quotas
            .snapshot_dirty()
            .into_iter()
            .map(UsageRecord::from)
            .collect();
        if !records.is_empty() {
            self.store.save_usage(&records)?;
        }
        // A use in the very second of this pass is written again next time: harmless.
        let now = self.clock.now().as_secs();
        let uses = directory.key_uses_since(self.key_uses_from.load(Ordering::Relaxed));
        if !uses.is_empty() {
            self.store.save_key_uses(&uses)?;
        }
        self.key_uses_from.store(now, Ordering::Relaxed);
        Ok(Flushed {
            counts: records.len(),
            key_uses: uses.len(),
        })
    }

    /// Flushes every [`FLUSH_INTERVAL`] (on the blocking pool) for as long as the runtime
    /// runs, with the key uses of the snapshot live at that moment. A failed write is
    /// counted and logged by the store (rate-limited); its counts are not retried on their own but the next change of
    /// the same counter writes the newer count, and its key uses are written next time.
    pub async fn run(self: Arc<Self>, shared: Arc<Shared>) {
        let mut tick = tokio::time::interval(FLUSH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let book = self.clone();
            let snapshot = shared.snapshot.load_full();
            match tokio::task::spawn_blocking(move || book.flush(&snapshot.directory)).await {
                Ok(Ok(_)) => {}
                // The store counts and logs it, at most once a minute (a full disk would
                // otherwise print a line every flush).
                Ok(Err(_)) => {}
                Err(e) => tracing::error!(error = %e, "saving usage panicked"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use policies::{ConsumerSpec, KeyHash, KeyRecord, ManualClock, QuotaPeriod, QuotaSpec};

    const NOW: Duration = Duration::from_secs(1_800_000_000);

    fn spec() -> QuotaSpec {
        QuotaSpec {
            requests: 10,
            per: QuotaPeriod::Day,
        }
    }

    #[test]
    fn counts_survive_flush_and_restore_into_new_counters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let counters = Arc::new(Counters::new());
        let quota = counters.quotas.compile("acme", &spec());
        for _ in 0..3 {
            quota.check(NOW).expect("under quota");
        }
        let book = UsageBook::new(store.clone(), counters);
        let none = Directory::empty();
        assert_eq!(book.flush(&none).expect("flush").counts, 1);
        assert_eq!(book.flush(&none).expect("nothing changed").counts, 0);

        let fresh = Arc::new(Counters::new());
        let restored = UsageBook::new(store, fresh.clone());
        assert_eq!(restored.restore().expect("restore"), 1);
        assert_eq!(fresh.quotas.usage("acme", &spec(), NOW).used, 3);
    }

    fn directory(counters: &Counters, raws: &[&str]) -> Directory {
        let consumer = ConsumerSpec {
            id: "acme".into(),
            plan: None,
            groups: Vec::new(),
            metadata: Default::default(),
        };
        // A key as the store holds it: by hash (hex), never the key itself.
        let keys: Vec<KeyRecord> = raws
            .iter()
            .map(|raw| {
                let hash = KeyHash::of(raw.as_bytes()).to_string();
                let record = serde_json::json!({
                    "id": raw, "consumer": "acme", "hash": hash, "prefix": "tg_", "created": 0,
                });
                serde_json::from_value(record).expect("a key record")
            })
            .collect();
        Directory::compile(&[consumer], &[], &keys, &[], &[], counters).expect("valid")
    }

    fn touch(dir: &Directory, raw: &str, at: u64) {
        let entry = dir.key(&KeyHash::of(raw.as_bytes())).expect("indexed");
        policies::key_usage::touch(&entry.last_used, at);
    }

    fn last_use(dir: &Directory, raw: &str) -> Option<u64> {
        dir.key(&KeyHash::of(raw.as_bytes()))
            .expect("indexed")
            .last_use()
    }

    #[test]
    fn key_uses_are_written_once_and_restored_without_deleted_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let counters = Arc::new(Counters::new());
        let clock = Arc::new(ManualClock::new(NOW));
        let at = |secs: u64| NOW.as_secs() + secs;
        let live = directory(&counters, &["tg_one", "tg_two", "tg_gone"]);
        let book = UsageBook::with_clock(store.clone(), counters.clone(), clock.clone());
        assert_eq!(book.restore_key_uses(&live).expect("nothing stored"), 0);
        touch(&live, "tg_one", at(0));
        touch(&live, "tg_gone", at(0));
        clock.set(NOW + Duration::from_secs(1));
        assert_eq!(book.flush(&live).expect("flush").key_uses, 2);
        assert_eq!(book.flush(&live).expect("flush").key_uses, 0, "none since");
        touch(&live, "tg_two", at(1));
        assert_eq!(
            book.flush(&live).expect("flush").key_uses,
            1,
            "a use in the second the last flush ran in is written"
        );
        clock.set(NOW + Duration::from_secs(5));
        touch(&live, "tg_one", at(5));
        assert_eq!(
            book.flush(&live).expect("flush").key_uses,
            2,
            "tg_one, and tg_two again: it was used in the second the last flush ran in"
        );

        // The next process, a minute later: tg_gone was deleted meanwhile.
        clock.set(NOW + Duration::from_secs(60));
        let next = directory(&counters, &["tg_one", "tg_two"]);
        let restarted = UsageBook::with_clock(store.clone(), counters, clock);
        assert_eq!(restarted.restore_key_uses(&next).expect("restore"), 2);
        assert_eq!(last_use(&next, "tg_one"), Some(at(5)));
        assert_eq!(last_use(&next, "tg_two"), Some(at(1)));
        assert_eq!(
            store.load_key_uses().expect("loaded").len(),
            2,
            "tg_gone's is dropped"
        );
        assert_eq!(
            restarted.flush(&next).expect("flush").key_uses,
            0,
            "restored uses are not written again"
        );
    }
}
