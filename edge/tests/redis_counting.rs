//! The counting script and the request-path glue against a real `redis-server`: GCRA exact
//! at its boundary, burst and Retry-After, quotas exact under concurrency and expiring at
//! the period's end, sequential semantics, and node-local counting while Redis is away.

use std::sync::Arc;

use edge::cluster::counting::SharedCounting;
use edge::cluster::redis::RedisStore;
use edge::cluster::LiveNodes;
use policies::shared::{plan_rate_key, quota_key, Count, Limit, Pending};
use policies::{Gcra, Per, RequestState};
use tests::redis::{RedisServer, Reply};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn rate(key: &str, requests: u32, per: Per, burst: Option<u32>) -> Count {
    Count {
        key: key.into(),
        limit: Limit::Rate(Gcra::new(requests, per, burst)),
        policy: "rate_limit",
    }
}

fn quota(key: &str, limit: u64, period_end: u64) -> Count {
    Count {
        key: key.into(),
        limit: Limit::Quota { limit, period_end },
        policy: "quota",
    }
}

/// Redis's clock, in microseconds.
fn redis_now_us(redis: &RedisServer) -> i64 {
    match redis.cmd(&["TIME"]).expect("TIME") {
        Reply::Array(parts) => {
            let secs = parts[0].as_int().expect("secs");
            let micros = parts[1].as_int().expect("micros");
            secs * 1_000_000 + micros
        }
        other => panic!("TIME answered {other:?}"),
    }
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

#[test]
fn gcra_allows_the_burst_then_refuses_with_retry_after() {
    let redis = RedisServer::start().expect("redis");
    let rt = runtime();
    let store = rt
        .block_on(async { RedisStore::connect_lazy(&redis.url()) })
        .expect("store");
    // 60 per hour, burst 3: one per minute after the burst.
    let c = [rate("tg:rl:{c:a}:r:0", 60, Per::Hour, Some(3))];
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let answers = rt.block_on(store.count(&c)).expect("count");
        assert!(answers[0].passed);
        remaining.push(answers[0].remaining);
    }
    assert_eq!(remaining, [2, 1, 0]);
    let refused = rt.block_on(store.count(&c)).expect("count")[0];
    assert!(!refused.passed);
    // The next token comes one interval (60 s) after the burst began.
    assert!(
        (59_000_000..=60_000_000).contains(&refused.retry_us),
        "{refused:?}"
    );
    // The bucket is full again three intervals on.
    assert!(
        (179_000_000..=180_000_000).contains(&refused.reset_us_or_used),
        "{refused:?}"
    );
    let ttl = redis.cmd(&["PTTL", "tg:rl:{c:a}:r:0"]).expect("pttl");
    let ttl = ttl.as_int().expect("ttl");
    assert!((179_000..=180_000).contains(&ttl), "PTTL {ttl}");
}

#[test]
fn gcra_is_exact_at_its_boundary() {
    let redis = RedisServer::start().expect("redis");
    let rt = runtime();
    let store = rt
        .block_on(async { RedisStore::connect_lazy(&redis.url()) })
        .expect("store");
    // One per hour, burst 2: a request passes while TAT <= now + interval.
    let interval: i64 = 3_600_000_000;
    let key = "tg:rl:{ip:10.0.0.1}:r:0";
    let c = [rate(key, 1, Per::Hour, Some(2))];
    // TAT at the boundary as of a moment before the script runs: passes.
    let t = redis_now_us(&redis);
    redis
        .cmd(&["SET", key, &(t + interval).to_string()])
        .expect("set");
    let a = rt.block_on(store.count(&c)).expect("count")[0];
    assert!(a.passed, "{a:?}");
    assert_eq!(a.remaining, 0);
    // The TAT moved on by exactly one interval.
    assert_eq!(redis.get_int(key).expect("get"), t + 2 * interval);
    // Now over by (interval + the time that passed): refused, and nothing written.
    let b = rt.block_on(store.count(&c)).expect("count")[0];
    assert!(!b.passed);
    assert!(b.retry_us > 0 && b.retry_us <= interval as u64, "{b:?}");
    assert_eq!(redis.get_int(key).expect("get"), t + 2 * interval);
}

