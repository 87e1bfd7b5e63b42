//! When each API key was last used. Each compiled key ([`crate::KeyEntry`]) holds its own
//! slot, so recording a use is one atomic load (and a store at most once a second per key)
//! with no lookup and no lock; [`crate::Directory::carry_last_used`] hands the times on
//! across config revisions.

use std::sync::atomic::{AtomicU64, Ordering};

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
    fn records_the_latest_second_once() {
        let slot = AtomicU64::new(0);
        touch(&slot, 100);
        assert_eq!(slot.load(Ordering::Relaxed), 100);
        touch(&slot, 105);
        assert_eq!(slot.load(Ordering::Relaxed), 105);
    }
}
