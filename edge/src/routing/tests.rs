use std::borrow::Cow;
use std::collections::BTreeMap;

use http::{HeaderMap, HeaderValue, Method};
use storage::RouteSpec;

use super::{strip_prefix, RouteMatch, Router};

fn route(paths: &[&str]) -> RouteSpec {
    RouteSpec {
        id: format!("r-{}", paths.join(",")),
        hosts: Vec::new(),
        methods: Vec::new(),
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        headers: BTreeMap::new(),
        strip_prefix: None,
        priority: 0,
        upstream: "up".to_owned(),
        policies: Vec::new(),
        enabled: true,
    }
}

fn with_hosts(mut spec: RouteSpec, hosts: &[&str]) -> RouteSpec {
    spec.hosts = hosts.iter().map(|h| (*h).to_owned()).collect();
    spec
}

fn with_methods(mut spec: RouteSpec, methods: &[&str]) -> RouteSpec {
    spec.methods = methods.iter().map(|m| (*m).to_owned()).collect();
    spec
}

fn with_header(mut spec: RouteSpec, name: &str, value: &str) -> RouteSpec {
    spec.headers.insert(name.to_owned(), value.to_owned());
    spec
}

fn with_priority(mut spec: RouteSpec, priority: i32) -> RouteSpec {
    spec.priority = priority;
    spec
}

/// Index of the route matching a GET without headers.
fn get(router: &Router, host: Option<&str>, path: &str) -> Option<usize> {
    find(router, host, &Method::GET, path, &HeaderMap::new())
}

