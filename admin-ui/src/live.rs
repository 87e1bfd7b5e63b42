//! What the admin server sees of the running proxy. Edge implements [`LiveView`] and hands it
//! to [`crate::router`]; admin-ui never imports edge.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::Serialize;

/// The longest a write waits for the proxy to serve it before answering anyway.
pub const APPLY_WAIT: Duration = Duration::from_secs(5);

/// Read-only view of the live proxy. Every method is called on admin requests only (never on
/// the proxy's request path) and must be cheap and non-blocking: no I/O, no lock held long.
pub trait LiveView: Send + Sync + 'static {
    /// True once the proxy listener accepts connections (drives `GET /healthz`).
    fn is_ready(&self) -> bool;
    /// Current health of every target of every upstream in the live snapshot.
    fn upstream_health(&self) -> Vec<TargetHealth>;
    /// Quota usage of `consumer` in its current period; `None` when it has no quota.
    fn usage(&self, consumer: &str) -> Option<UsageReport>;
    /// [`LiveView::usage`] as the cluster counts it: with shared counting (`--redis`) the
    /// count in Redis (one round trip, bounded by the client's timeouts), else the
    /// node's own. What the usage endpoint and console show.
    fn shared_usage<'a>(
        &'a self,
        consumer: &'a str,
    ) -> Pin<Box<dyn Future<Output = Option<UsageReport>> + Send + 'a>> {
        Box::pin(std::future::ready(self.usage(consumer)))
    }
    /// The shared counting store's health (`--redis`); `None` without one.
    fn redis(&self) -> Option<RedisStatus> {
        None
    }
    /// The error of the last failed config reload, if the last reload failed.
    fn last_reload_error(&self) -> Option<String>;
    /// Follows the config revision the proxy has dealt with (serves, or refused to
    /// compile). `None`: nothing to wait for.
    fn applied(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
    /// When the API key whose hash is `key_hash` was last used (unix seconds), if it ever
    /// was: recorded in memory, saved with quota counts, restored at start.
    fn key_last_used(&self, _key_hash: &storage::KeyHash) -> Option<u64> {
        None
    }
    /// Drops this node's cached answers of `route` (of request path `path` only, when
    /// given); returns how many. Each node has its own cache.
    fn cache_purge(&self, _route: &str, _path: Option<&str>) -> u64 {
        0
    }
    /// The response cache's figures; `None` without one.
    fn cache_stats(&self) -> Option<CacheStats> {
        None
    }
}

/// The response cache's figures (dashboard, `GET /api/v1/status`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CacheStats {
    /// Bytes held now, and at most (`--cache-size`).
    pub bytes: u64,
    pub capacity_bytes: u64,
    /// Answers held now.
    pub entries: u64,
    /// Requests of routes with a cache since start, by result.
    pub hits: u64,
    pub misses: u64,
    pub stale: u64,
    pub bypass: u64,
}

impl CacheStats {
    /// Hits (fresh or stale) over hits and misses; `None` before any.
    pub fn hit_ratio(&self) -> Option<f64> {
        let served = self.hits + self.stale;
        let total = served + self.misses;
        (total > 0).then(|| served as f64 / total as f64)
    }
}

/// Waits (at most [`APPLY_WAIT`]) until the proxy has dealt with `revision`, so that a write
/// answered 2xx applies from the next request, as the contract says.
pub async fn wait_applied(live: &dyn LiveView, revision: u64) {
    if let Some(mut applied) = live.applied() {
        // A timeout or a closed channel (shutdown) answers anyway: the write is durable.
        let _ = tokio::time::timeout(APPLY_WAIT, applied.wait_for(|r| *r >= revision)).await;
    }
}

/// Health of one target of one upstream.
#[derive(Debug, Clone, Serialize)]
pub struct TargetHealth {
    /// Upstream id.
    pub upstream: String,
    /// Target address as configured (`host:port`).
    pub target: String,
    pub healthy: bool,
}

/// A consumer's quota usage in the current period.
#[derive(Debug, Clone, Serialize)]
pub struct UsageReport {
    /// `day` or `month`.
    pub period: String,
    /// Requests counted in the current period.
    pub used: u64,
    /// The quota; `None` when unlimited.
    pub limit: Option<u64>,
    /// `limit - used` (never below 0); `None` when unlimited.
    pub remaining: Option<u64>,
    /// Unix seconds at which the current period ends.
    pub resets_at: u64,
}

/// The Redis that shares rate limits and quotas (`--redis`), in `GET /api/v1/status`.
#[derive(Debug, Clone, Serialize)]
pub struct RedisStatus {
    /// The URL without its password.
    pub url: String,
    /// Whether it answers: while not, each node counts its share of every limit.
    pub up: bool,
    pub last_error: Option<String>,
}
