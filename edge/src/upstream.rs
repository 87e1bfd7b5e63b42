//! Upstream pools: the targets of one upstream, their health, the balancing algorithm and
//! the `HttpPeer` a request is sent to.
//!
//! Round robin (weighted), random and consistent hashing (ketama) come from
//! `pingora-load-balancing`; least connections is done here with a per-target in-flight
//! counter ([`InFlight`]). A target is available when its active health check says healthy
//! and it is not in a passive-ejection cool-down. The active check task
//! ([`health`]) starts with the pool and stops when the pool is dropped.

pub mod health;
mod select;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use pingora_core::upstreams::peer::HttpPeer;
use prometheus::IntGauge;
use storage::{Balancing, UpstreamSpec};

use crate::metrics::Metrics;
use select::Selector;

/// How long a target that refused a connection is skipped when its upstream has no active
/// health check to bring it back.
pub const PASSIVE_COOLDOWN: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstreams[{upstream}].targets: {addr}: cannot resolve: {reason}")]
    Unresolvable {
        upstream: String,
        addr: String,
        reason: String,
    },
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

/// One backend address of a pool.
#[derive(Debug)]
pub struct Target {
    /// The address as configured (`host:port`), used in labels and the console.
    pub name: String,
    pub addr: SocketAddr,
    /// SNI for TLS upstreams.
    sni: String,
    weight: u32,
    /// The active check's verdict (true until it says otherwise).
    healthy: AtomicBool,
    /// Set when a connect failure took the target down; the next successful check clears it.
    passive_down: AtomicBool,
    /// Monotonic ms until which the target is skipped (pools without active check).
    ejected_until_ms: AtomicU64,
    in_flight: AtomicUsize,
    gauge: IntGauge,
}

/// The compiled form of one `UpstreamSpec`. Shared by every snapshot that carries it over.
#[derive(Debug)]
pub struct Pool {
    pub spec: UpstreamSpec,
    targets: Box<[Target]>,
    selector: Selector,
    hash_on: HashOn,
    /// Rotates the starting point of least-connections ties.
    tie_breaker: AtomicUsize,
    checker: OnceLock<tokio::task::AbortHandle>,
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Some(h) = self.checker.get() {
            h.abort();
        }
    }
}

impl Pool {
    /// Compiles `spec`: resolves each target (blocking DNS when a target is a name), sets its
    /// health gauge to 1, and, when the spec has a health check and `runtime` is given,
    /// starts the check task on it (first check at once).
    pub fn compile(
        spec: &UpstreamSpec,
        metrics: &Metrics,
        runtime: Option<&tokio::runtime::Handle>,
    ) -> Result<Arc<Pool>, UpstreamError> {
        if spec.targets.is_empty() {
            return Err(UpstreamError::NoTargets {
                upstream: spec.id.clone(),
            });
        }
        let hash_on = HashOn::parse(&spec.id, spec.hash_on.as_deref())?;
        let mut targets = Vec::with_capacity(spec.targets.len());
        for t in &spec.targets {
            let addr = resolve(&t.addr).map_err(|reason| UpstreamError::Unresolvable {
                upstream: spec.id.clone(),
                addr: t.addr.clone(),
                reason,
            })?;
            let host = t.addr.rsplit_once(':').map_or(t.addr.as_str(), |(h, _)| h);
            let sni = spec
                .sni
                .clone()
                .unwrap_or_else(|| host.trim_matches(['[', ']']).to_owned());
            let gauge = metrics
                .target_healthy
                .with_label_values(&[spec.id.as_str(), t.addr.as_str()]);
            gauge.set(1);
            targets.push(Target {
                name: t.addr.clone(),
                addr,
                sni,
                weight: t.weight.max(1),
                healthy: AtomicBool::new(true),
                passive_down: AtomicBool::new(false),
                ejected_until_ms: AtomicU64::new(0),
                in_flight: AtomicUsize::new(0),
                gauge,
            });
        }
        let selector = Selector::build(spec.balancing, &targets);
        let pool = Arc::new(Pool {
            spec: spec.clone(),
            targets: targets.into_boxed_slice(),
            selector,
            hash_on,
            tie_breaker: AtomicUsize::new(0),
            checker: OnceLock::new(),
        });
        if let (Some(hc), Some(rt)) = (&spec.health_check, runtime) {
            let handle = health::spawn(&pool, hc.clone(), rt);
            let _ = pool.checker.set(handle);
        }
        Ok(pool)
    }

