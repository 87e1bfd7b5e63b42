//! ip_filter, cors, request_size, headers and rewrite in a chain.

use std::collections::BTreeMap;

use super::*;
use crate::spec::{
    CorsSpec, HeaderEditsSpec, HeadersSpec, IpFilterSpec, RequestSizeSpec, RewriteSpec,
};

#[test]
fn ip_filter_believes_forwarded_for_only_from_trusted_proxies() {
    let counters = Counters::new();
    let dir = directory(&counters);
    let spec = IpFilterSpec {
        allow: vec!["203.0.113.0/24".into()],
        deny: vec!["203.0.113.66".into()],
        trusted_proxies: vec!["10.0.0.0/8".into()],
    };
    let c = chain(vec![PolicySpec::IpFilter(spec)], &counters);
    let xff = |v: &str| headers(&[("x-forwarded-for", v)]);
    let forbidden = (403, "client address not allowed");
    assert!(is(
        &run(&c, &dir, Method::GET, "/", &HeaderMap::new(), "203.0.113.5").0,
        OK
    ));
    assert!(is(
        &run(
            &c,
            &dir,
            Method::GET,
            "/",
            &HeaderMap::new(),
            "203.0.113.66"
        )
        .0,
        forbidden
    ));
    assert!(is(
        &run(
            &c,
            &dir,
            Method::GET,
            "/",
            &HeaderMap::new(),
            "198.51.100.1"
        )
        .0,
        forbidden
    ));
    // From a trusted proxy: the right-most untrusted address counts, spoofed left entries don't.
    assert!(is(
        &run(
            &c,
            &dir,
            Method::GET,
            "/",
            &xff("1.2.3.4, 203.0.113.5, 10.1.1.1"),
            "10.0.0.1"
        )
        .0,
        OK
    ));
    assert!(is(
        &run(
            &c,
            &dir,
            Method::GET,
            "/",
            &xff("203.0.113.5, 198.51.100.1"),
            "10.0.0.1"
        )
        .0,
        forbidden
    ));
    // From an untrusted peer: the header is ignored.
    assert!(is(
        &run(
            &c,
            &dir,
            Method::GET,
            "/",
            &xff("203.0.113.5"),
            "198.51.100.1"
        )
        .0,
        forbidden
    ));
    assert!(is(
        &run(&c, &dir, Method::GET, "/", &xff("garbage"), "10.0.0.1").0,
        (403, "invalid x-forwarded-for")
    ));
}

fn cors_chain(counters: &Counters) -> Chain {
    chain(
        vec![
            PolicySpec::KeyAuth(KeyAuthSpec::default()),
            PolicySpec::Cors(CorsSpec {
                origins: vec!["https://app.example".into()],
                methods: vec!["GET".into(), "POST".into()],
                headers: vec!["x-api-key".into(), "content-type".into()],
                credentials: true,
                max_age: Some(600),
                expose_headers: vec![],
            }),
        ],
        counters,
    )
}

#[test]
fn cors_answers_allowed_preflight_before_auth() {
    let counters = Counters::new();
    let dir = directory(&counters);
    let c = cors_chain(&counters);
    let h = headers(&[
        ("origin", "https://app.example"),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "X-Api-Key, content-type"),
    ]);
    let (o, _, verdict) = run(&c, &dir, Method::OPTIONS, "/", &h, "10.0.0.1");
    assert_eq!(o.0, 204);
    let Verdict::Respond(r) = verdict else {
        panic!("expected 204")
    };
    assert!(!r.has_body());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some(&HeaderValue::from_static("https://app.example"))
    );
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some(&HeaderValue::from_static("GET, POST"))
    );
    assert_eq!(
        r.header("access-control-allow-credentials"),
        Some(&HeaderValue::from_static("true"))
    );
    assert_eq!(
        r.header("access-control-max-age"),
        Some(&HeaderValue::from(600u32))
    );
}

#[test]
fn cors_refuses_disallowed_preflight() {
    let counters = Counters::new();
    let dir = directory(&counters);
    let c = cors_chain(&counters);
    let pre = |origin: &str, method: &str, hdrs: &str| {
        headers(&[
            ("origin", origin),
            ("access-control-request-method", method),
            ("access-control-request-headers", hdrs),
        ])
    };
    let cases = [
        (
            pre("https://evil.example", "GET", "x-api-key"),
            "cors origin not allowed",
        ),
        (
            pre("https://app.example", "DELETE", "x-api-key"),
            "cors method not allowed",
        ),
        (
            pre("https://app.example", "GET", "x-secret"),
            "cors header not allowed",
        ),
    ];
    for (h, msg) in cases {
        assert!(is(
            &run(&c, &dir, Method::OPTIONS, "/", &h, "10.0.0.1").0,
            (403, msg)
        ));
    }
}