#[test]
fn quota_is_exact_under_concurrency_and_expires_at_the_period_end() {
    let redis = RedisServer::start().expect("redis");
    let rt = runtime();
    let store = rt
        .block_on(async { RedisStore::connect_lazy(&redis.url()) })
        .expect("store");
    let period_end = unix_secs() + 3_600;
    let key = quota_key("acme", "day:2026-12-07");
    let passed = rt.block_on(async {
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let store = store.clone();
                let c = [quota(&key, 25, period_end)];
                tokio::spawn(async move { store.count(&c).await.expect("count")[0].passed })
            })
            .collect();
        let mut passed = 0;
        for t in tasks {
            passed += usize::from(t.await.expect("task"));
        }
        passed
    });
    assert_eq!(passed, 25);
    assert_eq!(redis.get_int(&key).expect("get"), 25);
    let ttl = redis
        .cmd(&["TTL", &key])
        .expect("ttl")
        .as_int()
        .expect("int");
    assert!((3_595..=3_600).contains(&ttl), "TTL {ttl}");
    let refused = rt
        .block_on(store.count(&[quota(&key, 25, period_end)]))
        .expect("count")[0];
    assert!(!refused.passed);
    assert_eq!(refused.reset_us_or_used, 25);
}

#[test]
fn a_quota_refusal_still_used_the_rate_token_and_a_rate_refusal_uses_no_quota() {
    let redis = RedisServer::start().expect("redis");
    let rt = runtime();
    let store = rt
        .block_on(async { RedisStore::connect_lazy(&redis.url()) })
        .expect("store");
    let period_end = unix_secs() + 3_600;
    let (rate_key, quota_key) = (plan_rate_key("bob"), quota_key("bob", "day:2026-12-07"));
    redis.cmd(&["SET", &quota_key, "5"]).expect("set");
    let c = [
        rate(&rate_key, 10, Per::Hour, Some(2)),
        quota(&quota_key, 5, period_end),
    ];
    let answers = rt.block_on(store.count(&c)).expect("count");
    assert_eq!(answers.len(), 2);
    assert!(answers[0].passed && !answers[1].passed);
    assert!(
        redis.get_int(&rate_key).expect("get") > 0,
        "the rate token was used"
    );
    // Spend the last rate token, then a rate refusal stops before the quota.
    redis.cmd(&["SET", &quota_key, "0"]).expect("set");
    assert!(rt.block_on(store.count(&c)).expect("count")[1].passed);
    let answers = rt.block_on(store.count(&c)).expect("count");
    assert_eq!(answers.len(), 1);
    assert!(!answers[0].passed);
    assert_eq!(redis.get_int(&quota_key).expect("get"), 1);
}

#[test]
fn add_increments_and_sets_the_expiry() {
    let redis = RedisServer::start().expect("redis");
    let rt = runtime();
    let store = rt
        .block_on(async { RedisStore::connect_lazy(&redis.url()) })
        .expect("store");
    let end = unix_secs() + 100;
    rt.block_on(store.add("tg:q:{c:x}:day:2026-12-07", 7, end))
        .expect("add");
    rt.block_on(store.add("tg:q:{c:x}:day:2026-12-07", 3, end))
        .expect("add");
    assert_eq!(redis.get_int("tg:q:{c:x}:day:2026-12-07").expect("get"), 10);
    let ttl = redis
        .cmd(&["TTL", "tg:q:{c:x}:day:2026-12-07"])
        .expect("ttl");
    assert!((95..=100).contains(&ttl.as_int().expect("int")), "{ttl:?}");
}

