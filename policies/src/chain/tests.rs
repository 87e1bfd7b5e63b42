use std::collections::BTreeMap;

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Argon2, Params};
use base64::Engine;
use http::{HeaderMap, HeaderValue, Method};

use super::*;
use crate::spec::{
    AclSpec, BasicAuthSpec, CorsSpec, CredentialRecord, HeaderEditsSpec, HeadersSpec, IpFilterSpec,
    KeyAuthSpec, Per, PlanRateSpec, PlanSpec, QuotaPeriod, QuotaSpec, RateLimitSpec,
    RequestSizeSpec, RewriteSpec,
};
use crate::testing::{consumer, headers, key, outcome, view};

const NOW: Duration = Duration::from_secs(1_800_000_000);

fn cheap_argon2_hash(password: &str) -> String {
    let params = Params::new(1024, 1, 1, None).expect("params");
    let argon = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::from_b64("c2FsdHNhbHRzYWx0").expect("salt");
    argon
        .hash_password(password.as_bytes(), &salt)
        .expect("hash")
        .to_string()
}

fn directory(counters: &Counters) -> Directory {
    let mut revoked = key("k2", "acme", "tg_revoked");
    revoked.revoked = true;
    let mut expired = key("k3", "acme", "tg_expired");
    expired.expires = Some(NOW.as_secs() - 1);
    let mut expiring = key("k4", "acme", "tg_expiring");
    expiring.expires = Some(NOW.as_secs());
    let plans = [PlanSpec {
        id: "tiny".into(),
        rate_limit: Some(PlanRateSpec {
            requests: 3,
            per: Per::Minute,
            burst: None,
        }),
        quota: Some(QuotaSpec {
            requests: 2,
            per: QuotaPeriod::Day,
        }),
    }];
    Directory::compile(
        &[
            consumer("acme", None, &["partners"]),
            consumer("bob", Some("tiny"), &["staff"]),
            consumer("eve", None, &["partners", "blocked"]),
        ],
        &plans,
        &[
            key("k1", "acme", "tg_acme"),
            revoked,
            expired,
            expiring,
            key("k5", "bob", "tg_bob"),
            key("k6", "eve", "tg_eve"),
        ],
        &[CredentialRecord {
            username: "alice".into(),
            consumer: "acme".into(),
            password_hash: cheap_argon2_hash("s3cret"),
        }],
        &[],
        counters,
    )
    .expect("valid directory")
}

fn chain(specs: Vec<PolicySpec>, counters: &Counters) -> Chain {
    Chain::compile("r1", &specs, counters).expect("valid chain")
}

fn run(
    chain: &Chain,
    dir: &Directory,
    method: Method,
    path: &str,
    h: &HeaderMap,
    peer: &str,
) -> ((u16, String), RequestState, Verdict) {
    let v = view(&method, path, h, peer);
    let mut state = RequestState::default();
    let verdict = chain.on_request(&v, &mut state, dir, NOW);
    (outcome(&verdict), state, verdict)
}

fn with_key(k: &str) -> HeaderMap {
    headers(&[("x-api-key", k)])
}

const OK: (u16, &str) = (0, "continue");

fn is(o: &(u16, String), expected: (u16, &str)) -> bool {
    o.0 == expected.0 && o.1 == expected.1
}

#[test]
fn key_auth_identifies_consumer_and_rejects_bad_keys() {
    let counters = Counters::new();
    let dir = directory(&counters);
    let c = chain(vec![PolicySpec::KeyAuth(KeyAuthSpec::default())], &counters);
    let (o, state, _) = run(&c, &dir, Method::GET, "/", &with_key("tg_acme"), "10.0.0.1");
    assert!(is(&o, OK), "{o:?}");
    assert_eq!(state.consumer_id(), Some("acme"));
    for (k, msg) in [
        ("tg_revoked", "api key revoked"),
        ("tg_expired", "api key expired"),
        ("tg_unknown", "invalid api key"),
    ] {
        let (o, state, _) = run(&c, &dir, Method::GET, "/", &with_key(k), "10.0.0.1");
        assert!(is(&o, (401, msg)), "{k}: {o:?}");
        assert_eq!(state.consumer_id(), None);
    }
    // `expires` equal to now is still valid (expired means expires < now).
    assert!(is(
        &run(
            &c,
            &dir,
            Method::GET,
            "/",
            &with_key("tg_expiring"),
            "10.0.0.1"
        )
        .0,
        OK
    ));
    let (o, _, _) = run(&c, &dir, Method::GET, "/", &HeaderMap::new(), "10.0.0.1");
    assert!(is(&o, (401, "missing api key")));
}