    pub fn id(&self) -> &str {
        &self.spec.id
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    pub fn hash_on(&self) -> &HashOn {
        &self.hash_on
    }

    /// Whether a key is needed by [`Pool::select`] (consistent hashing only).
    pub fn needs_key(&self) -> bool {
        self.spec.balancing == Balancing::ConsistentHash
    }

    /// Whether the target is in service at `now_ms` (see [`now_ms`]).
    pub fn is_available(&self, index: usize, now_ms: u64) -> bool {
        self.targets.get(index).is_some_and(|t| {
            t.healthy.load(Ordering::Relaxed)
                && t.ejected_until_ms.load(Ordering::Relaxed) <= now_ms
        })
    }

    /// Picks an available target not in `tried`. `key` is the consistent-hash key (ignored by
    /// other algorithms). `None`: no target is left.
    pub fn select(&self, key: &[u8], tried: &[usize], now_ms: u64) -> Option<usize> {
        let ok = |i: usize| !tried.contains(&i) && self.is_available(i, now_ms);
        match &self.selector {
            Selector::LeastConnections => self.least_loaded(ok),
            s => s.pick(key, self.targets.len(), ok),
        }
    }

    /// Whether another target than those in `tried` could be chosen now.
    pub fn has_candidate(&self, tried: &[usize], now_ms: u64) -> bool {
        (0..self.targets.len()).any(|i| !tried.contains(&i) && self.is_available(i, now_ms))
    }

    fn least_loaded(&self, ok: impl Fn(usize) -> bool) -> Option<usize> {
        let n = self.targets.len();
        let start = self.tie_breaker.fetch_add(1, Ordering::Relaxed) % n;
        let mut best: Option<(usize, usize, u32)> = None;
        for k in 0..n {
            let i = (start + k) % n;
            if !ok(i) {
                continue;
            }
            let t = &self.targets[i];
            let load = t.in_flight.load(Ordering::Relaxed);
            // Compare load/weight without division: a/wa < b/wb  <=>  a*wb < b*wa.
            let better = match best {
                None => true,
                Some((_, bl, bw)) => {
                    (load as u128) * (bw as u128) < (bl as u128) * (t.weight as u128)
                }
            };
            if better {
                best = Some((i, load, t.weight));
            }
        }
        best.map(|(i, _, _)| i)
    }

    /// Counts a request in flight on `index` until the guard is dropped.
    pub fn acquire(self: &Arc<Self>, index: usize) -> InFlight {
        if let Some(t) = self.targets.get(index) {
            t.in_flight.fetch_add(1, Ordering::Relaxed);
        }
        InFlight {
            pool: self.clone(),
            index,
        }
    }

    /// A connection to `index` failed: take it out of service until the next successful
    /// active check, or for [`PASSIVE_COOLDOWN`] when the pool has no active check.
    pub fn mark_failed(&self, index: usize, now_ms: u64) {
        let Some(t) = self.targets.get(index) else {
            return;
        };
        if self.spec.health_check.is_some() {
            t.passive_down.store(true, Ordering::Relaxed);
            t.healthy.store(false, Ordering::Relaxed);
            t.gauge.set(0);
        } else {
            let until = now_ms + PASSIVE_COOLDOWN.as_millis() as u64;
            t.ejected_until_ms.store(until, Ordering::Relaxed);
        }
    }

    /// The peer for a request to `index`, with the pool's connect timeout and TLS
    /// settings; with its read and write timeouts too when `pingora_times_reads` (else the
    /// client connection's deadline times the exchange: `downstream.rs`).
    pub fn peer(&self, index: usize, pingora_times_reads: bool) -> Option<HttpPeer> {
        let t = self.targets.get(index)?;
        let mut peer = HttpPeer::new(t.addr, self.spec.tls, t.sni.clone());
        peer.options.connection_timeout = Some(Duration::from_millis(self.spec.connect_timeout_ms));
        if pingora_times_reads {
            peer.options.read_timeout = Some(self.read_timeout());
            peer.options.write_timeout = Some(self.read_timeout());
        }
        Some(peer)
    }

    /// How long the upstream may take to answer, and to send each further part.
    pub fn read_timeout(&self) -> Duration {
        Duration::from_millis(self.spec.read_timeout_ms)
    }

    /// Applies one active check result to `index` (called by the check task).
    fn record_check(
        &self,
        index: usize,
        ok: bool,
        streak: &mut Streak,
        hc: &storage::HealthCheckSpec,
    ) {
        let Some(t) = self.targets.get(index) else {
            return;
        };
        let healthy = t.healthy.load(Ordering::Relaxed);
        let passive = t.passive_down.load(Ordering::Relaxed);
        let now_healthy = streak.next(
            healthy,
            passive,
            ok,
            hc.healthy_threshold,
            hc.unhealthy_threshold,
        );
        if now_healthy {
            t.passive_down.store(false, Ordering::Relaxed);
        }
        t.healthy.store(now_healthy, Ordering::Relaxed);
        t.gauge.set(i64::from(now_healthy));
    }
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

/// A request in flight on one target (least connections); released on drop.
#[derive(Debug)]
pub struct InFlight {
    pool: Arc<Pool>,
    index: usize,
}

impl InFlight {
    pub fn index(&self) -> usize {
        self.index
    }
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(t) = self.pool.targets.get(self.index) {
            t.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
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

fn resolve(addr: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = addr.parse::<SocketAddr>() {
        return Ok(a);
    }
    addr.to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| "no address".to_owned())
}

#[cfg(test)]
mod tests;