#[test]
fn cors_decorates_responses_of_allowed_origins_only() {
    let counters = Counters::new();
    let dir = directory(&counters);
    let c = cors_chain(&counters);
    let h = headers(&[("origin", "https://app.example"), ("x-api-key", "tg_acme")]);
    let (o, state, _) = run(&c, &dir, Method::GET, "/", &h, "10.0.0.1");
    assert!(is(&o, OK));
    let mut response = HeaderMap::new();
    c.on_response(&state, &mut response);
    assert_eq!(
        response.get("access-control-allow-origin"),
        Some(&HeaderValue::from_static("https://app.example"))
    );
    assert_eq!(
        response.get("vary"),
        Some(&HeaderValue::from_static("Origin"))
    );
    let h = headers(&[("origin", "https://evil.example"), ("x-api-key", "tg_acme")]);
    let (_, state, _) = run(&c, &dir, Method::GET, "/", &h, "10.0.0.1");
    let mut response = HeaderMap::new();
    c.on_response(&state, &mut response);
    assert!(response.get("access-control-allow-origin").is_none());
}

#[test]
fn request_size_refuses_declared_length_over_limit() {
    let counters = Counters::new();
    let dir = directory(&counters);
    let c = chain(
        vec![PolicySpec::RequestSize(RequestSizeSpec { max_bytes: 10 })],
        &counters,
    );
    assert_eq!(c.max_body_bytes(), Some(10));
    assert!(is(
        &run(
            &c,
            &dir,
            Method::POST,
            "/",
            &headers(&[("content-length", "10")]),
            "10.0.0.1"
        )
        .0,
        OK
    ));
    assert!(is(
        &run(
            &c,
            &dir,
            Method::POST,
            "/",
            &headers(&[("content-length", "11")]),
            "10.0.0.1"
        )
        .0,
        (413, "request body too large")
    ));
}

#[test]
fn headers_edit_both_directions_in_order() {
    let counters = Counters::new();
    let edits = |set: &[(&str, &str)], add: &[(&str, &str)], remove: &[&str]| HeaderEditsSpec {
        set: set
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        add: add
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        remove: remove.iter().map(|s| (*s).to_owned()).collect(),
    };
    let c = chain(
        vec![PolicySpec::Headers(HeadersSpec {
            request: edits(
                &[("x-gateway", "tollgate")],
                &[("x-tag", "b")],
                &["x-internal"],
            ),
            response: edits(&[("cache-control", "no-store")], &[], &["server"]),
        })],
        &counters,
    );
    let mut request = headers(&[
        ("x-internal", "1"),
        ("x-gateway", "spoofed"),
        ("x-tag", "a"),
    ]);
    c.apply_request_headers(&mut request);
    assert!(request.get("x-internal").is_none());
    assert_eq!(
        request.get("x-gateway"),
        Some(&HeaderValue::from_static("tollgate"))
    );
    let tags: Vec<_> = request.get_all("x-tag").iter().collect();
    assert_eq!(
        tags,
        [
            &HeaderValue::from_static("a"),
            &HeaderValue::from_static("b")
        ]
    );
    let mut response = headers(&[("server", "nginx")]);
    c.on_response(&RequestState::default(), &mut response);
    assert!(response.get("server").is_none());
    assert_eq!(
        response.get("cache-control"),
        Some(&HeaderValue::from_static("no-store"))
    );
    assert!(response.get("ratelimit-limit").is_none());
}

#[test]
fn rewrite_substitutes_path_with_capture_groups() {
    let counters = Counters::new();
    let c = chain(
        vec![PolicySpec::Rewrite(RewriteSpec {
            regex: "^/v1/users/([^/]+)$".into(),
            replacement: "/users?id=$1".into(),
        })],
        &counters,
    );
    assert_eq!(
        c.rewrite_path("/v1/users/42").ok().flatten().as_deref(),
        Some("/users?id=42")
    );
    assert_eq!(c.rewrite_path("/v2/users/42"), Ok(None));
}
