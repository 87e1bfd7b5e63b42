//! Quota counts on disk. Counting happens in memory (`policies::Quotas`, lock-free); this
//! module loads the stored counts at start, writes the counts that changed every
//! [`FLUSH_INTERVAL`], and once more, exactly, at graceful shutdown.
//!
//! Guarantee: after a graceful stop (SIGTERM/SIGINT) the next start sees every counted
//! request; after a crash or `kill -9` it has lost at most the requests counted in the last
//! [`FLUSH_INTERVAL`] (the quota then lets that many more through).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use policies::Counters;
use storage::{Store, StoreError, UsageRecord};

/// How often changed quota counts are written to the store.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(5);

/// Persists one process's quota counts to its store.
pub struct UsageBook {
    store: Store,
    counters: Arc<Counters>,
    /// Held from taking the changed counts until they are written, so that a slower write
    /// of older counts never lands after a newer one (e.g. the final flush).
    writing: Mutex<()>,
}

impl UsageBook {
    pub fn new(store: Store, counters: Arc<Counters>) -> Arc<UsageBook> {
        Arc::new(UsageBook {
            store,
            counters,
            writing: Mutex::new(()),
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

    /// Writes every count that changed since the last flush. Blocking (a sled flush).
    /// Returns how many counts were written.
    pub fn flush(&self) -> Result<usize, StoreError> {
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
        if records.is_empty() {
            return Ok(0);
        }
        self.store.save_usage(&records)?;
        Ok(records.len())
    }

    /// Flushes every [`FLUSH_INTERVAL`] (on the blocking pool) for as long as the runtime
    /// runs. A failed write is reported on stderr; its counts are not retried on their own
    /// but the next change of the same counter writes the newer count.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(FLUSH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let book = self.clone();
            match tokio::task::spawn_blocking(move || book.flush()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => eprintln!("tollgate: saving quota usage: {e}"),
                Err(e) => eprintln!("tollgate: saving quota usage panicked: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use policies::{QuotaPeriod, QuotaSpec};

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
        assert_eq!(book.flush().expect("flush"), 1);
        assert_eq!(book.flush().expect("nothing changed"), 0);

        let fresh = Arc::new(Counters::new());
        let restored = UsageBook::new(store, fresh.clone());
        assert_eq!(restored.restore().expect("restore"), 1);
        assert_eq!(fresh.quotas.usage("acme", &spec(), NOW).used, 3);
    }
}
