//! The cap on open client connections of the proxy (`--max-connections`): a connection
//! over it is closed as soon as the proxy takes it, before anything is read, while the
//! connections already open keep being served. A flood of idle connections then costs
//! the proxy its cap, not the process's file descriptors: the admin and metrics listeners,
//! the store and the upstream connections keep theirs.
//!
//! Counting is one atomic add and one subtract per connection (never per request); a
//! refused connection is counted in `tollgate_connections_refused_total` and logged at
//! most once per [`LOG_INTERVAL`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use prometheus::{IntCounter, IntGauge};
use storage::log_limit::{LogLimiter, LOG_INTERVAL};

/// Descriptors kept out of the default cap for listeners, the store, logs and the admin
/// server's own connections.
const RESERVED_FDS: u64 = 256;
/// The default cap never goes below this (a tiny open-file limit still serves some).
const MIN_DEFAULT: u64 = 64;
/// Nor above this (an unlimited open-file limit is not a reason to take a million).
const MAX_DEFAULT: u64 = 1 << 20;

/// The default cap for an open-file limit of `nofile`: each proxied connection may hold
/// two descriptors (client and upstream), after [`RESERVED_FDS`] for everything else.
pub fn default_for(nofile: u64) -> usize {
    let cap = (nofile.saturating_sub(RESERVED_FDS) / 2).clamp(MIN_DEFAULT, MAX_DEFAULT);
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// The count of open client connections against the cap.
#[derive(Debug)]
pub struct ConnectionLimit {
    /// 0: no cap.
    max: usize,
    open: AtomicUsize,
    open_gauge: IntGauge,
    refused: IntCounter,
    log: LogLimiter,
    started: Instant,
}

impl ConnectionLimit {
    /// A cap of `max` open connections (0: none), reported on the two metrics given.
    pub fn new(max: usize, open_gauge: IntGauge, refused: IntCounter) -> Arc<Self> {
        Arc::new(ConnectionLimit {
            max,
            open: AtomicUsize::new(0),
            open_gauge,
            refused,
            log: LogLimiter::new(LOG_INTERVAL),
            started: Instant::now(),
        })
    }

    /// The cap (0: none).
    pub fn max(&self) -> usize {
        self.max
    }

    /// Takes a place for a new connection, held until the [`Slot`] drops. `None`: the cap
    /// is reached; the caller closes the connection (counted and logged here).
    pub fn enter(self: &Arc<Self>) -> Option<Slot> {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        if self.max != 0 && before >= self.max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            self.refused.inc();
            if let Some(held_back) = self.log.note("max_connections", self.started.elapsed()) {
                tracing::warn!(
                    max_connections = self.max,
                    held_back,
                    "client connection refused: --max-connections reached"
                );
            }
            return None;
        }
        self.open_gauge.inc();
        Some(Slot(self.clone()))
    }

    /// Connections holding a place now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// One open client connection; gives its place back on drop.
#[derive(Debug)]
pub struct Slot(Arc<ConnectionLimit>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.open_gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(max: usize) -> Arc<ConnectionLimit> {
        let gauge = IntGauge::new("open", "open").expect("gauge");
        let refused = IntCounter::new("refused", "refused").expect("counter");
        ConnectionLimit::new(max, gauge, refused)
    }

    #[test]
    fn refuses_above_the_cap_and_lets_one_in_when_a_place_frees() {
        let l = limit(2);
        let a = l.enter().expect("first");
        let _b = l.enter().expect("second");
        assert!(l.enter().is_none());
        assert!(l.enter().is_none());
        assert_eq!(l.open(), 2);
        assert_eq!(l.refused.get(), 2);
        assert_eq!(l.open_gauge.get(), 2);
        drop(a);
        assert_eq!(l.open_gauge.get(), 1);
        assert!(l.enter().is_some());
    }

    #[test]
    fn zero_means_no_cap() {
        let l = limit(0);
        let slots: Vec<_> = (0..1000).filter_map(|_| l.enter()).collect();
        assert_eq!(slots.len(), 1000);
        assert_eq!(l.refused.get(), 0);
    }

    #[test]
    fn default_leaves_room_for_two_descriptors_a_connection() {
        assert_eq!(default_for(20_000), 9_872);
        assert_eq!(default_for(1024), 384);
        assert_eq!(default_for(100), MIN_DEFAULT as usize);
        assert_eq!(default_for(u64::MAX), MAX_DEFAULT as usize);
    }
}
