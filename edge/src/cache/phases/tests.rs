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
    // An error is stored only with a lifetime of its own: `ttl_secs` is for successes.
    for status in [404, 405, 414, 501] {
        assert_eq!(
            fresh_for(&c, &req(&[]), &resp(status, &[])),
            None,
            "{status}"
        );
        let lived = resp(status, &[("cache-control", "max-age=60")]);
        assert!(fresh_for(&c, &req(&[]), &lived).is_some(), "{status}");
    }
}

#[test]
fn malformed_or_repeated_lifetimes_are_not_trusted_and_upstream_age_counts() {
    let c = cache(serde_json::json!({"ttl_secs": 60}));
    for cc in [
        "max-age=0, max-age=60",
        "max-age=-1",
        "max-age=abc",
        "s-maxage=1.5",
    ] {
        let r = resp(200, &[("cache-control", cc)]);
        assert_eq!(fresh_for(&c, &req(&[]), &r), None, "{cc}");
    }
    let aged = resp(200, &[("cache-control", "max-age=60"), ("age", "100")]);
    let fresh = fresh_for(&c, &req(&[]), &aged).unwrap_or(Duration::MAX);
    assert_eq!(fresh, Duration::ZERO, "already 100 s old: stale at once");
    let young = resp(200, &[("cache-control", "max-age=60"), ("age", "20")]);
    let fresh = fresh_for(&c, &req(&[]), &young).map_or(0, |d| d.as_secs());
    assert!((38..=40).contains(&fresh), "{fresh}");
}

#[test]
fn answers_that_must_be_validated_get_no_stale_window() {
    let c = cache(serde_json::json!({
        "ttl_secs": 60, "stale_while_revalidate_secs": 30, "stale_if_error_secs": 300
    }));
    for cc in [
        "no-cache, max-age=60",
        "max-age=60, must-revalidate",
        "max-age=60, proxy-revalidate",
    ] {
        let r = resp(200, &[("cache-control", cc)]);
        let RespCacheable::Cacheable(meta) = decide(&c, &req(&[]), &r, SystemTime::now()) else {
            panic!("{cc}: stored");
        };
        assert_eq!(meta.stale_while_revalidate_sec(), 0, "{cc}");
        assert_eq!(meta.stale_if_error_sec(), 0, "{cc}");
    }
    let plain = resp(200, &[("cache-control", "max-age=60")]);
    let RespCacheable::Cacheable(meta) = decide(&c, &req(&[]), &plain, SystemTime::now()) else {
        panic!("stored");
    };
    assert_eq!(meta.stale_while_revalidate_sec(), 30);
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
