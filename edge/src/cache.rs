//! The response cache (policy `cache`): a shared HTTP cache (RFC 9111) of GET and HEAD
//! answers in memory, on Pingora's cache hooks. It owns the store ([`store`]: TinyUFO,
//! bounded by `--cache-size`), the keys ([`key`]), the cacheability and freshness rules and
//! the `x-cache` result ([`phases`]), purges, and the `tollgate_cache_*` figures.
//!
//! Pingora wants `'static` storage, lock and predictor: [`install`] makes them once at
//! start-up. Requests reach the cache only after the route's policy chain has run
//! (`request_filter`), so a keyed route still refuses a request without a key on a cached
//! URL. Simultaneous misses of one key wait on Pingora's cache lock: one origin fetch.

pub mod key;
pub mod meta;
pub mod phases;
pub mod store;

use std::sync::OnceLock;
use std::time::Duration;

use pingora_cache::lock::{CacheKeyLockImpl, CacheLock};
use pingora_cache::predictor::Predictor;
use prometheus::{IntCounter, IntCounterVec};

use store::MemoryStore;

/// `--cache-size` unless told, in MB.
pub const DEFAULT_CACHE_SIZE_MB: u64 = 128;
/// How long a fill may hold the cache lock before waiting requests go to the upstream
/// themselves.
const LOCK_AGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Keys remembered as uncacheable (their requests skip the lookup and the lock), per shard.
const PREDICTOR_SHARD_KEYS: usize = 4096;

/// What the cache did for one request, as `x-cache` says and the metric counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheResult {
    /// Served from a fresh stored answer (or one the upstream confirmed with a 304).
    Hit,
    /// Fetched from the upstream and stored.
    Miss,
    /// Served from a stale stored answer (while revalidating, or because the upstream
    /// failed).
    Stale,
    /// Not looked up or not stored (method, uncacheable answer).
    Bypass,
}

impl CacheResult {
    const ALL: [CacheResult; 4] = [Self::Hit, Self::Miss, Self::Stale, Self::Bypass];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Stale => "stale",
            Self::Bypass => "bypass",
        }
    }

    /// The `x-cache` header value.
    pub fn header(self) -> &'static str {
        match self {
            Self::Hit => "HIT",
            Self::Miss => "MISS",
            Self::Stale => "STALE",
            Self::Bypass => "BYPASS",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The process's response cache.
pub struct ResponseCache {
    pub store: &'static MemoryStore,
    lock: &'static CacheKeyLockImpl,
    predictor: &'static Predictor<16>,
    requests: IntCounterVec,
}

static CACHE: OnceLock<ResponseCache> = OnceLock::new();

/// Makes the process's response cache, of `size_bytes` at most, counting into the metrics
/// given (`tollgate_cache_requests_total`, `tollgate_cache_size_bytes`). Called once at
/// start-up; a second call returns the first cache.
pub fn install(
    size_bytes: u64,
    metrics: &crate::metrics::Metrics,
) -> pingora_error::Result<&'static ResponseCache> {
    if let Some(cache) = CACHE.get() {
        return Ok(cache);
    }
    let store = MemoryStore::new(size_bytes, metrics.cache_size.clone())?;
    Ok(CACHE.get_or_init(|| ResponseCache {
        store: Box::leak(Box::new(store)),
        lock: Box::leak(CacheLock::new_boxed(LOCK_AGE_TIMEOUT)),
        predictor: Box::leak(Box::new(Predictor::new(
            PREDICTOR_SHARD_KEYS,
            Some(is_per_request_reason),
        ))),
        requests: metrics.cache_requests.clone(),
    }))
}

/// Reasons that say nothing of the URL, only of one request (its `Authorization`): the
/// predictor does not remember the key as uncacheable for them, or the next anonymous
/// request would skip the cache.
fn is_per_request_reason(reason: &'static str) -> bool {
    reason == phases::AUTHORIZATION_REASON
}

/// The process's response cache, once installed.
pub fn get() -> Option<&'static ResponseCache> {
    CACHE.get()
}

/// A route's `tollgate_cache_requests_total` counters, resolved on its first cached request.
#[derive(Default)]
pub struct RouteCounters(OnceLock<[IntCounter; 4]>);

impl RouteCounters {
    /// Counts one request of `route`.
    pub fn count(&self, cache: &ResponseCache, route: &str, result: CacheResult) {
        self.0.get_or_init(|| {
            CacheResult::ALL.map(|r| cache.requests.with_label_values(&[route, r.label()]))
        })[result.index()]
        .inc();
    }
}
