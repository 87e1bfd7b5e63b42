//! Shared counting on the request path (`--redis`): counts what the chain hands over
//! ([`policies::shared::Pending`]) in Redis in one round trip, refuses without a round trip
//! what Redis already refused until a known time, and keeps traffic flowing on node-local
//! limits while Redis is away (each node enforces the limit divided by [`LiveNodes`]).
//! Quota counts made meanwhile are kept and added to Redis once it answers again: nothing
//! counted is lost, a graceful stop included: what is still to add is kept in the data
//! directory ([`SharedCounting::keep_pending`]) and added by the next run. A background
//! task ([`SharedCounting::run`]) watches Redis.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use parking_lot::RwLock;
use policies::shared::{Count, Limit, Pending};
use policies::{Clock, RateLimitStatus, Rejection, RequestState, SystemClock};
use prometheus::{IntGauge, Registry};
use redis::RedisError;
use serde::{Deserialize, Serialize};

use super::redis::{redacted, Answer, RedisStore};
use super::LiveNodes;

/// How often the background task looks at Redis (and adds counts made while it was away).
pub const WATCH_INTERVAL: Duration = Duration::from_millis(250);
/// Known refusals kept at most (per shard of 16): past it, expired ones are dropped, then
/// all (they are only a shortcut: Redis refuses the same requests again).
const BLOCKED_CAP: usize = 4096;
/// Node-local rate-limit keys kept at most while Redis is away (the same way).
const LOCAL_RATE_CAP: usize = 1 << 16;

const MICROS: u64 = 1_000_000;

/// How Redis is doing, for `GET /api/v1/status` and the console.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RedisHealth {
    /// The URL without its password.
    pub url: String,
    pub up: bool,
    pub last_error: Option<String>,
}

/// The shared counters of this node: Redis, its health, and the node-local fallback.
pub struct SharedCounting {
    store: RedisStore,
    url: String,
    up: AtomicBool,
    last_error: ArcSwapOption<String>,
    nodes: Arc<LiveNodes>,
    blocked: Blocked,
    local: LocalCounts,
    up_gauge: IntGauge,
    /// Where a graceful stop keeps the quota counts not yet added to Redis.
    kept: OnceLock<PathBuf>,
    /// Whether that file may hold counts (removed once they are all added).
    kept_present: AtomicBool,
}

/// The file in the data directory that holds quota counts not yet added to Redis.
pub const PENDING_FILE: &str = "redis-pending.json";

/// One quota count kept across a restart.
#[derive(Debug, Serialize, Deserialize)]
struct KeptCount {
    key: String,
    count: u64,
    /// Unix seconds: the period's end.
    period_end: u64,
}

impl SharedCounting {
    /// Counting in the Redis at `url` (connected lazily; must be called inside the tokio
    /// runtime that will drive the connection). Registers `tollgate_redis_up` on
    /// `registry`. `Err`: the URL is not a Redis URL, or the gauge is already registered.
    pub fn new(
        url: &str,
        nodes: Arc<LiveNodes>,
        registry: &Registry,
    ) -> Result<Arc<Self>, CountingError> {
        let store = RedisStore::connect_lazy(url).map_err(|e| CountingError::Url {
            url: redacted(url),
            reason: e.to_string(),
        })?;
        let up_gauge = IntGauge::new(
            "tollgate_redis_up",
            "1 while the Redis that shares rate limits and quotas answers, else 0",
        )
        .map_err(CountingError::Metric)?;
        registry
            .register(Box::new(up_gauge.clone()))
            .map_err(CountingError::Metric)?;
        Ok(Arc::new(Self {
            store,
            url: redacted(url),
            up: AtomicBool::new(false),
            last_error: ArcSwapOption::empty(),
            nodes,
            blocked: Blocked::new(),
            local: LocalCounts::default(),
            up_gauge,
            kept: OnceLock::new(),
            kept_present: AtomicBool::new(false),
        }))
    }

