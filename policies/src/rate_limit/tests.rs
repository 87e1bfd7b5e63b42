use http::Method;

use super::*;
use crate::spec::Per;
use crate::testing::{headers, outcome, view};

const T0: u64 = 1_800_000_000_000_000_000;

fn spec(requests: u32, burst: Option<u32>, key: &str) -> RateLimitSpec {
    RateLimitSpec {
        requests,
        per: Per::Second,
        burst,
        key: Some(key.into()),
    }
}

#[test]
fn keys_by_header_value_and_falls_back_to_ip() {
    let registry = LimiterRegistry::new();
    let rl =
        RateLimit::compile(&spec(1, None, "header:x-tenant"), "r", 0, &registry).expect("valid");
    let a = headers(&[("x-tenant", "a")]);
    let b = headers(&[("x-tenant", "b")]);
    let none = headers(&[]);
    let run = |h: &http::HeaderMap, peer: &str| {
        let mut state = RequestState::default();
        outcome(&rl.on_request(&view(&Method::GET, "/", h, peer), &mut state, T0)).0
    };
    assert_eq!(run(&a, "10.0.0.1"), 0);
    assert_eq!(run(&a, "10.0.0.2"), 429);
    assert_eq!(run(&b, "10.0.0.1"), 0);
    assert_eq!(run(&none, "10.0.0.1"), 0);
    assert_eq!(run(&none, "10.0.0.1"), 429);
    assert_eq!(run(&none, "10.0.0.3"), 0);
}

#[test]
fn route_key_shares_one_bucket() {
    let registry = LimiterRegistry::new();
    let rl = RateLimit::compile(&spec(2, None, "route"), "r", 0, &registry).expect("valid");
    let h = headers(&[]);
    let allowed = (0..5)
        .filter(|i| {
            let peer = format!("10.0.0.{i}");
            rl.on_request(
                &view(&Method::GET, "/", &h, &peer),
                &mut RequestState::default(),
                T0,
            )
            .is_continue()
        })
        .count();
    assert_eq!(allowed, 2);
}

#[test]
fn state_carries_over_recompile_only_when_spec_unchanged() {
    let registry = LimiterRegistry::new();
    let s = spec(1, None, "ip");
    let first = RateLimit::compile(&s, "r", 0, &registry).expect("valid");
    assert!(first.limiter().check(b"k", T0).is_ok());
    let same = RateLimit::compile(&s, "r", 0, &registry).expect("valid");
    assert!(Arc::ptr_eq(first.limiter(), same.limiter()));
    assert!(same.limiter().check(b"k", T0).is_err());
    let changed = RateLimit::compile(&spec(5, None, "ip"), "r", 0, &registry).expect("valid");
    assert!(!Arc::ptr_eq(first.limiter(), changed.limiter()));
    let other_index = RateLimit::compile(&s, "r", 1, &registry).expect("valid");
    assert!(!Arc::ptr_eq(first.limiter(), other_index.limiter()));
    drop((first, same));
    let fresh = RateLimit::compile(&s, "r", 0, &registry).expect("valid");
    assert!(
        fresh.limiter().check(b"k", T0).is_ok(),
        "state of a dropped chain is not kept"
    );
}

#[test]
fn concurrent_keyed_requests_never_exceed_limit() {
    let limiter = KeyedLimiter::new(Gcra::new(10, Per::Minute, Some(37)));
    let allowed: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    (0..200)
                        .filter(|_| limiter.check(b"shared", T0).is_ok())
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).sum()
    });
    assert_eq!(allowed, 37);
}

#[test]
fn sweep_drops_only_idle_keys() {
    let limiter = KeyedLimiter::new(Gcra::new(1, Per::Second, None));
    assert!(limiter.check(b"a", T0).is_ok());
    assert!(limiter.check(b"b", T0 + 500_000_000).is_ok());
    limiter.sweep(std::time::Duration::from_nanos(T0 + 1_000_000_000));
    assert_eq!(limiter.len(), 1);
    assert!(limiter.check(b"b", T0 + 1_000_000_000).is_err());
}

#[test]
fn distinct_keys_never_grow_a_limiter_past_its_cap() {
    let limiter = KeyedLimiter::new(Gcra::new(3, Per::Minute, None));
    // Every key stays within its window: nothing expires, only the cap bounds the table.
    for i in 0..MAX_KEYS + 20_000 {
        let key = format!("tenant-{i}");
        assert!(limiter.check(key.as_bytes(), T0).is_ok(), "new key {i}");
    }
    assert!(
        limiter.len() <= MAX_KEYS,
        "{} keys held, at most {MAX_KEYS}",
        limiter.len()
    );
}

#[test]
fn at_the_cap_keys_nearest_a_full_bucket_go_first_and_held_back_keys_stay() {
    // Four keys per shard.
    let limiter = KeyedLimiter::with_max_keys(Gcra::new(3, Per::Minute, None), 4 * 32);
    for _ in 0..3 {
        assert!(limiter.check(b"hammering", T0).is_ok());
    }
    assert!(limiter.check(b"hammering", T0).is_err());
    // A client rotating values: each new value has one request counted.
    for i in 0..10_000 {
        let _ = limiter.check(format!("rotated-{i}").as_bytes(), T0);
    }
    assert!(limiter.len() <= 4 * 32, "{} keys", limiter.len());
    assert!(
        limiter.check(b"hammering", T0).is_err(),
        "the limited key kept its state"
    );
}

#[test]
fn expired_keys_are_swept_as_new_keys_come_without_a_sweep_call() {
    let limiter = KeyedLimiter::new(Gcra::new(1, Per::Second, None));
    let second = 1_000_000_000;
    for round in 0..5u64 {
        for i in 0..10_000 {
            let key = format!("{round}-{i}");
            assert!(limiter
                .check(key.as_bytes(), T0 + round * 2 * second)
                .is_ok());
        }
    }
    // 10,000 live keys; a shard is swept when it has doubled, so at most about twice that.
    assert!(
        limiter.len() <= 2 * 10_000 + 32 * 64,
        "{} keys held for 10,000 live",
        limiter.len()
    );
}

#[test]
fn ip_keys_are_one_bucket_per_address_in_either_form() {
    let registry = LimiterRegistry::new();
    let rl = RateLimit::compile(&spec(1, None, "ip"), "r", 0, &registry).expect("valid");
    let none = headers(&[]);
    let run = |peer: &str| {
        let mut state = RequestState::default();
        outcome(&rl.on_request(&view(&Method::GET, "/", &none, peer), &mut state, T0)).0
    };
    assert_eq!(run("10.0.0.1"), 0);
    assert_eq!(run("::ffff:10.0.0.1"), 429);
    assert_eq!(run("10.0.0.2"), 0);
}
