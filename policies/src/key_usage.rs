//! When each API key was last used. Kept in [`crate::Counters`], so it outlives config
//! revisions; each compiled key holds its own slot, so recording a use is one atomic
//! load (and a store at most once a second per key) with no lookup and no lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// Last-use times by key id (unix seconds; 0: not used since the process started).
#[derive(Debug, Default)]
pub struct KeyUsage {
    // Locked only when a directory is compiled and when the console asks.
    slots: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

impl KeyUsage {
    /// The slot of `key_id`, created on first use (at directory compile).
    pub fn slot(&self, key_id: &str) -> Arc<AtomicU64> {
        self.slots
            .lock()
            .entry(key_id.to_owned())
            .or_default()
            .clone()
    }

    /// When `key_id` was last used, if it was since the process started.
    pub fn last_used(&self, key_id: &str) -> Option<u64> {
        let secs = self.slots.lock().get(key_id)?.load(Ordering::Relaxed);
        (secs != 0).then_some(secs)
    }

    /// Forgets the keys `keep` says no to (deleted keys).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.slots.lock().retain(|id, _| keep(id));
    }
}

/// Records a use at `now_secs` in `slot`; writes only when the second changed, so a busy
/// key's cache line is not written on every request.
pub fn touch(slot: &AtomicU64, now_secs: u64) {
    if slot.load(Ordering::Relaxed) != now_secs {
        slot.store(now_secs, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_the_last_use_per_key_and_survives_a_new_slot_lookup() {
        let usage = KeyUsage::default();
        assert_eq!(usage.last_used("k1"), None);
        touch(&usage.slot("k1"), 100);
        touch(&usage.slot("k1"), 105);
        assert_eq!(usage.last_used("k1"), Some(105));
        assert_eq!(usage.last_used("k2"), None);
        usage.retain(|id| id != "k1");
        assert_eq!(usage.last_used("k1"), None);
    }
}
