//! `rate_limit`: an exact GCRA limit keyed by consumer, client address, route or a header
//! value. State lives in a sharded map of atomics that survives config reloads through the
//! [`LimiterRegistry`].
//!
//! Memory is bounded whatever clients send:
//! - A key is held as a 64-bit keyed hash (SipHash-1-3 under std's `RandomState`: random
//!   keys per process), never as the raw value: a `header:NAME` value of 64 KB costs what an
//!   address costs (an entry of 16 bytes). The keys are secret, so a client can neither
//!   make two values collide nor aim them at one shard; two honest keys collide with odds
//!   of about one in 10^9 at the cap (n^2 / 2^65), and then only share one bucket (a
//!   stricter limit for both, never a looser one). A digest such as sha256 would be as
//!   safe but slower, and a raw value needs no collision resistance against a secret key.
//! - Expired entries (back to a full bucket, the same as never seen) are swept by the
//!   inserts themselves, amortised: a shard is swept when it has doubled since its last
//!   sweep, so it holds at most about twice its live keys. No thread is needed.
//! - At most [`MAX_KEYS`] keys per policy (about 4.5 MB). A full shard, once swept, evicts
//!   the eighth of its keys nearest to a full bucket (the earliest arrival times), not the
//!   new key. Refusing new keys (429) would let anyone who rotates values lock out every
//!   new client; evicting the entries nearest to full loses the least state (an evicted
//!   key merely starts again from a full bucket, which it nearly had) and keeps the keys
//!   that are actually being held back, since those have the latest arrival times.
//!
//! A limit keyed by `header:NAME` counts what the client chooses to send: a client that
//! sends another value each time is never limited by it. It spreads a budget between
//! honest tenants; it is no defence against a hostile client (key that by `ip`).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use http::HeaderName;
use parking_lot::{Mutex, RwLock};

use crate::clock::duration_nanos;
use crate::gcra::Gcra;
use crate::problem::Problem;
use crate::request::{RequestState, RequestView};
use crate::spec::{PlanRateSpec, RateLimitSpec};
use crate::verdict::{Rejection, Verdict};

const SHARDS: usize = 32;
/// The most keys one limiter holds: 4,096 per shard. An entry is 16 bytes plus a control
/// byte, in a table of at most 8,192 buckets per shard: about 4.5 MB when full.
pub const MAX_KEYS: usize = 1 << 17;
/// A shard is not swept below this size (sweeping a small table saves nothing).
const SWEEP_FROM: usize = 64;
/// Tag of the client-address fallback key; consumer ids never start with this byte.
const IP_TAG: u8 = 0xff;

/// What a route limit counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitBy {
    /// The identified consumer; the client address when none is.
    Consumer,
    Ip,
    /// The route as a whole.
    Route,
    /// The header's value; the client address when the header is absent.
    Header(HeaderName),
}

/// Hands the keyed hash a [`KeyedLimiter`] already computed to the shard's table as it is.
#[derive(Debug, Default, Clone, Copy)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed here; fold anything else rather than panic.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// One shard: keyed hashes to theoretical arrival times.
#[derive(Debug)]
struct Shard {
    tats: HashMap<u64, AtomicU64, BuildHasherDefault<PassThrough>>,
    /// The size at which the next new key sweeps the shard first.
    sweep_at: usize,
}

impl Shard {
    fn new() -> Self {
        Self {
            tats: HashMap::default(),
            sweep_at: SWEEP_FROM,
        }
    }

    /// Drops the keys back to a full bucket at `now`; if still at `cap`, evicts the eighth
    /// nearest to a full bucket. Sets the next sweep at twice what is left (within `cap`).
    fn sweep(&mut self, now: u64, cap: usize) {
        self.tats.retain(|_, tat| tat.load(Ordering::Acquire) > now);
        if self.tats.len() >= cap {
            let mut tats: Vec<u64> = self
                .tats
                .values()
                .map(|t| t.load(Ordering::Acquire))
                .collect();
            let nth = tats.len() / 8;
            let (_, threshold, _) = tats.select_nth_unstable(nth);
            let threshold = *threshold;
            self.tats
                .retain(|_, tat| tat.load(Ordering::Acquire) > threshold);
        }
        if self.tats.capacity() > 4 * self.tats.len().max(SWEEP_FROM) {
            self.tats.shrink_to(2 * self.tats.len());
        }
        self.sweep_at = (2 * self.tats.len()).clamp(SWEEP_FROM.min(cap), cap);
    }
}

