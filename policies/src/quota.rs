//! Plan quotas: requests per UTC day or month, counted in memory (one atomic word per
//! consumer and period kind) and persisted by the edge in batches through
//! [`Quotas::snapshot_dirty`] / [`Quotas::restore`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use serde::Serialize;

use crate::calendar::{parse_period_name, period_end, period_index, period_name};
use crate::spec::{QuotaPeriod, QuotaSpec};
use crate::verdict::{RateLimitStatus, Rejection};

const COUNT_BITS: u32 = 40;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
/// The largest quota that can be counted (about 10^12 requests per period).
pub const MAX_QUOTA: u64 = COUNT_MASK;

fn pack(period: u32, count: u64) -> u64 {
    (u64::from(period) << COUNT_BITS) | (count & COUNT_MASK)
}

fn unpack(word: u64) -> (u32, u64) {
    ((word >> COUNT_BITS) as u32, word & COUNT_MASK)
}

/// One consumer's count for one kind of period. The period index and the count share one
/// word so that a period roll-over and an increment cannot interleave.
#[derive(Debug, Default)]
pub struct QuotaCounter {
    /// `period << 40 | count`.
    state: AtomicU64,
    /// The final word of the previous period, left by the request that rolled it over and
    /// not yet persisted (0: none).
    rolled: AtomicU64,
    /// The word last handed out by `snapshot_dirty`.
    flushed: AtomicU64,
}

/// A compiled plan quota, bound to one consumer's counter.
#[derive(Debug, Clone)]
pub struct Quota {
    limit: u64,
    per: QuotaPeriod,
    counter: Arc<QuotaCounter>,
}

impl Quota {
    /// Counts one request at `now` if the period's quota is not used up. Lock-free and exact
    /// under concurrency: never more than `limit` requests are counted in a period.
    /// `Err` is the 429 (Retry-After: until the next UTC period).
    ///
    /// The stored period never moves backward: a request whose `now` is in an earlier
    /// period than the stored one (it read the clock just before midnight and lost the
    /// race to one after, or the clock was stepped back) counts in the stored period, so
    /// the newer period's count is never overwritten.
    pub fn check(&self, now: Duration) -> Result<RateLimitStatus, Rejection> {
        let secs = now.as_secs();
        let now_period = period_index(self.per, secs);
        let mut word = self.counter.state.load(Ordering::Acquire);
        loop {
            let (p, c) = unpack(word);
            let period = now_period.max(p);
            let reset_secs = period_end(self.per, period).saturating_sub(secs);
            let used = if p == period { c } else { 0 };
            if used >= self.limit {
                let status = RateLimitStatus {
                    limit: self.limit,
                    remaining: 0,
                    reset_secs,
                };
                return Err(Rejection::too_many_requests("quota", status, reset_secs));
            }
            let next = pack(period, used + 1);
            match self.counter.state.compare_exchange_weak(
                word,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if p != period && c > 0 {
                        self.counter.rolled.store(word, Ordering::Release);
                    }
                    return Ok(RateLimitStatus {
                        limit: self.limit,
                        remaining: self.limit - used - 1,
                        reset_secs,
                    });
                }
                Err(actual) => word = actual,
            }
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn per(&self) -> QuotaPeriod {
        self.per
    }
}

/// A consumer's quota usage in the current period (`GET /consumers/{id}/usage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub used: u64,
    pub limit: u64,
    pub remaining: u64,
    /// `day:2026-11-27` or `month:2026-11`.
    pub period: String,
    /// Unix seconds at which the next period starts.
    pub resets_at: u64,
}

/// One persisted count: `(consumer id, period name, count)`.
pub type UsageRecord = (String, String, u64);

/// Every quota counter of the process. Kept by the edge for the life of the process (counts
/// survive config reloads); compiled plans hold `Arc`s to its counters, so the request path
/// takes no lock. The lock here is taken only at compile, snapshot, restore and usage.
#[derive(Debug, Default)]
pub struct Quotas {
    counters: RwLock<HashMap<(String, PeriodKind), Arc<QuotaCounter>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PeriodKind {
    Day,
    Month,
}

impl From<QuotaPeriod> for PeriodKind {
    fn from(p: QuotaPeriod) -> Self {
        match p {
            QuotaPeriod::Day => Self::Day,
            QuotaPeriod::Month => Self::Month,
        }
    }
}

impl From<PeriodKind> for QuotaPeriod {
    fn from(p: PeriodKind) -> Self {
        match p {
            PeriodKind::Day => Self::Day,
            PeriodKind::Month => Self::Month,
        }
    }
}

impl Quotas {
    pub fn new() -> Self {
        Self::default()
    }

    /// The quota `spec` for `consumer`, bound to its (possibly existing) counter.
    pub fn compile(&self, consumer: &str, spec: &QuotaSpec) -> Quota {
        Quota {
            limit: spec.requests.min(MAX_QUOTA),
            per: spec.per,
            counter: self.counter(consumer, spec.per),
        }
    }

    fn counter(&self, consumer: &str, per: QuotaPeriod) -> Arc<QuotaCounter> {
        let key = (consumer.to_owned(), PeriodKind::from(per));
        if let Some(c) = self.counters.read().get(&key) {
            return Arc::clone(c);
        }
        Arc::clone(self.counters.write().entry(key).or_default())
    }

    /// Counts that changed since the last call, to persist: the current period of every
    /// counter that moved, and the final count of any period that ended since.
    pub fn snapshot_dirty(&self) -> Vec<UsageRecord> {
        let mut out = Vec::new();
        for ((consumer, kind), counter) in self.counters.read().iter() {
            let per = QuotaPeriod::from(*kind);
            let rolled = counter.rolled.swap(0, Ordering::AcqRel);
            if rolled != 0 {
                let (p, c) = unpack(rolled);
                out.push((consumer.clone(), period_name(per, p), c));
            }
            let word = counter.state.load(Ordering::Acquire);
            if counter.flushed.swap(word, Ordering::AcqRel) != word {
                let (p, c) = unpack(word);
                out.push((consumer.clone(), period_name(per, p), c));
            }
        }
        out
    }

    /// Loads persisted counts (at start, before traffic). For each consumer and kind of
    /// period the latest period wins; older records and unparsable period names are ignored.
    /// A restored period that is not the current one counts from zero on the next request.
    pub fn restore(&self, records: impl IntoIterator<Item = UsageRecord>) {
        for (consumer, period, count) in records {
            let Some((per, index)) = parse_period_name(&period) else {
                continue;
            };
            let counter = self.counter(&consumer, per);
            let word = pack(index, count.min(MAX_QUOTA));
            let current = counter.state.load(Ordering::Acquire);
            if current == 0 || unpack(current).0 < index {
                counter.state.store(word, Ordering::Release);
                counter.flushed.store(word, Ordering::Release);
            }
        }
    }

    /// `consumer`'s usage of `quota` in the period holding `now`.
    pub fn usage(&self, consumer: &str, quota: &QuotaSpec, now: Duration) -> Usage {
        let secs = now.as_secs();
        let index = period_index(quota.per, secs);
        let used = self
            .counters
            .read()
            .get(&(consumer.to_owned(), PeriodKind::from(quota.per)))
            .map(|c| unpack(c.state.load(Ordering::Acquire)))
            .filter(|(p, _)| *p == index)
            .map_or(0, |(_, c)| c);
        Usage {
            used,
            limit: quota.requests,
            remaining: quota.requests.saturating_sub(used),
            period: period_name(quota.per, index),
            resets_at: period_end(quota.per, index),
        }
    }
}

#[cfg(test)]
#[path = "quota/tests.rs"]
mod tests;
