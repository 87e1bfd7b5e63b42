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