/// A GCRA limiter with one atomic per key, in shards of `RwLock<HashMap>`. The lock is held
/// only to find or insert the key's atomic, never across an await; known keys take a shared
/// read lock. Keys are held as keyed hashes, swept as they expire and capped (module doc).
#[derive(Debug)]
pub struct KeyedLimiter {
    gcra: Gcra,
    hasher: RandomState,
    /// Most keys per shard.
    shard_cap: usize,
    shards: Box<[RwLock<Shard>]>,
}

impl KeyedLimiter {
    /// A limiter holding at most [`MAX_KEYS`] keys.
    pub fn new(gcra: Gcra) -> Self {
        Self::with_max_keys(gcra, MAX_KEYS)
    }

    /// A limiter holding at most about `max_keys` keys (at least one per shard).
    pub fn with_max_keys(gcra: Gcra, max_keys: usize) -> Self {
        Self {
            gcra,
            hasher: RandomState::new(),
            shard_cap: (max_keys / SHARDS).max(1),
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::new())).collect(),
        }
    }

    /// Counts one request for `key` at `now` (unix nanoseconds). Takes no allocation but
    /// the table's own growth; a new key may sweep its shard first (amortised).
    pub fn check(
        &self,
        key: &[u8],
        now: u64,
    ) -> Result<crate::RateLimitStatus, crate::gcra::Exceeded> {
        let hash = self.hasher.hash_one(key);
        // Bits the shard's table does not use for its buckets (the low ones) nor for its
        // control bytes (the top seven).
        let shard = &self.shards[(hash >> 32) as usize % SHARDS];
        if let Some(tat) = shard.read().tats.get(&hash) {
            return self.gcra.check(tat, now);
        }
        let mut shard = shard.write();
        if !shard.tats.contains_key(&hash) && shard.tats.len() >= shard.sweep_at {
            shard.sweep(now, self.shard_cap);
        }
        let tat = shard.tats.entry(hash).or_default();
        self.gcra.check(tat, now)
    }

    pub fn gcra(&self) -> Gcra {
        self.gcra
    }

    /// Drops keys that are back to a full bucket at `now` (the inserts do it too, as
    /// shards grow; this is for whoever wants it done now).
    pub fn sweep(&self, now: Duration) {
        let now = duration_nanos(now);
        for shard in self.shards.iter() {
            shard.write().sweep(now, self.shard_cap);
        }
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().tats.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A compiled `rate_limit` policy.
#[derive(Debug, Clone)]
pub struct RateLimit {
    by: LimitBy,
    limiter: Arc<KeyedLimiter>,
    /// `route:index`: names this policy's counts in a shared store ([`crate::shared`]).
    name: Arc<str>,
}

impl RateLimit {
    /// Compiles `spec` (already validated), reusing the state of the same policy of the same
    /// route from `registry` when its spec is unchanged.
    pub fn compile(
        spec: &RateLimitSpec,
        route: &str,
        index: usize,
        registry: &LimiterRegistry,
    ) -> Result<Self, Vec<Problem>> {
        let by = match spec.key.as_deref() {
            None | Some("consumer") => LimitBy::Consumer,
            Some("ip") => LimitBy::Ip,
            Some("route") => LimitBy::Route,
            Some(other) => match other
                .strip_prefix("header:")
                .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok())
            {
                Some(name) => LimitBy::Header(name),
                None => {
                    return Err(vec![Problem::new(
                        "key",
                        "must be consumer, ip, route or header:NAME",
                    )])
                }
            },
        };
        Ok(Self {
            by,
            limiter: registry.route_limiter(route, index, spec),
            name: format!("{route}:{index}").into(),
        })
    }

    /// Counts the request under its key; 429 with Retry-After when over the limit.
    pub fn on_request(
        &self,
        view: &RequestView<'_>,
        state: &mut RequestState,
        now: u64,
    ) -> Verdict {
        let mut ip_key = [0u8; 17];
        let key: &[u8] = match &self.by {
            LimitBy::Route => b"",
            LimitBy::Ip => ip_bytes(view.client_ip, &mut ip_key),
            LimitBy::Consumer => match state.consumer_id() {
                Some(id) => id.as_bytes(),
                None => ip_bytes(view.client_ip, &mut ip_key),
            },
            LimitBy::Header(name) => match view.headers.get(name) {
                Some(v) => v.as_bytes(),
                None => ip_bytes(view.client_ip, &mut ip_key),
            },
        };
        match self.limiter.check(key, now) {
            Ok(status) => {
                state.record_limit(status);
                Verdict::Continue
            }
            Err(e) => Verdict::Respond(Rejection::too_many_requests(
                "rate_limit",
                e.status,
                e.retry_after_secs,
            )),
        }
    }

    pub fn by(&self) -> &LimitBy {
        &self.by
    }

    /// `route:index`, the policy's name in shared keys.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn limiter(&self) -> &Arc<KeyedLimiter> {
        &self.limiter
    }

    /// Whether the key is the consumer, so the limit must run after authentication.
    pub fn needs_consumer(&self) -> bool {
        self.by == LimitBy::Consumer
    }
}

