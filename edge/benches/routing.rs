//! Route lookup cost with 10 routes vs 10,000 routes of the same realistic mix (exact
//! and wildcard hosts, any-host routes, prefixes, params, exact paths, methods, headers).
//! Target: the 10,000-route lookup within 20% of the 10-route one.
//!
//! `routing/canonical`: the canonical-path step that runs before every lookup. Target: on an
//! already-canonical path (the common case) a few nanoseconds, far below the lookup.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use edge::routing::Router;
use http::{HeaderMap, HeaderValue, Method};
use storage::RouteSpec;

/// Requests per config, spread over its routes.
const REQUESTS: usize = 64;

fn spec(i: usize, hosts: Vec<String>, methods: &[&str], path: String) -> RouteSpec {
    RouteSpec {
        id: format!("route-{i}"),
        hosts,
        methods: methods.iter().map(|m| (*m).to_owned()).collect(),
        paths: vec![path],
        headers: BTreeMap::new(),
        strip_prefix: None,
        priority: 0,
        upstream: "up".to_owned(),
        policies: Vec::new(),
        enabled: true,
    }
}

/// Route `i` of a config with `n` routes; hosts are shared by about 50 routes each.
fn route(i: usize, n: usize) -> RouteSpec {
    let h = i % (n / 50).max(1);
    match i % 5 {
        0 => spec(
            i,
            vec![format!("svc{h}.example.com")],
            &["GET", "POST"],
            format!("/v1/svc{i}"),
        ),
        1 => spec(
            i,
            vec![format!("*.tenant{h}.example.net")],
            &[],
            format!("/api/{{version}}/items{i}"),
        ),
        2 => spec(i, Vec::new(), &[], format!("/users/{{id}}/orders{i}")),
        3 => spec(i, Vec::new(), &["GET"], format!("=/health/{i}")),
        _ => {
            let mut s = spec(
                i,
                vec![format!("svc{h}.example.com")],
                &[],
                format!("/static{i}"),
            );
            s.headers.insert("x-env".to_owned(), "prod".to_owned());
            s
        }
    }
}

struct Request {
    host: String,
    method: Method,
    path: String,
    headers: HeaderMap,
    expect: usize,
}

/// A request that route `i` (and no more specific route) matches.
fn request(i: usize, n: usize) -> Request {
    let h = i % (n / 50).max(1);
    let mut headers = HeaderMap::new();
    headers.insert("user-agent", HeaderValue::from_static("bench/1.0"));
    let (host, method, path) = match i % 5 {
        0 => (
            format!("svc{h}.example.com:443"),
            Method::POST,
            format!("/v1/svc{i}/orders/42"),
        ),
        1 => (
            format!("Acme.tenant{h}.example.net"),
            Method::GET,
            format!("/api/v2/items{i}/7"),
        ),
        2 => (
            "shop.example.org".to_owned(),
            Method::GET,
            format!("/users/123/orders{i}"),
        ),
        3 => (
            "status.example.org".to_owned(),
            Method::GET,
            format!("/health/{i}"),
        ),
        _ => {
            headers.insert("x-env", HeaderValue::from_static("prod"));
            (
                format!("svc{h}.example.com"),
                Method::GET,
                format!("/static{i}/css/site.css"),
            )
        }
    };
    Request {
        host,
        method,
        path,
        headers,
        expect: i,
    }
}

fn setup(n: usize) -> (Router, Vec<Request>) {
    let mut specs: Vec<RouteSpec> = (0..n).map(|i| route(i, n)).collect();
    specs.push(spec(n, Vec::new(), &[], "/".to_owned()));
    let router = Router::compile(&specs);
    // 157 is coprime with 5, so every kind of route is requested.
    let requests: Vec<Request> = (0..REQUESTS).map(|k| request(k * 157 % n, n)).collect();
    for r in &requests {
        let found = router.find(Some(&r.host), &r.method, &r.path, &r.headers);
        assert_eq!(
            found.map(|m| m.index),
            Some(r.expect),
            "{}{}",
            r.host,
            r.path
        );
    }
    (router, requests)
}

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("routing/find");
    for n in [10, 10_000] {
        let (router, requests) = setup(n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            let mut next = 0;
            b.iter(|| {
                let r = &requests[next % REQUESTS];
                next += 1;
                black_box(router.find(
                    Some(black_box(&r.host)),
                    &r.method,
                    black_box(&r.path),
                    &r.headers,
                ))
            });
        });
    }
    group.finish();
}

fn canonical(c: &mut Criterion) {
    let mut group = c.benchmark_group("routing/canonical");
    for (name, path) in [
        ("canonical", "/v1/svc1234/orders/7/items"),
        ("dot-segments", "/v1/svc1234/../svc1234/./orders//7/%69tems"),
    ] {
        group.bench_with_input(BenchmarkId::from_parameter(name), &path, |b, path| {
            b.iter(|| black_box(edge::routing::canonical_path(black_box(path.as_bytes()))));
        });
    }
    group.finish();
}

criterion_group!(benches, lookup, canonical);
criterion_main!(benches);