#[test]
fn key_auth_reads_query_parameter_when_configured() {
    let counters = Counters::new();
    let dir = directory(&counters);
    let spec = KeyAuthSpec {
        header: Some("x-key".into()),
        query: Some("apikey".into()),
    };
    let c = chain(vec![PolicySpec::KeyAuth(spec)], &counters);
    let (o, state, _) = run(
        &c,
        &dir,
        Method::GET,
        "/x?a=1&apikey=tg_acme",
        &HeaderMap::new(),
        "10.0.0.1",
    );
    assert!(is(&o, OK), "{o:?}");
    assert_eq!(state.consumer_id(), Some("acme"));
    assert!(is(
        &run(&c, &dir, Method::GET, "/", &with_key("tg_acme"), "10.0.0.1").0,
        (401, "missing api key")
    ));
}

#[test]
fn basic_auth_verifies_argon2_and_caches_success() {
    let counters = Counters::new();
    let dir = directory(&counters);
    let c = chain(vec![PolicySpec::BasicAuth(BasicAuthSpec {})], &counters);
    let basic = |user: &str, pw: &str| {
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
        headers(&[("authorization", &format!("Basic {b64}"))])
    };
    for _ in 0..2 {
        let (o, state, _) = run(
            &c,
            &dir,
            Method::GET,
            "/",
            &basic("alice", "s3cret"),
            "10.0.0.1",
        );
        assert!(is(&o, OK), "{o:?}");
        assert_eq!(state.consumer_id(), Some("acme"));
    }
    let cred = dir.credential("alice").expect("alice");
    assert!(cred.verified.get().is_some());
    let (o, _, verdict) = run(
        &c,
        &dir,
        Method::GET,
        "/",
        &basic("alice", "wrong"),
        "10.0.0.1",
    );
    assert!(is(&o, (401, "invalid basic credentials")));
    let Verdict::Respond(r) = verdict else {
        panic!("expected a rejection")
    };
    assert!(r.header("www-authenticate").is_some());
    assert!(is(
        &run(
            &c,
            &dir,
            Method::GET,
            "/",
            &basic("mallory", "s3cret"),
            "10.0.0.1"
        )
        .0,
        (401, "invalid basic credentials")
    ));
    assert!(is(
        &run(&c, &dir, Method::GET, "/", &HeaderMap::new(), "10.0.0.1").0,
        (401, "missing basic credentials")
    ));
}

#[test]
fn acl_deny_wins_and_allow_list_admits_only_named() {
    let counters = Counters::new();
    let dir = directory(&counters);
    let c = chain(
        vec![
            PolicySpec::Acl(AclSpec {
                allow: vec!["partners".into()],
                deny: vec!["blocked".into()],
            }),
            PolicySpec::KeyAuth(KeyAuthSpec::default()),
        ],
        &counters,
    );
    assert!(is(
        &run(&c, &dir, Method::GET, "/", &with_key("tg_acme"), "10.0.0.1").0,
        OK
    ));
    assert!(is(
        &run(&c, &dir, Method::GET, "/", &with_key("tg_eve"), "10.0.0.1").0,
        (403, "consumer not allowed")
    ));
    assert!(is(
        &run(&c, &dir, Method::GET, "/", &with_key("tg_bob"), "10.0.0.1").0,
        (403, "consumer not allowed")
    ));
    let deny_only = chain(
        vec![PolicySpec::Acl(AclSpec {
            allow: vec![],
            deny: vec!["acme".into()],
        })],
        &counters,
    );
    assert!(is(
        &run(
            &deny_only,
            &dir,
            Method::GET,
            "/",
            &HeaderMap::new(),
            "10.0.0.1"
        )
        .0,
        (403, "no consumer identified")
    ));
}

