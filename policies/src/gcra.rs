//! The generic cell rate algorithm: one `AtomicU64` (the theoretical arrival time, in unix
//! nanoseconds) per limited key, updated by compare-and-swap, so concurrent requests never
//! let more through than the limit and no lock is taken.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::spec::Per;
use crate::verdict::RateLimitStatus;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// `requests` per `per`, with up to `capacity` requests at once; then exactly one per
/// `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Nanoseconds between requests at the steady rate.
    interval: u64,
    /// Requests allowed at once from a full bucket.
    capacity: u64,
}

/// A request over the limit: the headers' figures and how long until one more is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    pub status: RateLimitStatus,
    /// Whole seconds, rounded up, at least 1.
    pub retry_after_secs: u64,
}

impl Gcra {
    /// `burst` is the bucket's capacity, default `requests`. Zero values (refused by
    /// validation) are treated as 1.
    pub fn new(requests: u32, per: Per, burst: Option<u32>) -> Self {
        let requests = u64::from(requests.max(1));
        Self {
            interval: (per.seconds() * NANOS_PER_SEC / requests).max(1),
            capacity: burst.map_or(requests, |b| u64::from(b.max(1))),
        }
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Nanoseconds between requests at the steady rate.
    pub fn interval_nanos(&self) -> u64 {
        self.interval
    }

    /// The share of this limit one of `nodes` nodes enforces on its own (while the shared
    /// count is unreachable): the rate and the burst divided by `nodes`, at least one
    /// request at once.
    pub fn divided(self, nodes: usize) -> Self {
        let nodes = (nodes as u64).max(1);
        Self {
            interval: self.interval.saturating_mul(nodes),
            capacity: (self.capacity / nodes).max(1),
        }
    }

    /// Counts one request at `now` (unix nanoseconds) against `tat` if allowed.
    pub fn check(&self, tat: &AtomicU64, now: u64) -> Result<RateLimitStatus, Exceeded> {
        let horizon = now.saturating_add(self.interval.saturating_mul(self.capacity));
        let mut current = tat.load(Ordering::Acquire);
        loop {
            let next = current.max(now).saturating_add(self.interval);
            if next > horizon {
                return Err(Exceeded {
                    status: RateLimitStatus {
                        limit: self.capacity,
                        remaining: 0,
                        reset_secs: ceil_secs(current.saturating_sub(now)),
                    },
                    retry_after_secs: ceil_secs(next - horizon).max(1),
                });
            }
            match tat.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    return Ok(RateLimitStatus {
                        limit: self.capacity,
                        remaining: (horizon - next) / self.interval,
                        reset_secs: ceil_secs(next - now),
                    })
                }
                Err(actual) => current = actual,
            }
        }
    }
}

fn ceil_secs(nanos: u64) -> u64 {
    nanos.div_ceil(NANOS_PER_SEC)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000 * NANOS_PER_SEC;

    #[test]
    fn allows_burst_at_once_then_exactly_one_per_interval() {
        // 10 per second, burst 5: 5 at once, then one every 100 ms.
        let gcra = Gcra::new(10, Per::Second, Some(5));
        let tat = AtomicU64::new(0);
        for left in (0..5).rev() {
            assert_eq!(gcra.check(&tat, T0).map(|s| s.remaining), Ok(left));
        }
        let over = gcra.check(&tat, T0).expect_err("6th at t0");
        assert_eq!(over.retry_after_secs, 1);
        assert_eq!(over.status.remaining, 0);
        let interval = 100_000_000;
        for step in 1..=20 {
            let now = T0 + step * interval;
            assert!(gcra.check(&tat, now - 1).is_err(), "early at step {step}");
            assert!(gcra.check(&tat, now).is_ok(), "on time at step {step}");
            assert!(gcra.check(&tat, now).is_err(), "second at step {step}");
        }
    }

    #[test]
    fn burst_defaults_to_requests() {
        let gcra = Gcra::new(3, Per::Minute, None);
        let tat = AtomicU64::new(0);
        assert_eq!((0..10).filter(|_| gcra.check(&tat, T0).is_ok()).count(), 3);
        let over = gcra.check(&tat, T0).expect_err("over");
        assert_eq!(over.retry_after_secs, 20);
        assert_eq!(over.status.reset_secs, 60);
    }

    #[test]
    fn divided_share_allows_a_node_its_part() {
        let gcra = Gcra::new(10, Per::Second, Some(6)).divided(3);
        assert_eq!(gcra.capacity(), 2);
        assert_eq!(gcra.interval_nanos(), 300_000_000);
        let tat = AtomicU64::new(0);
        assert_eq!((0..10).filter(|_| gcra.check(&tat, T0).is_ok()).count(), 2);
        assert_eq!(Gcra::new(1, Per::Second, None).divided(5).capacity(), 1);
    }

    #[test]
    fn refills_after_idle() {
        let gcra = Gcra::new(2, Per::Second, None);
        let tat = AtomicU64::new(0);
        assert!(gcra.check(&tat, T0).is_ok());
        assert!(gcra.check(&tat, T0).is_ok());
        assert!(gcra.check(&tat, T0).is_err());
        let later = T0 + 10 * NANOS_PER_SEC;
        assert_eq!(gcra.check(&tat, later).map(|s| s.remaining), Ok(1));
    }

    #[test]
    fn concurrent_threads_never_exceed_the_limit() {
        let gcra = Gcra::new(100, Per::Hour, Some(250));
        let tat = AtomicU64::new(0);
        let allowed: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..1000).filter(|_| gcra.check(&tat, T0).is_ok()).count()))
                .collect();
            handles.into_iter().map(|h| h.join().expect("thread")).sum()
        });
        assert_eq!(allowed, 250);
    }
}