    /// Keeps pending counts in `file` across stops: takes the counts a previous run left
    /// there (they are added to Redis with those made from now on; the file goes once they
    /// all are) and remembers the file for [`SharedCounting::keep_pending`]. Returns how
    /// many counts it took. `Err`: the file is there but cannot be read or decoded; it is
    /// then renamed to `<file>.unreadable` (when it can be), so that the next stop does not
    /// write over what it held.
    pub fn restore_pending(&self, file: &Path) -> std::io::Result<u64> {
        let _ = self.kept.set(file.to_owned());
        let read = match std::fs::read(file) {
            Ok(bytes) => serde_json::from_slice::<Vec<KeptCount>>(&bytes)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => Err(e),
        };
        let kept = match read {
            Ok(kept) => kept,
            Err(e) => {
                let mut aside = file.as_os_str().to_owned();
                aside.push(".unreadable");
                let _ = std::fs::rename(file, aside);
                return Err(e);
            }
        };
        self.kept_present.store(true, Ordering::Release);
        let now = SystemClock.now().as_secs();
        let mut taken = 0;
        for k in kept.into_iter().filter(|k| k.period_end > now) {
            let quota = self.local.quota(&k.key, k.period_end);
            quota.count.fetch_add(k.count, Ordering::AcqRel);
            taken += k.count;
        }
        Ok(taken)
    }

    /// At a graceful stop: writes the quota counts not yet added to Redis to the file named
    /// by [`SharedCounting::restore_pending`] (replacing it whole, synced), or removes the
    /// file when there are none. Returns how many counts it kept.
    pub fn keep_pending(&self) -> std::io::Result<u64> {
        let Some(file) = self.kept.get() else {
            return Ok(0);
        };
        let now = SystemClock.now().as_secs();
        let kept: Vec<KeptCount> = self
            .local
            .quotas_snapshot()
            .into_iter()
            .filter(|(_, q)| q.period_end > now)
            .filter_map(|(key, q)| {
                let count = q.count.load(Ordering::Acquire);
                (count > 0).then_some(KeptCount {
                    key,
                    count,
                    period_end: q.period_end,
                })
            })
            .collect();
        if kept.is_empty() {
            return remove_if_present(file).map(|()| 0);
        }
        let json = serde_json::to_vec(&kept).map_err(std::io::Error::other)?;
        let temporary = file.with_extension("json.tmp");
        let mut out = std::fs::File::create(&temporary)?;
        out.write_all(&json)?;
        out.sync_all()?;
        std::fs::rename(&temporary, file)?;
        if let Some(dir) = file.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(kept.iter().map(|k| k.count).sum())
    }

    /// Counts `pending` for one request: known refusals first (no round trip), then Redis
    /// when it is up, else node-local limits. Records each passed count's figures in
    /// `state`; `Some`: the 429 to answer.
    pub async fn count(&self, pending: &Pending, state: &mut RequestState) -> Option<Rejection> {
        let now = SystemClock.now();
        let now_us = micros(now);
        for c in &pending.counts {
            if let Some(until) = self.blocked.until(&c.key, now_us) {
                return Some(known_refusal(c, now, until - now_us));
            }
        }
        if self.up.load(Ordering::Acquire) {
            match self.store.count(&pending.counts).await {
                Ok(answers) => return self.apply(&pending.counts, &answers, state, now),
                Err(e) if is_unreachable(&e) => self.went_down(&e),
                // Redis answered, with an error for this request (a key of another type,
                // out of memory): it is up, but this request counts locally.
                Err(e) => self.last_error.store(Some(Arc::new(e.to_string()))),
            }
        }
        self.count_locally(&pending.counts, state, now)
    }

    fn apply(
        &self,
        counts: &[Count],
        answers: &[Answer],
        state: &mut RequestState,
        now: Duration,
    ) -> Option<Rejection> {
        let secs = now.as_secs();
        for (c, a) in counts.iter().zip(answers) {
            let (reset_secs, retry_us) = match c.limit {
                Limit::Rate(_) => (a.reset_us_or_used.div_ceil(MICROS), a.retry_us),
                Limit::Quota { period_end, .. } => {
                    let left = period_end.saturating_sub(secs);
                    (left, left * MICROS)
                }
            };
            let status = RateLimitStatus {
                limit: c.capacity(),
                remaining: a.remaining,
                reset_secs,
            };
            if a.passed {
                state.record_limit(status);
            } else {
                self.blocked
                    .block(&c.key, micros(now) + retry_us, micros(now));
                return Some(c.refusal(status, retry_us.div_ceil(MICROS)));
            }
        }
        None
    }