#[test]
fn plan_rate_limit_and_quota_apply_where_consumer_is_identified() {
    let counters = Counters::new();
    let dir = directory(&counters);
    let c = chain(vec![PolicySpec::KeyAuth(KeyAuthSpec::default())], &counters);
    let (o, state, _) = run(&c, &dir, Method::GET, "/", &with_key("tg_bob"), "10.0.0.1");
    assert!(is(&o, OK));
    // Quota (2/day) is tighter than the rate (3/minute): it is reported.
    assert_eq!(
        state.rate_limit().map(|s| (s.limit, s.remaining)),
        Some((2, 1))
    );
    let mut response = HeaderMap::new();
    c.on_response(&state, &mut response);
    assert_eq!(
        response.get("ratelimit-remaining"),
        Some(&HeaderValue::from(1u64))
    );
    assert!(is(
        &run(&c, &dir, Method::GET, "/", &with_key("tg_bob"), "10.0.0.1").0,
        OK
    ));
    let (o, _, verdict) = run(&c, &dir, Method::GET, "/", &with_key("tg_bob"), "10.0.0.1");
    assert!(is(&o, (429, "quota exceeded")), "{o:?}");
    let Verdict::Respond(r) = verdict else {
        panic!("expected 429")
    };
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        r.header("ratelimit-remaining"),
        Some(&HeaderValue::from(0u64))
    );
    let (o, _, _) = run(&c, &dir, Method::GET, "/", &with_key("tg_bob"), "10.0.0.1");
    assert!(is(&o, (429, "rate limit exceeded")), "{o:?}");
}

#[test]
fn route_rate_limit_returns_headers_and_retry_after() {
    let counters = Counters::new();
    let dir = directory(&counters);
    let spec = RateLimitSpec {
        requests: 2,
        per: Per::Second,
        burst: None,
        key: Some("ip".into()),
    };
    let c = chain(vec![PolicySpec::RateLimit(spec)], &counters);
    let (o, state, _) = run(&c, &dir, Method::GET, "/", &HeaderMap::new(), "10.0.0.1");
    assert!(is(&o, OK));
    assert_eq!(
        state
            .rate_limit()
            .map(|s| (s.limit, s.remaining, s.reset_secs)),
        Some((2, 1, 1))
    );
    assert!(is(
        &run(&c, &dir, Method::GET, "/", &HeaderMap::new(), "10.0.0.1").0,
        OK
    ));
    let (o, _, verdict) = run(&c, &dir, Method::GET, "/", &HeaderMap::new(), "10.0.0.1");
    assert!(is(&o, (429, "rate limit exceeded")));
    let Verdict::Respond(r) = verdict else {
        panic!("expected 429")
    };
    assert_eq!(r.header("retry-after"), Some(&HeaderValue::from(1u64)));
    // Another address has its own bucket.
    assert!(is(
        &run(&c, &dir, Method::GET, "/", &HeaderMap::new(), "10.0.0.2").0,
        OK
    ));
}

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
        c.rewrite_path("/v1/users/42").as_deref(),
        Some("/users?id=42")
    );
    assert_eq!(c.rewrite_path("/v2/users/42"), None);
}

#[test]
fn compile_collects_every_problem_with_its_path() {
    let specs = vec![
        PolicySpec::RateLimit(RateLimitSpec {
            requests: 0,
            per: Per::Second,
            burst: Some(0),
            key: None,
        }),
        PolicySpec::KeyAuth(KeyAuthSpec::default()),
        PolicySpec::Rewrite(RewriteSpec {
            regex: "(".into(),
            replacement: "/x".into(),
        }),
    ];
    let problems = Chain::compile("r1", &specs, &Counters::new()).expect_err("invalid");
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "policies[0].requests",
            "policies[0].burst",
            "policies[2].regex"
        ]
    );
}

#[test]
fn two_auth_policies_naming_different_consumers_is_401() {
    let counters = Counters::new();
    let dir = directory(&counters);
    let c = chain(
        vec![
            PolicySpec::KeyAuth(KeyAuthSpec::default()),
            PolicySpec::KeyAuth(KeyAuthSpec {
                header: Some("x-other-key".into()),
                query: None,
            }),
        ],
        &counters,
    );
    let h = headers(&[("x-api-key", "tg_acme"), ("x-other-key", "tg_eve")]);
    assert!(is(
        &run(&c, &dir, Method::GET, "/", &h, "10.0.0.1").0,
        (401, "credentials name different consumers")
    ));
}
