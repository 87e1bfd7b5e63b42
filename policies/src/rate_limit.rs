//! `rate_limit`: an exact GCRA limit keyed by consumer, client address, route or a header
//! value. State lives in a sharded map of atomics that survives config reloads through the
//! [`LimiterRegistry`].

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
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
/// A shard is swept of idle keys when its size reaches a power of two at least this large.
const SWEEP_FROM: usize = 4096;
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

/// Keys (raw bytes) to theoretical arrival times.
type Shard = RwLock<HashMap<Box<[u8]>, AtomicU64>>;

/// A GCRA limiter with one atomic per key, in shards of `RwLock<HashMap>`. The lock is held
/// only to find or insert the key's atomic, never across an await; known keys take a shared
/// read lock.
#[derive(Debug)]
pub struct KeyedLimiter {
    gcra: Gcra,
    hasher: RandomState,
    shards: Box<[Shard]>,
}

impl KeyedLimiter {
    pub fn new(gcra: Gcra) -> Self {
        Self {
            gcra,
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
        }
    }

    /// Counts one request for `key` at `now` (unix nanoseconds). Allocates only the first
    /// time a key is seen.
    pub fn check(
        &self,
        key: &[u8],
        now: u64,
    ) -> Result<crate::RateLimitStatus, crate::gcra::Exceeded> {
        let shard = &self.shards[self.hasher.hash_one(key) as usize % SHARDS];
        if let Some(tat) = shard.read().get(key) {
            return self.gcra.check(tat, now);
        }
        let mut map = shard.write();
        if map.len() >= SWEEP_FROM && map.len().is_power_of_two() {
            // A key whose arrival time has passed is the same as a key never seen.
            map.retain(|_, tat| tat.load(Ordering::Acquire) > now);
        }
        let tat = map.entry(key.into()).or_default();
        self.gcra.check(tat, now)
    }

    /// Drops keys that are back to a full bucket at `now`; the edge may call it now and then.
    pub fn sweep(&self, now: Duration) {
        let now = duration_nanos(now);
        for shard in self.shards.iter() {
            shard
                .write()
                .retain(|_, tat| tat.load(Ordering::Acquire) > now);
        }
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
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

    pub fn limiter(&self) -> &Arc<KeyedLimiter> {
        &self.limiter
    }
}

fn ip_bytes(ip: IpAddr, buf: &mut [u8; 17]) -> &[u8] {
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