    /// Node-local limits while Redis is away: each of [`LiveNodes`] nodes allows its share.
    fn count_locally(
        &self,
        counts: &[Count],
        state: &mut RequestState,
        now: Duration,
    ) -> Option<Rejection> {
        let nodes = self.nodes.get();
        for c in counts {
            match c.limit {
                Limit::Rate(gcra) => {
                    let tat = self.local.rate(&c.key, now);
                    match gcra
                        .divided(nodes)
                        .check(&tat, policies::clock::duration_nanos(now))
                    {
                        Ok(status) => state.record_limit(status),
                        Err(e) => return Some(c.refusal(e.status, e.retry_after_secs)),
                    }
                }
                Limit::Quota { limit, period_end } => {
                    let share = (limit / nodes as u64).max(1);
                    let quota = self.local.quota(&c.key, period_end);
                    let reset_secs = period_end.saturating_sub(now.as_secs());
                    let counted =
                        quota
                            .count
                            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                                (n < share).then_some(n + 1)
                            });
                    let status = |used: u64| RateLimitStatus {
                        limit: share,
                        remaining: share.saturating_sub(used),
                        reset_secs,
                    };
                    match counted {
                        Ok(n) => state.record_limit(status(n + 1)),
                        Err(n) => return Some(c.refusal(status(n), reset_secs)),
                    }
                }
            }
        }
        None
    }

    fn went_down(&self, e: &RedisError) {
        self.last_error.store(Some(Arc::new(e.to_string())));
        if self.up.swap(false, Ordering::AcqRel) {
            tracing::warn!(error = %e, url = %self.url, "redis unreachable: counting on node-local limits");
        }
        self.up_gauge.set(0);
    }

    /// Looks at Redis now: when it answers, adds the counts made while it was away and
    /// marks it up. `true`: up.
    pub async fn check(&self) -> bool {
        let result = match self.store.ping().await {
            Ok(()) => self.flush().await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                if !self.up.swap(true, Ordering::AcqRel) {
                    tracing::info!(url = %self.url, "redis up: counting cluster-wide");
                }
                self.up_gauge.set(1);
                true
            }
            Err(e) => {
                self.went_down(&e);
                false
            }
        }
    }

    /// Watches Redis for the life of the process: while it is away, retries every
    /// [`WATCH_INTERVAL`]; while up, adds what requests counted locally in between.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !self.up.load(Ordering::Acquire) {
                self.check().await;
            } else if self.local.has_pending() {
                if let Err(e) = self.flush().await {
                    self.went_down(&e);
                }
            }
        }
    }

    /// Adds the quota counts made locally to Redis (INCRBY, expiring at the period's end).
    /// A failed add is kept for the next try.
    async fn flush(&self) -> Result<(), RedisError> {
        let now = SystemClock.now().as_secs();
        for (key, quota) in self.local.quotas_snapshot() {
            let n = quota.count.swap(0, Ordering::AcqRel);
            if n == 0 || quota.period_end <= now {
                // An ended period's key is gone from Redis: nothing to add it to.
                continue;
            }
            if let Err(e) = self.store.add(&key, n, quota.period_end).await {
                quota.count.fetch_add(n, Ordering::AcqRel);
                return Err(e);
            }
        }
        self.local.forget_flushed(now);
        if self.kept_present.load(Ordering::Acquire) && !self.local.has_pending() {
            // What a previous run kept is in Redis now (a stop writes the file again if
            // anything is pending then).
            if let Some(file) = self.kept.get() {
                match remove_if_present(file) {
                    Ok(()) => self.kept_present.store(false, Ordering::Release),
                    Err(e) => {
                        tracing::warn!(file = %file.display(), error = %e, "cannot remove the kept quota counts, all added to redis");
                    }
                }
            }
        }
        Ok(())
    }

    /// The count at `key` in Redis plus what this node counted while Redis was away and has
    /// not added yet; only the latter while Redis is away.
    pub async fn quota_used(&self, key: &str) -> u64 {
        let local = self.local.pending(key);
        if !self.up.load(Ordering::Acquire) {
            return local;
        }
        match self.store.get(key).await {
            Ok(shared) => shared + local,
            Err(e) => {
                self.went_down(&e);
                local
            }
        }
    }

    pub fn health(&self) -> RedisHealth {
        RedisHealth {
            url: self.url.clone(),
            up: self.up.load(Ordering::Acquire),
            last_error: self.last_error.load().as_deref().cloned(),
        }
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }
}

