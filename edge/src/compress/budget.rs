//! How much memory the encoders of answers being sent may hold at once.
//!
//! An encoder lives as long as its answer streams, and a client that stops reading keeps
//! it: an attack pass held 100 brotli answers open for 300 MB, and 100 HTTP/2 streams of
//! one connection for 106 MB with zstd. Each encoder reserves its coding's weight (what it
//! was measured to hold) from one budget of [`BUDGET_BYTES`]; an answer that finds the
//! budget spent is sent identity, which every client accepts, and the reservation returns
//! when its encoder is dropped.

use std::sync::atomic::{AtomicUsize, Ordering};

use policies::Coding;

/// All encoders together hold at most this much (about 85 brotli, 256 zstd or 1,024 gzip
/// answers streaming at once: answers that stream for milliseconds never come near it).
pub const BUDGET_BYTES: usize = 256 * 1024 * 1024;

/// Bytes reserved from a budget of `limit`.
#[derive(Debug)]
struct Budget {
    held: AtomicUsize,
    limit: usize,
}

static BUDGET: Budget = Budget {
    held: AtomicUsize::new(0),
    limit: BUDGET_BYTES,
};

impl Budget {
    fn take(&'static self, coding: Coding) -> Option<Reservation> {
        let bytes = weight(coding);
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held + bytes <= self.limit).then_some(held + bytes)
            })
            .ok()
            .map(|_| Reservation {
                budget: self,
                bytes,
            })
    }
}

/// What an encoder of `coding` holds while it lives (its state and window, measured).
pub fn weight(coding: Coding) -> usize {
    match coding {
        Coding::Br => 3 * 1024 * 1024,
        Coding::Zstd => 1024 * 1024,
        Coding::Gzip => 256 * 1024,
    }
}

/// One encoder's share of the budget, returned when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: &'static Budget,
    bytes: usize,
}

impl Reservation {
    /// `coding`'s weight from the budget; `None` when it is spent.
    pub fn take(coding: Coding) -> Option<Reservation> {
        BUDGET.take(coding)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_budget_refuses_until_a_reservation_returns() {
        let budget: &'static Budget = Box::leak(Box::new(Budget {
            held: AtomicUsize::new(0),
            limit: 2 * weight(Coding::Br) + weight(Coding::Gzip),
        }));
        let first = budget.take(Coding::Br).expect("room");
        let _second = budget.take(Coding::Br).expect("room");
        assert!(budget.take(Coding::Zstd).is_none(), "a zstd does not fit");
        let _small = budget.take(Coding::Gzip).expect("a gzip does");
        assert!(budget.take(Coding::Gzip).is_none(), "spent");
        drop(first);
        assert!(budget.take(Coding::Br).is_some(), "room again");
        // What is still held: the second brotli and the gzip.
        let held = budget.held.load(Ordering::Acquire);
        assert_eq!(held, weight(Coding::Br) + weight(Coding::Gzip));
    }
}