#[test]
fn counts_locally_while_redis_is_away_and_adds_the_quota_when_back() {
    let mut redis = RedisServer::start().expect("redis");
    let url = redis.url();
    redis.kill().expect("kill");
    let rt = runtime();
    let nodes = Arc::new(LiveNodes::new());
    nodes.set(2);
    let registry = prometheus::Registry::new();
    let counting = rt
        .block_on(async { SharedCounting::new(&url, nodes.clone(), &registry) })
        .expect("counting");
    assert!(!rt.block_on(counting.check()));
    assert!(!counting.health().up);
    assert!(counting.health().last_error.is_some());
    let period_end = unix_secs() + 3_600;
    let key = quota_key("carol", "day:2026-12-07");
    // A quota of 10 over two live nodes: this node allows 5 while Redis is away.
    let pending = Pending::of(vec![quota(&key, 10, period_end)]);
    let passed = (0..8)
        .filter(|_| {
            rt.block_on(counting.count(&pending, &mut RequestState::default()))
                .is_none()
        })
        .count();
    assert_eq!(passed, 5);
    assert_eq!(rt.block_on(counting.quota_used(&key)), 5);
    // A rate limit of 4 at once over two nodes: 2 here.
    let pending = Pending::of(vec![rate("tg:rl:{c:carol}:plan", 4, Per::Hour, None)]);
    let passed = (0..4)
        .filter(|_| {
            rt.block_on(counting.count(&pending, &mut RequestState::default()))
                .is_none()
        })
        .count();
    assert_eq!(passed, 2);
    // Back: the 5 counted meanwhile are added, and counting is shared again.
    redis.restart().expect("restart");
    assert!(rt.block_on(counting.check()));
    assert_eq!(redis.get_int(&key).expect("get"), 5);
    assert_eq!(rt.block_on(counting.quota_used(&key)), 5);
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .expect("encode");
    assert!(text.contains("tollgate_redis_up 1"), "{text}");
}

#[test]
fn a_known_refusal_is_answered_without_a_round_trip() {
    let mut redis = RedisServer::start().expect("redis");
    let rt = runtime();
    let registry = prometheus::Registry::new();
    let counting = rt
        .block_on(async {
            SharedCounting::new(&redis.url(), Arc::new(LiveNodes::new()), &registry)
        })
        .expect("counting");
    assert!(rt.block_on(counting.check()));
    let pending = Pending::of(vec![rate("tg:rl:{c:dan}:plan", 1, Per::Hour, None)]);
    assert!(rt
        .block_on(counting.count(&pending, &mut RequestState::default()))
        .is_none());
    let first = rt
        .block_on(counting.count(&pending, &mut RequestState::default()))
        .expect("refused");
    assert_eq!(first.status.as_u16(), 429);
    // Redis is gone, and still known: the refusal needs no round trip (Redis would not
    // answer, and the local share of 1 would have let it through).
    redis.kill().expect("kill");
    let again = rt
        .block_on(counting.count(&pending, &mut RequestState::default()))
        .expect("refused");
    assert_eq!(again.status.as_u16(), 429);
    assert!(
        counting.health().up,
        "no round trip was made to notice Redis is gone"
    );
    let retry: u64 = again
        .header("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("retry-after");
    assert!((3_599..=3_600).contains(&retry), "retry-after {retry}");
}

#[test]
fn a_key_of_another_type_counts_that_request_locally_and_keeps_redis_up() {
    let redis = RedisServer::start().expect("redis");
    let rt = runtime();
    let registry = prometheus::Registry::new();
    let counting = rt
        .block_on(async {
            SharedCounting::new(&redis.url(), Arc::new(LiveNodes::new()), &registry)
        })
        .expect("counting");
    assert!(rt.block_on(counting.check()));
    // Someone else's list where a count should be: the script fails on it.
    redis
        .cmd(&["RPUSH", "tg:rl:{c:eve}:plan", "x"])
        .expect("rpush");
    let pending = Pending::of(vec![rate("tg:rl:{c:eve}:plan", 2, Per::Hour, None)]);
    let passed = (0..3)
        .filter(|_| {
            rt.block_on(counting.count(&pending, &mut RequestState::default()))
                .is_none()
        })
        .count();
    // Counted locally (a share of 2 on one node): the limit still holds.
    assert_eq!(passed, 2);
    let health = counting.health();
    assert!(health.up, "{health:?}");
    assert!(
        health.last_error.is_some(),
        "the script's error is shown: {health:?}"
    );
}