/// The 429 for a count Redis refused until `wait_us` from `now`.
fn known_refusal(c: &Count, now: Duration, wait_us: u64) -> Rejection {
    let reset_secs = match c.limit {
        Limit::Rate(_) => wait_us.div_ceil(MICROS),
        Limit::Quota { period_end, .. } => period_end.saturating_sub(now.as_secs()),
    };
    let status = RateLimitStatus {
        limit: c.capacity(),
        remaining: 0,
        reset_secs,
    };
    c.refusal(status, wait_us.div_ceil(MICROS))
}

fn remove_if_present(file: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Whether `e` says Redis cannot be reached (rather than refusing one command).
fn is_unreachable(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_unrecoverable_error()
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Why shared counting could not start.
#[derive(Debug, thiserror::Error)]
pub enum CountingError {
    #[error("--redis {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("registering tollgate_redis_up: {0}")]
    Metric(prometheus::Error),
}

/// Keys Redis refused until a known time (unix microseconds), by keyed hash, sharded.
struct Blocked {
    hasher: RandomState,
    shards: Box<[RwLock<HashMap<u64, u64>>]>,
}

impl Blocked {
    fn new() -> Self {
        Self {
            hasher: RandomState::new(),
            shards: (0..16).map(|_| RwLock::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, key: &str) -> (u64, &RwLock<HashMap<u64, u64>>) {
        let hash = self.hasher.hash_one(key);
        (hash, &self.shards[(hash >> 60) as usize])
    }

    /// Until when `key` is refused, if still at `now`.
    fn until(&self, key: &str, now: u64) -> Option<u64> {
        let (hash, shard) = self.shard(key);
        shard
            .read()
            .get(&hash)
            .copied()
            .filter(|until| *until > now)
    }

    fn block(&self, key: &str, until: u64, now: u64) {
        let (hash, shard) = self.shard(key);
        let mut shard = shard.write();
        if shard.len() >= BLOCKED_CAP {
            shard.retain(|_, u| *u > now);
            if shard.len() >= BLOCKED_CAP {
                shard.clear();
            }
        }
        shard.insert(hash, until);
    }
}

/// A quota count made on this node while Redis was away.
#[derive(Debug)]
struct LocalQuota {
    /// Counted and not yet added to Redis.
    count: AtomicU64,
    /// Unix seconds: the period's end (the Redis key's expiry).
    period_end: u64,
}

/// The node-local fallback: GCRA arrival times and pending quota counts, by shared key.
#[derive(Default)]
struct LocalCounts {
    rates: RwLock<HashMap<String, Arc<AtomicU64>>>,
    quotas: RwLock<HashMap<String, Arc<LocalQuota>>>,
}

impl LocalCounts {
    fn rate(&self, key: &str, now: Duration) -> Arc<AtomicU64> {
        if let Some(tat) = self.rates.read().get(key) {
            return Arc::clone(tat);
        }
        let mut rates = self.rates.write();
        if rates.len() >= LOCAL_RATE_CAP {
            let now = policies::clock::duration_nanos(now);
            rates.retain(|_, tat| tat.load(Ordering::Acquire) > now);
            if rates.len() >= LOCAL_RATE_CAP {
                rates.clear();
            }
        }
        Arc::clone(rates.entry(key.to_owned()).or_default())
    }

    fn quota(&self, key: &str, period_end: u64) -> Arc<LocalQuota> {
        if let Some(q) = self.quotas.read().get(key) {
            return Arc::clone(q);
        }
        Arc::clone(
            self.quotas
                .write()
                .entry(key.to_owned())
                .or_insert_with(|| {
                    Arc::new(LocalQuota {
                        count: AtomicU64::new(0),
                        period_end,
                    })
                }),
        )
    }

    fn pending(&self, key: &str) -> u64 {
        self.quotas
            .read()
            .get(key)
            .map_or(0, |q| q.count.load(Ordering::Acquire))
    }

    fn has_pending(&self) -> bool {
        self.quotas
            .read()
            .values()
            .any(|q| q.count.load(Ordering::Acquire) > 0)
    }

    fn quotas_snapshot(&self) -> Vec<(String, Arc<LocalQuota>)> {
        self.quotas
            .read()
            .iter()
            .map(|(k, q)| (k.clone(), Arc::clone(q)))
            .collect()
    }

    /// Drops the added-up quotas of ended periods, and the node-local rate state (Redis
    /// counts again).
    fn forget_flushed(&self, now: u64) {
        self.quotas
            .write()
            .retain(|_, q| q.period_end > now || q.count.load(Ordering::Acquire) > 0);
        self.rates.write().clear();
    }
}
