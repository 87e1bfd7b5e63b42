//! Upstream pools: the targets of one upstream, their health, the balancing algorithm and
//! the `HttpPeer` a request is sent to.
//!
//! Round robin (weighted), random and consistent hashing (ketama) come from
//! `pingora-load-balancing`; least connections is done here with a per-target in-flight
//! counter ([`InFlight`]). A target is available when its active health check says healthy
//! and it is not in a passive-ejection cool-down. The active check task
//! ([`health`]) starts with the pool and stops when the pool is dropped.
//!
//! A target given by host name becomes one target per address it resolves to (all of
//! them, IPv4 and IPv6), each balanced and checked on its own but reported (status,
//! `tollgate_upstream_target_healthy`, access log) under the configured `addr`. A name that
//! does not resolve leaves its upstream without that target, not the config without
//! routes; the refresh task ([`dns`]) looks names up again in the background.

pub mod dns;
pub mod health;
mod select;
mod targets;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use pingora_core::upstreams::peer::HttpPeer;
use prometheus::IntGauge;
use storage::{Balancing, UpstreamSpec};

use crate::metrics::Metrics;
use dns::{Backoff, Host, Resolve, SystemDns};
pub use targets::{Target, Targets};

/// How long a target that refused a connection is skipped when its upstream has no active
/// health check to bring it back.
pub const PASSIVE_COOLDOWN: Duration = Duration::from_secs(5);

/// Streams one HTTP/2 connection to a target carries at once before Pingora opens another
/// (gRPC servers allow 100 by default).
pub const H2_STREAMS_PER_CONNECTION: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstreams[{upstream}].targets: {addr}: must be host:port")]
    BadAddr { upstream: String, addr: String },
    #[error("upstreams[{upstream}].targets: must not be empty")]
    NoTargets { upstream: String },
    #[error(
        "upstreams[{upstream}].hash_on: unknown value {value} (client_ip, path or header:NAME)"
    )]
    BadHashOn { upstream: String, value: String },
}

/// What a consistent-hash pool hashes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashOn {
    ClientIp,
    Path,
    /// Lower-case header name.
    Header(String),
}

impl HashOn {
    fn parse(upstream: &str, value: Option<&str>) -> Result<HashOn, UpstreamError> {
        match value {
            None | Some("client_ip") => Ok(HashOn::ClientIp),
            Some("path") => Ok(HashOn::Path),
            Some(v) => match v.strip_prefix("header:") {
                Some(name) if !name.is_empty() => Ok(HashOn::Header(name.to_ascii_lowercase())),
                _ => Err(UpstreamError::BadHashOn {
                    upstream: upstream.to_owned(),
                    value: v.to_owned(),
                }),
            },
        }
    }
}

/// The compiled form of one `UpstreamSpec`. Shared by every snapshot that carries it over.
///
/// Its targets are an `ArcSwap<Targets>` that only the pool's DNS refresh task replaces
/// (pools of IP literals never do): a request loads it once, lock-free. It is independent
/// of the snapshot swap (nothing has to agree between the two).
#[derive(Debug)]
pub struct Pool {
    pub spec: UpstreamSpec,
    targets: ArcSwap<Targets>,
    /// `tollgate_upstream_target_healthy` of each configured target (label: its configured
    /// `addr`), 1 while at least one of its addresses is healthy.
    gauges: Box<[IntGauge]>,
    hash_on: HashOn,
    /// The next [`Target::id`].
    next_id: AtomicUsize,
    checker: OnceLock<tokio::task::AbortHandle>,
    refresher: OnceLock<tokio::task::AbortHandle>,
}