pub(crate) fn ip_bytes(ip: IpAddr, buf: &mut [u8; 17]) -> &[u8] {
    buf[0] = IP_TAG;
    let octets = match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    };
    buf[1..].copy_from_slice(&octets);
    &buf[..]
}

/// A plan's rate limit bound to one consumer's state.
#[derive(Debug, Clone)]
pub struct PlanRate {
    gcra: Gcra,
    tat: Arc<AtomicU64>,
}

impl PlanRate {
    pub fn gcra(&self) -> Gcra {
        self.gcra
    }

    /// Counts one request of the consumer at `now` (unix nanoseconds).
    pub fn check(&self, now: u64) -> Result<crate::RateLimitStatus, Rejection> {
        self.gcra
            .check(&self.tat, now)
            .map_err(|e| Rejection::too_many_requests("rate_limit", e.status, e.retry_after_secs))
    }
}

type RouteSlot = (RateLimitSpec, Weak<KeyedLimiter>);
type PlanSlot = (PlanRateSpec, Weak<AtomicU64>);

/// Where limiter state is found again across config reloads. The edge keeps one (inside
/// [`crate::Counters`]) for the life of the process. It holds weak references: state lives as
/// long as a compiled chain or directory uses it, so a reload carries it over (the old
/// snapshot is alive while the new one compiles) and a removed route's state is freed.
/// Its locks are taken only while compiling.
#[derive(Debug, Default)]
pub struct LimiterRegistry {
    routes: Mutex<HashMap<(String, usize), RouteSlot>>,
    plans: Mutex<HashMap<String, PlanSlot>>,
}

impl LimiterRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// The state of policy `index` of `route`: the existing one if `spec` is unchanged.
    pub fn route_limiter(
        &self,
        route: &str,
        index: usize,
        spec: &RateLimitSpec,
    ) -> Arc<KeyedLimiter> {
        let mut routes = self.routes.lock();
        let key = (route.to_owned(), index);
        if let Some(live) = routes
            .get(&key)
            .filter(|(s, _)| s == spec)
            .and_then(|(_, w)| w.upgrade())
        {
            return live;
        }
        routes.retain(|_, (_, w)| w.strong_count() > 0);
        let limiter = Arc::new(KeyedLimiter::new(Gcra::new(
            spec.requests,
            spec.per,
            spec.burst,
        )));
        routes.insert(key, (spec.clone(), Arc::downgrade(&limiter)));
        limiter
    }

    /// `consumer`'s plan rate limit: the existing state if `spec` is unchanged.
    pub fn plan_rate(&self, consumer: &str, spec: &PlanRateSpec) -> PlanRate {
        let gcra = Gcra::new(spec.requests, spec.per, spec.burst);
        let mut plans = self.plans.lock();
        if let Some(tat) = plans
            .get(consumer)
            .filter(|(s, _)| s == spec)
            .and_then(|(_, w)| w.upgrade())
        {
            return PlanRate { gcra, tat };
        }
        plans.retain(|_, (_, w)| w.strong_count() > 0);
        let tat = Arc::new(AtomicU64::new(0));
        plans.insert(consumer.to_owned(), (spec.clone(), Arc::downgrade(&tat)));
        PlanRate { gcra, tat }
    }
}

#[cfg(test)]
#[path = "rate_limit/tests.rs"]
mod tests;
