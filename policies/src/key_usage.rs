//! When each API key was last used. Each compiled key ([`crate::KeyEntry`]) holds its own
//! slot, so recording a use is one atomic load (and a store at most once a second per key)
//! with no lookup and no lock; [`crate::Directory::carry_last_used`] hands the times on
//! across config revisions, and the edge saves them with quota counts (`edge::usage`).

use std::sync::atomic::{AtomicU32, Ordering};

/// Records a use at `now_secs` in `slot` (unix seconds in 32 bits: a time past 2106 is
/// kept as the last second that fits); writes only when the second changed, so a busy
/// key's cache line is not written on every request.
pub fn touch(slot: &AtomicU32, now_secs: u64) {
    let secs = u32::try_from(now_secs).unwrap_or(u32::MAX);
    if slot.load(Ordering::Relaxed) != secs {
        slot.store(secs, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_the_latest_second_once() {
        let slot = AtomicU32::new(0);
        touch(&slot, 100);
        assert_eq!(slot.load(Ordering::Relaxed), 100);
        touch(&slot, 105);
        assert_eq!(slot.load(Ordering::Relaxed), 105);
        touch(&slot, u64::from(u32::MAX) + 7);
        assert_eq!(slot.load(Ordering::Relaxed), u32::MAX);
    }
}