impl Drop for Pool {
    fn drop(&mut self) {
        for task in [self.checker.get(), self.refresher.get()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

impl Pool {
    /// [`Pool::compile_with`] the system resolver.
    pub fn compile(
        spec: &UpstreamSpec,
        metrics: &Metrics,
        runtime: Option<&tokio::runtime::Handle>,
    ) -> Result<Arc<Pool>, UpstreamError> {
        Pool::compile_with(spec, metrics, runtime, Arc::new(SystemDns))
    }

    /// Compiles `spec`. Each host-name target is looked up once here (blocking: call it off
    /// the request path); a name that does not resolve still compiles, with no address yet
    /// (its routes answer 503 until it resolves). Sets each target's health gauge (1 when
    /// it has an address). With `runtime`: starts the health check task (first check at
    /// once) when the spec has one, and the DNS refresh task when a target is a name.
    /// `Err` only for a spec the store would refuse (no targets, bad address or hash_on).
    pub fn compile_with(
        spec: &UpstreamSpec,
        metrics: &Metrics,
        runtime: Option<&tokio::runtime::Handle>,
        resolver: Arc<dyn Resolve>,
    ) -> Result<Arc<Pool>, UpstreamError> {
        let first = resolver.clone();
        Pool::compile_prefetched(spec, metrics, runtime, resolver, &*first)
    }

    /// [`Pool::compile_with`], the lookups at compile asked of `first` (answers fetched in
    /// advance for a whole snapshot: [`dns::prefetch`]); the refresh task asks `resolver`.
    pub fn compile_prefetched(
        spec: &UpstreamSpec,
        metrics: &Metrics,
        runtime: Option<&tokio::runtime::Handle>,
        resolver: Arc<dyn Resolve>,
        first: &dyn Resolve,
    ) -> Result<Arc<Pool>, UpstreamError> {
        if spec.targets.is_empty() {
            return Err(UpstreamError::NoTargets {
                upstream: spec.id.clone(),
            });
        }
        let hash_on = HashOn::parse(&spec.id, spec.hash_on.as_deref())?;
        let mut list = Vec::with_capacity(spec.targets.len());
        let mut names = Vec::new();
        let mut all_resolved = true;
        for (k, t) in spec.targets.iter().enumerate() {
            let bad = || UpstreamError::BadAddr {
                upstream: spec.id.clone(),
                addr: t.addr.clone(),
            };
            let addrs = match Host::parse(&t.addr).ok_or_else(bad)? {
                Host::Ip(addr) => vec![addr],
                Host::Name { host, port } => {
                    let found = dns::lookup(first, &host, port);
                    names.push(dns::Name {
                        spec_index: k,
                        host,
                        port,
                        failing: found.is_err(),
                    });
                    match found {
                        Ok(addrs) => addrs,
                        Err(reason) => {
                            all_resolved = false;
                            tracing::warn!(
                                upstream = %spec.id, target = %t.addr, %reason,
                                "cannot resolve the target; its routes answer 503 until it does \
                                 (looked up again in the background)"
                            );
                            Vec::new()
                        }
                    }
                }
            };
            let sni = sni_of(spec, &t.addr);
            for addr in addrs {
                let id = list.len();
                list.push(Arc::new(Target::new(&t.addr, k, id, addr, &sni, t.weight)));
            }
        }
        let gauges = spec
            .targets
            .iter()
            .map(|t| {
                metrics
                    .target_healthy
                    .with_label_values(&[spec.id.as_str(), t.addr.as_str()])
            })
            .collect();
        let pool = Arc::new(Pool {
            spec: spec.clone(),
            next_id: AtomicUsize::new(list.len()),
            targets: ArcSwap::from_pointee(Targets::build(spec.balancing, list)),
            gauges,
            hash_on,
            checker: OnceLock::new(),
            refresher: OnceLock::new(),
        });
        pool.update_gauges();
        if let Some(rt) = runtime {
            if let Some(hc) = &spec.health_check {
                let _ = pool.checker.set(health::spawn(&pool, hc.clone(), rt));
            }
            if !names.is_empty() {
                let mut backoff = Backoff::new(pool.dns_refresh());
                let first_wait = backoff.after(all_resolved);
                let task = dns::spawn(&pool, names, resolver, backoff, first_wait, rt);
                let _ = pool.refresher.set(task);
            }
        }
        Ok(pool)
    }

    pub fn id(&self) -> &str {
        &self.spec.id
    }

    /// The targets now (one per resolved address). Requests use [`Pool::select`].
    pub fn targets(&self) -> Arc<Targets> {
        self.targets.load_full()
    }

    pub fn hash_on(&self) -> &HashOn {
        &self.hash_on
    }

    /// How often host names are looked up again.
    pub fn dns_refresh(&self) -> Duration {
        Duration::from_secs(self.spec.dns_refresh_secs.max(1))
    }

    /// Whether a key is needed by [`Pool::select`] (consistent hashing only).
    pub fn needs_key(&self) -> bool {
        self.spec.balancing == Balancing::ConsistentHash
    }

    /// Whether the target with id `id` is in the pool and in service at `now_ms`.
    pub fn is_available(&self, id: usize, now_ms: u64) -> bool {
        self.targets
            .load()
            .iter()
            .any(|t| t.id == id && t.is_available(now_ms))
    }

    /// Picks an available target whose id is not in `tried` and counts a request in
    /// flight on it until the guard drops. `key` is the consistent-hash key (ignored by
    /// other algorithms). `None`: no target is left, or none has an address yet.
    pub fn select(self: &Arc<Self>, key: &[u8], tried: &[usize], now_ms: u64) -> Option<InFlight> {
        let targets = self.targets.load();
        let position = targets.select(key, tried, now_ms)?;
        let target = targets.get(position)?.clone();
        Some(InFlight::new(self.clone(), target))
    }

    /// A guard counting a request in flight on the target with id `id` (tests only).
    #[cfg(test)]
    pub(crate) fn hold(self: &Arc<Self>, id: usize) -> InFlight {
        let target = self
            .targets
            .load()
            .iter()
            .find(|t| t.id == id)
            .cloned()
            .expect("a target with that id");
        InFlight::new(self.clone(), target)
    }

    /// Whether another target than those in `tried` could be chosen now.
    pub fn has_candidate(&self, tried: &[usize], now_ms: u64) -> bool {
        self.targets.load().has_candidate(tried, now_ms)
    }

    /// Each configured target (its `addr`) and whether one of its addresses is in service
    /// at `now_ms` (false while the name resolves to nothing), in config order.
    pub fn health(&self, now_ms: u64) -> Vec<(String, bool)> {
        let targets = self.targets.load();
        self.spec
            .targets
            .iter()
            .enumerate()
            .map(|(k, t)| {
                let up = targets
                    .iter()
                    .any(|x| x.spec_index == k && x.is_available(now_ms));
                (t.addr.clone(), up)
            })
            .collect()
    }

    /// A connection to `target` failed: take it out of service until the next successful
    /// active check, or for [`PASSIVE_COOLDOWN`] when the pool has no active check.
    fn mark_failed(&self, target: &Target, now_ms: u64) {
        if self.spec.health_check.is_some() {
            target.passive_down.store(true, Ordering::Relaxed);
            target.healthy.store(false, Ordering::Relaxed);
            self.update_gauges();
        } else {
            let until = now_ms + PASSIVE_COOLDOWN.as_millis() as u64;
            target.ejected_until_ms.store(until, Ordering::Relaxed);
        }
    }

    /// The peer for a request to `target`, with the pool's connect timeout and TLS
    /// settings; with its read and write timeouts too when `pingora_times_reads` (else the
    /// client connection's deadline times the exchange: `downstream.rs`).
    pub fn peer(&self, target: &Target, pingora_times_reads: bool) -> HttpPeer {
        let mut peer = HttpPeer::new(target.addr, self.spec.tls, target.sni.clone());
        peer.options.connection_timeout = Some(Duration::from_millis(self.spec.connect_timeout_ms));
        if self.spec.protocol != storage::Protocol::Http1 {
            // HTTP/2 only (ALPN `h2` over TLS, prior knowledge without): a gRPC server
            // speaks nothing else. Requests share connections, several streams each.
            peer.options.set_http_version(2, 2);
            peer.options.max_h2_streams = H2_STREAMS_PER_CONNECTION;
        }
        if pingora_times_reads {
            peer.options.read_timeout = Some(self.read_timeout());
            peer.options.write_timeout = Some(self.read_timeout());
        }
        peer
    }

    /// How long the upstream may take to answer, and to send each further part.
    pub fn read_timeout(&self) -> Duration {
        Duration::from_millis(self.spec.read_timeout_ms)
    }

    /// Applies one active check result to `target` (called by the check task, which then
    /// calls [`Pool::update_gauges`]).
    fn record_check(
        &self,
        target: &Target,
        ok: bool,
        streak: &mut Streak,
        hc: &storage::HealthCheckSpec,
    ) {
        let healthy = target.healthy.load(Ordering::Relaxed);
        let passive = target.passive_down.load(Ordering::Relaxed);
        let now_healthy = streak.next(
            healthy,
            passive,
            ok,
            hc.healthy_threshold,
            hc.unhealthy_threshold,
        );
        if now_healthy {
            target.passive_down.store(false, Ordering::Relaxed);
        }
        target.healthy.store(now_healthy, Ordering::Relaxed);
    }

    /// Sets each configured target's gauge: 1 while one of its addresses is healthy.
    fn update_gauges(&self) {
        let targets = self.targets.load();
        for (k, gauge) in self.gauges.iter().enumerate() {
            let up = targets
                .iter()
                .any(|t| t.spec_index == k && t.healthy.load(Ordering::Relaxed));
            gauge.set(i64::from(up));
        }
    }

    /// Applies one round of lookups (spec index, sorted addresses or the failure): a
    /// changed answer replaces the targets; addresses that stay keep their state; a failed
    /// lookup keeps the addresses the name had.
    fn apply_lookups(&self, answers: &[(usize, Result<Vec<SocketAddr>, String>)]) {
        let mut fresh = Vec::with_capacity(answers.len());
        for (k, found) in answers {
            let Some(t) = self.spec.targets.get(*k) else {
                continue;
            };
            fresh.push(targets::Answer {
                spec_index: *k,
                name: &t.addr,
                sni: sni_of(&self.spec, &t.addr),
                weight: t.weight,
                addrs: found.as_ref().ok().cloned(),
            });
        }
        let current = self.targets.load();
        let next = current.replace(self.spec.balancing, &fresh, || {
            self.next_id.fetch_add(1, Ordering::Relaxed)
        });
        drop(current);
        if let Some(next) = next {
            for a in &fresh {
                if let Some(addrs) = &a.addrs {
                    tracing::info!(upstream = %self.spec.id, target = %a.name, ?addrs, "target resolved");
                }
            }
            self.targets.store(Arc::new(next));
            self.update_gauges();
        }
    }
}

/// The SNI of a target: the spec's `sni`, else the host of the configured address.
fn sni_of(spec: &UpstreamSpec, addr: &str) -> String {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    spec.sni
        .clone()
        .unwrap_or_else(|| host.trim_matches(['[', ']']).to_owned())
}

/// Consecutive check results of one target.
#[derive(Debug, Default, Clone, Copy)]
pub struct Streak {
    successes: u32,
    failures: u32,
}

impl Streak {
    /// The target's health after one more result. `passive`: it is down because of a connect
    /// failure, which one successful check undoes.
    pub fn next(
        &mut self,
        healthy: bool,
        passive: bool,
        ok: bool,
        up_after: u32,
        down_after: u32,
    ) -> bool {
        if ok {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
            healthy || passive || self.successes >= up_after.max(1)
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
            healthy && self.failures < down_after.max(1)
        }
    }
}

/// A request in flight on one target (least connections); released on drop. Holds the
/// target itself, so a replaced target list does not change what it counts or marks.
#[derive(Debug)]
pub struct InFlight {
    pool: Arc<Pool>,
    target: Arc<Target>,
}

impl InFlight {
    fn new(pool: Arc<Pool>, target: Arc<Target>) -> InFlight {
        target.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight { pool, target }
    }

    /// The target's pool-unique id (what a request's `tried` list holds).
    pub fn id(&self) -> usize {
        self.target.id
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// The connection to this target failed (see [`Pool`]'s passive ejection).
    pub fn mark_failed(&self, now_ms: u64) {
        self.pool.mark_failed(&self.target, now_ms);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.target.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Milliseconds on a monotonic clock that starts with the process.
pub fn now_ms() -> u64 {
    ms_at(Instant::now())
}

/// [`now_ms`] of an instant already read (one clock read serves both).
pub fn ms_at(at: Instant) -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    at.saturating_duration_since(*START.get_or_init(Instant::now))
        .as_millis() as u64
}

#[cfg(test)]
mod tests;