fn find(
    router: &Router,
    host: Option<&str>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<usize> {
    router
        .find(host, method, path, headers)
        .map(|RouteMatch { index }| index)
}

#[test]
fn exact_host_beats_wildcard_beats_any_host() {
    let router = Router::compile(&[
        route(&["/"]),
        with_hosts(route(&["/"]), &["*.example.com"]),
        with_hosts(route(&["/"]), &["api.example.com"]),
    ]);
    assert_eq!(get(&router, Some("api.example.com"), "/x"), Some(2));
    assert_eq!(get(&router, Some("www.example.com"), "/x"), Some(1));
    assert_eq!(get(&router, Some("other.org"), "/x"), Some(0));
    assert_eq!(get(&router, None, "/x"), Some(0));
}

#[test]
fn wildcard_matches_any_depth_of_subdomain_but_not_apex() {
    let router = Router::compile(&[with_hosts(route(&["/"]), &["*.example.org"])]);
    assert_eq!(get(&router, Some("a.example.org"), "/"), Some(0));
    assert_eq!(get(&router, Some("a.b.example.org"), "/"), Some(0));
    assert_eq!(get(&router, Some("example.org"), "/"), None);
    assert_eq!(get(&router, Some("badexample.org"), "/"), None);
    assert_eq!(get(&router, None, "/"), None);
}

#[test]
fn longer_wildcard_suffix_beats_shorter() {
    let router = Router::compile(&[
        with_hosts(route(&["/"]), &["*.example.org"]),
        with_hosts(route(&["/"]), &["*.eu.example.org"]),
    ]);
    assert_eq!(get(&router, Some("a.eu.example.org"), "/"), Some(1));
    assert_eq!(get(&router, Some("eu.example.org"), "/"), Some(0));
}

#[test]
fn ignores_port_and_case_of_request_host() {
    let router = Router::compile(&[
        with_hosts(route(&["/"]), &["api.example.com"]),
        with_hosts(route(&["/"]), &["*.example.org"]),
    ]);
    assert_eq!(get(&router, Some("api.example.com:8080"), "/"), Some(0));
    assert_eq!(get(&router, Some("API.Example.COM"), "/"), Some(0));
    assert_eq!(get(&router, Some("Api.Example.Com:443"), "/"), Some(0));
    assert_eq!(get(&router, Some("api.example.com."), "/"), Some(0));
    assert_eq!(get(&router, Some("WWW.EXAMPLE.ORG:80"), "/"), Some(1));
    assert_eq!(get(&router, Some("api.example.net"), "/"), None);
}

#[test]
fn host_specific_route_needs_a_host() {
    let router = Router::compile(&[with_hosts(route(&["/"]), &["api.example.com"])]);
    assert_eq!(get(&router, None, "/"), None);
    assert_eq!(get(&router, Some(""), "/"), None);
}

#[test]
fn filters_on_method_and_prefers_routes_with_methods() {
    let router = Router::compile(&[
        route(&["/orders"]),
        with_methods(route(&["/orders"]), &["POST", "PUT"]),
    ]);
    let none = HeaderMap::new();
    assert_eq!(
        find(&router, None, &Method::POST, "/orders", &none),
        Some(1)
    );
    assert_eq!(find(&router, None, &Method::PUT, "/orders", &none), Some(1));
    assert_eq!(find(&router, None, &Method::GET, "/orders", &none), Some(0));

    let only_post = Router::compile(&[with_methods(route(&["/orders"]), &["POST"])]);
    assert_eq!(find(&only_post, None, &Method::GET, "/orders", &none), None);
    assert_eq!(
        find(&only_post, None, &Method::HEAD, "/orders", &none),
        None
    );
}

#[test]
fn matches_extension_methods_by_name() {
    let router = Router::compile(&[
        route(&["/cache"]),
        with_methods(route(&["/cache"]), &["PURGE", "GET"]),
    ]);
    let none = HeaderMap::new();
    let purge = Method::from_bytes(b"PURGE").expect("token");
    let report = Method::from_bytes(b"REPORT").expect("token");
    assert_eq!(find(&router, None, &purge, "/cache", &none), Some(1));
    assert_eq!(find(&router, None, &Method::GET, "/cache", &none), Some(1));
    assert_eq!(find(&router, None, &report, "/cache", &none), Some(0));
    assert_eq!(find(&router, None, &Method::POST, "/cache", &none), Some(0));
}

#[test]
fn exact_beats_params_beats_prefix() {
    let router = Router::compile(&[
        route(&["/users"]),
        route(&["/users/{id}"]),
        route(&["=/users/me"]),
    ]);
    assert_eq!(get(&router, None, "/users/me"), Some(2));
    assert_eq!(get(&router, None, "/users/42"), Some(1));
    assert_eq!(get(&router, None, "/users/42/orders"), Some(1));
    assert_eq!(get(&router, None, "/users/me/orders"), Some(1));
    assert_eq!(get(&router, None, "/users"), Some(0));
    // `{id}` needs a non-empty segment.
    assert_eq!(get(&router, None, "/users/"), Some(0));
}

#[test]
fn exact_pattern_matches_only_the_whole_path() {
    let router = Router::compile(&[route(&["=/v1/ping"])]);
    assert_eq!(get(&router, None, "/v1/ping"), Some(0));
    assert_eq!(get(&router, None, "/v1/ping/"), None);
    assert_eq!(get(&router, None, "/v1/ping/x"), None);
    assert_eq!(get(&router, None, "/v1"), None);

    let root = Router::compile(&[route(&["=/"])]);
    assert_eq!(get(&root, None, "/"), Some(0));
    assert_eq!(get(&root, None, "/x"), None);
}

#[test]
fn longer_literal_prefix_beats_shorter() {
    let router = Router::compile(&[route(&["/"]), route(&["/v1/orders"]), route(&["/v1"])]);
    assert_eq!(get(&router, None, "/v1/orders/7"), Some(1));
    assert_eq!(get(&router, None, "/v1/users"), Some(2));
    assert_eq!(get(&router, None, "/v2"), Some(0));
}

#[test]
fn longer_literal_prefix_beats_earlier_param() {
    let router = Router::compile(&[route(&["/{tenant}/a/b"]), route(&["/api/{v}"])]);
    assert_eq!(get(&router, None, "/api/a/b"), Some(1));
    assert_eq!(get(&router, None, "/web/a/b"), Some(0));
}

#[test]
fn more_literal_segments_beat_params() {
    let router = Router::compile(&[
        route(&["/users/{id}/{rel}"]),
        route(&["/users/{id}/orders"]),
        route(&["/users/{id}"]),
    ]);
    assert_eq!(get(&router, None, "/users/7/orders"), Some(1));
    assert_eq!(get(&router, None, "/users/7/orders/9"), Some(1));
    assert_eq!(get(&router, None, "/users/7/friends"), Some(0));
    assert_eq!(get(&router, None, "/users/7"), Some(2));
}

#[test]
fn exact_pattern_with_params_matches_one_segment_per_param() {
    let router = Router::compile(&[route(&["=/users/{id}"])]);
    assert_eq!(get(&router, None, "/users/7"), Some(0));
    assert_eq!(get(&router, None, "/users/7/orders"), None);
    assert_eq!(get(&router, None, "/users/"), None);
}

#[test]
fn priority_overrides_specificity() {
    let router = Router::compile(&[
        with_hosts(route(&["=/v1/orders"]), &["api.example.com"]),
        with_priority(route(&["/"]), 10),
        with_priority(route(&["/v1"]), -1),
    ]);
    assert_eq!(get(&router, Some("api.example.com"), "/v1/orders"), Some(1));

    let negative = Router::compile(&[with_priority(route(&["/v1"]), -1), route(&["/"])]);
    assert_eq!(get(&negative, None, "/v1/orders"), Some(1));
}

#[test]
fn requires_every_header_and_prefers_routes_with_headers() {
    let router = Router::compile(&[
        route(&["/api"]),
        with_header(route(&["/api"]), "x-version", "2"),
        with_header(
            with_header(route(&["/api"]), "x-version", "2"),
            "x-beta",
            "on",
        ),
    ]);
    let mut headers = HeaderMap::new();
    assert_eq!(find(&router, None, &Method::GET, "/api", &headers), Some(0));
    headers.insert("x-version", HeaderValue::from_static("2"));
    assert_eq!(find(&router, None, &Method::GET, "/api", &headers), Some(1));
    headers.insert("x-beta", HeaderValue::from_static("on"));
    assert_eq!(find(&router, None, &Method::GET, "/api", &headers), Some(2));
    headers.insert("x-version", HeaderValue::from_static("3"));
    assert_eq!(find(&router, None, &Method::GET, "/api", &headers), Some(0));
}

#[test]
fn header_value_must_match_exactly() {
    let router = Router::compile(&[with_header(route(&["/"]), "X-Version", "v2")]);
    let mut headers = HeaderMap::new();
    headers.insert("x-version", HeaderValue::from_static("V2"));
    assert_eq!(find(&router, None, &Method::GET, "/", &headers), None);
    headers.append("x-version", HeaderValue::from_static("v2"));
    assert_eq!(find(&router, None, &Method::GET, "/", &headers), Some(0));
}

#[test]
fn falls_back_when_the_most_specific_route_rejects_the_request() {
    let router = Router::compile(&[
        route(&["/"]),
        with_methods(route(&["/v1"]), &["GET"]),
        with_header(
            with_hosts(route(&["=/v1/orders"]), &["api.example.com"]),
            "x-version",
            "2",
        ),
    ]);
    let none = HeaderMap::new();
    let host = Some("api.example.com");
    assert_eq!(
        find(&router, host, &Method::GET, "/v1/orders", &none),
        Some(1)
    );
    assert_eq!(
        find(&router, host, &Method::POST, "/v1/orders", &none),
        Some(0)
    );
}

#[test]
fn prefix_matches_on_segment_boundary_only() {
    let router = Router::compile(&[route(&["/v1/orders"])]);
    assert_eq!(get(&router, None, "/v1/orders"), Some(0));
    assert_eq!(get(&router, None, "/v1/orders/"), Some(0));
    assert_eq!(get(&router, None, "/v1/orders/7"), Some(0));
    assert_eq!(get(&router, None, "/v1/ordersX"), None);
    assert_eq!(get(&router, None, "/v1/order"), None);
    assert_eq!(get(&router, None, "/v1"), None);
}

#[test]
fn prefix_with_trailing_slash_needs_more_path() {
    let router = Router::compile(&[route(&["/v1/"])]);
    assert_eq!(get(&router, None, "/v1/"), Some(0));
    assert_eq!(get(&router, None, "/v1/x"), Some(0));
    assert_eq!(get(&router, None, "/v1"), None);
}

#[test]
fn root_prefix_matches_every_path() {
    let router = Router::compile(&[route(&["/"])]);
    for path in ["/", "", "/a", "/a/b/c", "/a//b/"] {
        assert_eq!(get(&router, None, path), Some(0), "{path}");
    }
    assert_eq!(get(&router, None, "*"), None);
}

#[test]
fn leaves_out_disabled_routes_but_keeps_indexes() {
    let mut disabled = route(&["/v1/orders"]);
    disabled.enabled = false;
    let router = Router::compile(&[disabled, route(&["/v1"])]);
    assert_eq!(router.len(), 1);
    assert_eq!(get(&router, None, "/v1/orders"), Some(1));

    let mut only = route(&["/"]);
    only.enabled = false;
    let empty = Router::compile(&[only]);
    assert!(empty.is_empty());
    assert_eq!(get(&empty, None, "/"), None);
}

#[test]
fn earlier_route_wins_a_tie() {
    let router = Router::compile(&[route(&["/a"]), route(&["/a"]), route(&["/b", "/a"])]);
    assert_eq!(get(&router, None, "/a"), Some(0));
    assert_eq!(get(&router, None, "/b"), Some(2));
}

#[test]
fn matches_any_of_a_routes_hosts_and_paths() {
    let router = Router::compile(&[with_hosts(
        route(&["/v1/orders", "=/v1/ping", "/v1/users/{id}/orders"]),
        &["api.example.com", "*.example.org"],
    )]);
    for (host, path) in [
        ("api.example.com", "/v1/orders/1"),
        ("x.example.org", "/v1/ping"),
        ("x.example.org", "/v1/users/3/orders"),
    ] {
        assert_eq!(get(&router, Some(host), path), Some(0), "{host}{path}");
    }
    assert_eq!(get(&router, Some("api.example.com"), "/v1/ping/x"), None);
    assert_eq!(get(&router, Some("api.example.com"), "/v1/users/3"), None);
}

#[test]
fn leaves_out_routes_with_unparsable_method_or_header() {
    let router = Router::compile(&[
        with_methods(route(&["/a"]), &["GET", "BAD METHOD"]),
        with_header(route(&["/a"]), "bad header", "1"),
        route(&["/"]),
    ]);
    assert_eq!(router.len(), 1);
    assert_eq!(get(&router, None, "/a"), Some(2));
}

#[test]
fn finds_the_right_routes_among_ten_thousand() {
    let mut specs = Vec::new();
    for i in 0..10_000 {
        let spec = match i % 4 {
            0 => with_hosts(
                route(&[&format!("/svc{i}")]),
                &[&format!("h{}.example.com", i % 97)],
            ),
            1 => with_hosts(
                route(&[&format!("/api/{{tenant}}/r{i}")]),
                &[&format!("*.t{}.example.net", i % 31)],
            ),
            2 => with_methods(route(&[&format!("=/exact/{i}")]), &["POST"]),
            _ => with_header(
                route(&[&format!("/p{i}/{{id}}/items")]),
                "x-shard",
                &(i % 7).to_string(),
            ),
        };
        specs.push(spec);
    }
    specs.push(route(&["/"]));
    let router = Router::compile(&specs);
    assert_eq!(router.len(), 10_001);
    let fallback = Some(10_000);

    for i in (0..10_000).step_by(37) {
        let none = HeaderMap::new();
        let (host, method, path, headers) = match i % 4 {
            0 => (
                format!("h{}.example.com:443", i % 97),
                Method::GET,
                format!("/svc{i}/x"),
                none,
            ),
            1 => (
                format!("a.t{}.example.net", i % 31),
                Method::GET,
                format!("/api/acme/r{i}"),
                none,
            ),
            2 => (
                "any.host".to_owned(),
                Method::POST,
                format!("/exact/{i}"),
                none,
            ),
            _ => {
                let mut h = HeaderMap::new();
                let shard = HeaderValue::from_str(&(i % 7).to_string()).expect("digits");
                h.insert("x-shard", shard);
                (
                    "any.host".to_owned(),
                    Method::GET,
                    format!("/p{i}/5/items/2"),
                    h,
                )
            }
        };
        assert_eq!(
            find(&router, Some(&host), &method, &path, &headers),
            Some(i),
            "{host}{path}"
        );
        // The same request made wrong in one way falls through to the catch-all.
        let wrong = match i % 4 {
            0 => find(&router, Some("h.example.com"), &method, &path, &headers),
            1 => find(
                &router,
                Some(&format!("t{}.example.net", i % 31)),
                &method,
                &path,
                &headers,
            ),
            2 => find(&router, Some(&host), &Method::GET, &path, &headers),
            _ => find(&router, Some(&host), &method, &path, &HeaderMap::new()),
        };
        assert_eq!(wrong, fallback, "{host}{path}");
    }
}

#[test]
fn strips_prefix_on_segment_boundary() {
    assert_eq!(strip_prefix("/v1/orders", "/v1"), "/orders");
    assert_eq!(strip_prefix("/v1/orders/7", "/v1/orders"), "/7");
    assert_eq!(strip_prefix("/v1", "/v1"), "/");
    assert_eq!(strip_prefix("/v1/", "/v1"), "/");
    assert_eq!(strip_prefix("/v1/x", "/v1/"), "/x");
    assert_eq!(strip_prefix("/v1x", "/v1"), "/v1x");
    assert_eq!(strip_prefix("/v2/orders", "/v1"), "/v2/orders");
    assert_eq!(strip_prefix("/v1/orders", ""), "/v1/orders");
    assert_eq!(strip_prefix("/v1/orders", "/"), "/v1/orders");
}

#[test]
fn strip_prefix_borrows_the_path() {
    let path = String::from("/v1/orders");
    assert!(
        matches!(strip_prefix(&path, "/v2"), Cow::Borrowed(p) if std::ptr::eq(p, path.as_str()))
    );
    assert!(matches!(
        strip_prefix(&path, "/v1"),
        Cow::Borrowed("/orders")
    ));
}
