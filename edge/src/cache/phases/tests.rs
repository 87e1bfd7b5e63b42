use std::time::Duration;

use super::*;

fn cache(json: serde_json::Value) -> Cache {
    let spec: policies::CacheSpec = serde_json::from_value(json).expect("spec");
    Cache::compile(&spec).expect("cache")
}

fn req(headers: &[(&str, &str)]) -> RequestHeader {
    let mut r = RequestHeader::build("GET", b"/p", None).expect("request");
    for (n, v) in headers {
        r.append_header(n.to_string(), *v).expect("header");
    }
    r
}

fn resp(status: u16, headers: &[(&str, &str)]) -> ResponseHeader {
    let mut r = ResponseHeader::build(status, None).expect("response");
    for (n, v) in headers {
        r.append_header(n.to_string(), *v).expect("header");
    }
    r
}

fn fresh_for(c: &Cache, rq: &RequestHeader, rs: &ResponseHeader) -> Option<Duration> {
    let now = SystemTime::now();
    match decide(c, rq, rs, now) {
        RespCacheable::Cacheable(meta) => Some(
            meta.fresh_until()
                .duration_since(now)
                .unwrap_or(Duration::ZERO),
        ),
        RespCacheable::Uncacheable(_) => None,
    }
}

#[test]
fn freshness_comes_from_s_maxage_then_max_age_then_ttl() {
    let c = cache(serde_json::json!({"ttl_secs": 30}));
    let r = req(&[]);
    let s = |cc: &str| resp(200, &[("cache-control", cc)]);
    assert_eq!(
        fresh_for(&c, &r, &s("max-age=60, s-maxage=120")),
        Some(Duration::from_secs(120))
    );
    assert_eq!(
        fresh_for(&c, &r, &s("max-age=60")),
        Some(Duration::from_secs(60))
    );
    assert_eq!(
        fresh_for(&c, &r, &resp(200, &[])),
        Some(Duration::from_secs(30))
    );
}

#[test]
fn ttl_zero_stores_only_what_says_so() {
    let c = cache(serde_json::json!({}));
    assert_eq!(fresh_for(&c, &req(&[]), &resp(200, &[])), None);
    assert!(fresh_for(&c, &req(&[]), &resp(200, &[("cache-control", "max-age=5")])).is_some());
}

#[test]
fn never_stores_no_store_private_set_cookie_or_vary_star() {
    let c = cache(serde_json::json!({"ttl_secs": 60}));
    for headers in [
        vec![("cache-control", "no-store")],
        vec![("cache-control", "private, max-age=60")],
        vec![("set-cookie", "a=b"), ("cache-control", "max-age=60")],
        vec![("vary", "Accept, *")],
    ] {
        assert_eq!(
            fresh_for(&c, &req(&[]), &resp(200, &headers)),
            None,
            "{headers:?}"
        );
    }
}

#[test]
fn authorized_requests_are_stored_only_when_the_answer_allows_it() {
    let c = cache(serde_json::json!({"ttl_secs": 60}));
    let r = req(&[("authorization", "Bearer x")]);
    assert_eq!(
        fresh_for(&c, &r, &resp(200, &[("cache-control", "max-age=60")])),
        None
    );
    assert!(fresh_for(
        &c,
        &r,
        &resp(200, &[("cache-control", "public, max-age=60")])
    )
    .is_some());
    assert!(fresh_for(&c, &r, &resp(200, &[("cache-control", "s-maxage=60")])).is_some());
}

#[test]
fn partial_and_error_statuses_are_not_stored() {
    let c = cache(serde_json::json!({"ttl_secs": 60}));
    for status in [206, 304, 500, 503, 302] {
        assert_eq!(
            fresh_for(&c, &req(&[]), &resp(status, &[])),
            None,
            "{status}"
        );
    }
    assert!(fresh_for(&c, &req(&[]), &resp(404, &[])).is_some());
}

#[test]
fn variants_follow_the_fields_vary_names() {
    let c = cache(serde_json::json!({"ttl_secs": 60}));
    let stored = resp(200, &[("vary", "Accept-Encoding")]);
    let RespCacheable::Cacheable(meta) = decide(&c, &req(&[]), &stored, SystemTime::now()) else {
        panic!("cacheable");
    };
    let gzip = cache_vary_filter(&meta, &req(&[("accept-encoding", "gzip")]));
    let identity = cache_vary_filter(&meta, &req(&[]));
    let gzip2 = cache_vary_filter(&meta, &req(&[("Accept-Encoding", "gzip")]));
    assert!(gzip.is_some());
    assert_ne!(gzip, identity);
    assert_eq!(gzip, gzip2);
    let plain = decide(&c, &req(&[]), &resp(200, &[]), SystemTime::now());
    let RespCacheable::Cacheable(plain) = plain else {
        panic!("cacheable");
    };
    assert_eq!(
        cache_vary_filter(&plain, &req(&[("accept-encoding", "gzip")])),
        None
    );
}
