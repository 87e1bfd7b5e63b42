//! What the admin server sees of the live proxy ([`admin_ui::LiveView`]), and the
//! readiness probe behind `GET /healthz`.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use admin_ui::{CacheStats, LiveView, RedisStatus, TargetHealth, UsageReport};
use policies::calendar::{period_end, period_index, period_name};
use policies::{shared, Clock, QuotaPeriod, QuotaSpec, SystemClock, Usage};

use crate::gateway::Shared;
use crate::upstream::now_ms;

/// Edge's [`LiveView`]: reads the shared state only.
pub struct Live {
    pub shared: Arc<Shared>,
}

impl LiveView for Live {
    fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::Acquire)
    }

    fn upstream_health(&self) -> Vec<TargetHealth> {
        let snapshot = self.shared.snapshot.load();
        let now = now_ms();
        let mut pools: Vec<_> = snapshot.pools.values().collect();
        pools.sort_by(|a, b| a.id().cmp(b.id()));
        pools
            .into_iter()
            .flat_map(|p| {
                p.health(now)
                    .into_iter()
                    .map(move |(target, healthy)| TargetHealth {
                        upstream: p.id().to_owned(),
                        target,
                        healthy,
                    })
            })
            .collect()
    }

    fn usage(&self, consumer: &str) -> Option<UsageReport> {
        let snapshot = self.shared.snapshot.load();
        let plan = snapshot.directory.consumer(consumer)?.plan()?;
        let quota = snapshot.plan_quotas.get(plan)?;
        Some(usage_report(
            self.shared
                .counters
                .quotas
                .usage(consumer, quota, SystemClock.now()),
            quota,
        ))
    }

    fn shared_usage<'a>(
        &'a self,
        consumer: &'a str,
    ) -> Pin<Box<dyn Future<Output = Option<UsageReport>> + Send + 'a>> {
        let Some(counting) = self.shared.counting.get() else {
            return Box::pin(std::future::ready(self.usage(consumer)));
        };
        Box::pin(async move {
            let quota = {
                let snapshot = self.shared.snapshot.load();
                let plan = snapshot.directory.consumer(consumer)?.plan()?;
                snapshot.plan_quotas.get(plan)?.clone()
            };
            let now = SystemClock.now().as_secs();
            let index = period_index(quota.per, now);
            let period = period_name(quota.per, index);
            let used = counting
                .quota_used(&shared::quota_key(consumer, &period))
                .await;
            let usage = Usage {
                used,
                limit: quota.requests,
                remaining: quota.requests.saturating_sub(used),
                period,
                resets_at: period_end(quota.per, index),
            };
            Some(usage_report(usage, &quota))
        })
    }

    fn redis(&self) -> Option<RedisStatus> {
        let health = self.shared.counting.get()?.health();
        Some(RedisStatus {
            url: health.url,
            up: health.up,
            last_error: health.last_error,
        })
    }

    fn last_reload_error(&self) -> Option<String> {
        self.shared.reload_error()
    }

    fn applied(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.shared.freshness.subscribe())
    }

    fn key_last_used(&self, key_hash: &policies::KeyHash) -> Option<u64> {
        self.shared
            .snapshot
            .load()
            .directory
            .key(key_hash)?
            .last_use()
    }

    fn cache_purge(&self, route: &str, path: Option<&str>) -> u64 {
        // Entries are kept under the request's canonical path (as routing sees it), so a
        // path spelled otherwise (`/q/%70a`, `/q/./pa`) purges the same entries.
        let canonical = path.and_then(|p| {
            crate::routing::canonical::canonical_path(p.as_bytes())
                .ok()
                .flatten()
        });
        let path = canonical.as_deref().or(path);
        crate::cache::get().map_or(0, |c| c.store.purge(route, path))
    }

    fn cache_stats(&self) -> Option<CacheStats> {
        let cache = crate::cache::get()?;
        let mut stats = CacheStats {
            bytes: cache.store.bytes(),
            capacity_bytes: cache.store.capacity(),
            entries: cache.store.entries() as u64,
            ..CacheStats::default()
        };
        use prometheus::core::Collector;
        for family in self.shared.metrics.cache_requests.collect() {
            for series in family.get_metric() {
                let value = series.get_counter().get_value() as u64;
                let result = series
                    .get_label()
                    .iter()
                    .find(|l| l.name() == "result")
                    .map(|l| l.value().to_owned());
                match result.as_deref() {
                    Some("hit") => stats.hits += value,
                    Some("miss") => stats.misses += value,
                    Some("stale") => stats.stale += value,
                    Some("bypass") => stats.bypass += value,
                    _ => {}
                }
            }
        }
        Some(stats)
    }
}

/// The admin API's form of a consumer's quota usage.
pub fn usage_report(usage: Usage, quota: &QuotaSpec) -> UsageReport {
    UsageReport {
        period: match quota.per {
            QuotaPeriod::Day => "day",
            QuotaPeriod::Month => "month",
        }
        .to_owned(),
        used: usage.used,
        limit: Some(usage.limit),
        remaining: Some(usage.remaining),
        resets_at: usage.resets_at,
    }
}

/// The address to probe for a listener on `listen` (a wildcard becomes loopback).
pub fn probe_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Waits until `addr` accepts TCP connections and the proxy itself took one (a connection
/// that another process on the same port accepted does not count), then marks the proxy
/// ready.
pub async fn wait_until_ready(shared: Arc<Shared>, addr: SocketAddr) {
    loop {
        if let Ok(Ok(_probe)) = tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            // The proxy sees the probe's connection a moment after the connect returns.
            for _ in 0..50 {
                if shared.drain.is_accepting() {
                    shared.ready.store(true, Ordering::Release);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Binds `addr` and lets it go: `Err` (the OS error) when another process holds it. Pingora
/// binds its listeners only once running, retries a taken port for 30 s and then gives
/// the service up without stopping the process; this check makes a taken port a failed
/// start instead.
pub fn check_bindable(addr: SocketAddr) -> std::io::Result<()> {
    std::net::TcpListener::bind(addr).map(drop)
}

/// How often a degraded store is probed (reopened, a write tried) and held-back store
/// errors are logged.
pub const STORE_PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// Every [`STORE_PROBE_INTERVAL`], on the blocking pool: [`storage::Store::check_health`],
/// so that a store that could not write (a full disk) turns healthy once it writes again,
/// without waiting for an admin write. Runs as long as the runtime does.
pub async fn watch_store(store: storage::Store) {
    let mut tick = tokio::time::interval(STORE_PROBE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let store = store.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || store.check_health()).await {
            tracing::error!(error = %e, "the store health check panicked");
        }
    }
}
