use std::time::Duration;

use http::{HeaderMap, Method};

use super::*;
use crate::counters::Counters;
use crate::spec::{
    KeyAuthSpec, Per, PlanRateSpec, PlanSpec, PolicySpec, QuotaPeriod, QuotaSpec, RateLimitSpec,
};
use crate::testing::{consumer, headers, key, view};

/// 2026-12-07 12:00:00 UTC.
const NOW: Duration = Duration::from_secs(1_796_644_800);

fn limit(by: &str) -> PolicySpec {
    PolicySpec::RateLimit(RateLimitSpec {
        requests: 10,
        per: Per::Second,
        burst: Some(5),
        key: Some(by.into()),
    })
}

fn directory(counters: &Counters) -> Directory {
    let plans = [PlanSpec {
        id: "gold".into(),
        rate_limit: Some(PlanRateSpec {
            requests: 3,
            per: Per::Minute,
            burst: None,
        }),
        quota: Some(QuotaSpec {
            requests: 25,
            per: QuotaPeriod::Day,
        }),
    }];
    Directory::compile(
        &[consumer("alice", Some("gold"), &[])],
        &plans,
        &[key("k1", "alice", "tg_alice")],
        &[],
        &[],
        counters,
    )
    .expect("valid directory")
}

fn keys(p: &Pending) -> Vec<&str> {
    p.counts.iter().map(|c| c.key.as_str()).collect()
}

#[test]
fn key_auth_rate_limit_and_plan_make_one_round_trip() {
    let counters = Counters::new();
    let dir = directory(&counters);
    let chain = Chain::compile(
        "api",
        &[
            PolicySpec::KeyAuth(KeyAuthSpec::default()),
            limit("consumer"),
        ],
        &counters,
    )
    .expect("chain");
    let h = headers(&[("x-api-key", "tg_alice")]);
    let v = view(&Method::GET, "/", &h, "10.0.0.1");
    let mut state = RequestState::default();
    let Step::Count(p) = chain.on_request_shared(&v, &mut state, &dir, NOW, 0) else {
        panic!("expected counts");
    };
    assert_eq!(
        keys(&p),
        [
            "tg:rl:{c:alice}:api:1",
            "tg:rl:{c:alice}:plan",
            "tg:q:{c:alice}:day:2026-12-07"
        ]
    );
    assert_eq!(
        p.counts[2].limit,
        Limit::Quota {
            limit: 25,
            period_end: 1_796_688_000
        }
    );
    assert_eq!(p.counts[2].policy, "quota");
    assert_eq!(
        chain.on_request_shared(&v, &mut state, &dir, NOW, p.resume()),
        Step::Done(Verdict::Continue)
    );
}

#[test]
fn limits_without_consumer_are_counted_before_credentials_are_checked() {
    let counters = Counters::new();
    let dir = directory(&counters);
    let chain = Chain::compile(
        "api",
        &[
            PolicySpec::KeyAuth(KeyAuthSpec::default()),
            limit("ip"),
            limit("route"),
        ],
        &counters,
    )
    .expect("chain");
    let h = headers(&[("x-api-key", "wrong")]);
    let v = view(&Method::GET, "/", &h, "10.0.0.1");
    let mut state = RequestState::default();
    let Step::Count(p) = chain.on_request_shared(&v, &mut state, &dir, NOW, 0) else {
        panic!("expected counts");
    };
    assert_eq!(keys(&p), ["tg:rl:{ip:10.0.0.1}:api:1", "tg:rl:{r:api:2}"]);
    // Resumed: the wrong key is refused, and nothing more is counted.
    match chain.on_request_shared(&v, &mut state, &dir, NOW, p.resume()) {
        Step::Done(Verdict::Respond(r)) => assert_eq!(r.status.as_u16(), 401),
        other => panic!("expected 401, got {other:?}"),
    }
}

#[test]
fn header_values_are_digested_and_absent_headers_fall_back_to_the_address() {
    let counters = Counters::new();
    let dir = directory(&counters);
    let chain = Chain::compile("api", &[limit("header:x-tenant")], &counters).expect("chain");
    let long = "t".repeat(10_000);
    let h = headers(&[("x-tenant", long.as_str())]);
    let v = view(&Method::GET, "/", &h, "::ffff:10.0.0.9");
    let Step::Count(p) = chain.on_request_shared(&v, &mut RequestState::default(), &dir, NOW, 0)
    else {
        panic!("expected counts");
    };
    assert!(
        p.counts[0].key.starts_with("tg:rl:{h:"),
        "{}",
        p.counts[0].key
    );
    assert!(p.counts[0].key.len() < 64, "{}", p.counts[0].key);
    let none = HeaderMap::new();
    let v = view(&Method::GET, "/", &none, "::ffff:10.0.0.9");
    let Step::Count(p) = chain.on_request_shared(&v, &mut RequestState::default(), &dir, NOW, 0)
    else {
        panic!("expected counts");
    };
    assert_eq!(keys(&p), ["tg:rl:{ip:10.0.0.9}:api:0"]);
}

#[test]
fn a_chain_without_limits_counts_nothing() {
    let counters = Counters::new();
    let dir = Directory::empty();
    let chain = Chain::compile("api", &[], &counters).expect("chain");
    let h = HeaderMap::new();
    let v = view(&Method::GET, "/", &h, "10.0.0.1");
    assert_eq!(
        chain.on_request_shared(&v, &mut RequestState::default(), &dir, NOW, 0),
        Step::Done(Verdict::Continue)
    );
}
