use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Argon2, Params};
use base64::Engine;
use http::{HeaderMap, HeaderValue, Method};

use super::*;
use crate::spec::{
    AclSpec, BasicAuthSpec, CredentialRecord, KeyAuthSpec, Per, PlanRateSpec, PlanSpec,
    QuotaPeriod, QuotaSpec, RateLimitSpec, RewriteSpec,
};
use crate::testing::{consumer, headers, key, outcome, view};

#[path = "tests/credentials.rs"]
mod credentials;
#[path = "tests/filters.rs"]
mod filters;
#[path = "tests/ordering.rs"]
mod ordering;

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
    // A key expires at its `expires` second: equal to now is expired already.
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
        (401, "api key expired")
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
        ..Default::default()
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
fn basic_auth_checks_refused_for_load_are_not_remembered_either_way() {
    let counters = Counters::new();
    let dir = directory(&counters);
    let cred = dir.credential("alice").expect("alice");
    let slow = crate::basic_auth::SlowChecks::new(1, None);
    // With the one slot taken, a password that needs argon2 is neither accepted nor refused.
    let held = slow.run(|| cred.verify_with(b"s3cret", &slow).is_none());
    assert_eq!(held, Some(true));
    assert!(cred.verified.get().is_none());
    assert_eq!(cred.verify_with(b"wrong", &slow), Some(false));
    assert_eq!(cred.verify_with(b"s3cret", &slow), Some(true));
    // Remembered now: no slot needed.
    assert_eq!(
        slow.run(|| cred.verify_with(b"s3cret", &slow) == Some(true)),
        Some(true)
    );
}

#[test]
fn basic_auth_verifies_argon2_and_caches_success() {
    let counters = Counters::new();
    let dir = directory(&counters);
    let c = chain(
        vec![PolicySpec::BasicAuth(BasicAuthSpec::default())],
        &counters,
    );
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
                ..Default::default()
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
