//! Refused changes: every problem is reported, with its path, and nothing is written.

#[path = "support/fixtures.rs"]
mod fixtures;

use fixtures::*;
use storage::*;

fn problems(err: StoreError) -> Vec<(String, String)> {
    match err {
        StoreError::Invalid { problems } => {
            problems.into_iter().map(|p| (p.path, p.message)).collect()
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn paths(problems: &[(String, String)]) -> Vec<&str> {
    problems.iter().map(|(p, _)| p.as_str()).collect()
}

fn bad_route() -> RouteSpec {
    let mut r = route("orders", "nope");
    r.policies = vec![
        PolicySpec::KeyAuth(Default::default()),
        PolicySpec::RateLimit(policies::RateLimitSpec {
            requests: 10,
            per: policies::Per::Second,
            burst: Some(0),
            key: None,
        }),
    ];
    r
}

#[test]
fn create_reports_every_problem_relative_to_the_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let err = store
        .apply(Change::Create(Object::Route(bad_route())), "t")
        .expect_err("invalid");
    let found = problems(err);
    assert_eq!(paths(&found), ["upstream", "policies[1].burst"]);
    assert_eq!(found[0].1, "unknown upstream nope");
    assert_eq!(found[1].1, "must be > 0");
}

#[test]
fn import_reports_paths_prefixed_by_list_and_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let mut bad_target = upstream("Bad Id");
    bad_target.targets[0].addr = "127.0.0.1:0".into();
    let config = Config {
        upstreams: vec![bad_target],
        routes: vec![bad_route()],
        ..Config::default()
    };
    let err = store
        .apply(
            Change::Import {
                config,
                replace: false,
            },
            "t",
        )
        .expect_err("invalid");
    let found = problems(err);
    assert_eq!(
        paths(&found),
        [
            "upstreams[0].id",
            "upstreams[0].targets[0].addr",
            "routes[orders].upstream",
            "routes[orders].policies[1].burst",
        ]
    );
}

#[test]
fn invalid_change_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    create(&store, Object::Upstream(upstream("orders")));
    let before = store.config();
    let rx = store.subscribe();
    let mut broken = upstream("orders");
    broken.targets.clear();
    let err = store
        .apply(Change::Replace(Object::Upstream(broken)), "t")
        .expect_err("invalid");
    assert_eq!(paths(&problems(err)), ["targets"]);
    assert_eq!(store.revision(), 1);
    assert_eq!(store.config(), before);
    assert!(!rx.has_changed().expect("sender alive"));
    drop(store);
    let reopened = open(&dir);
    assert_eq!(reopened.revision(), 1);
    assert_eq!(reopened.config(), before);
    assert_eq!(reopened.audit_log(10).expect("log").len(), 1);
}

#[test]
fn references_to_missing_objects_are_problems() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let err = store
        .apply(
            Change::Create(Object::Consumer(consumer("acme", Some("gold")))),
            "t",
        )
        .expect_err("no plan");
    assert_eq!(
        problems(err),
        [("plan".to_owned(), "unknown plan gold".to_owned())]
    );
    let err = store
        .apply(Change::Create(Object::Key(key("k1", "ghost"))), "t")
        .expect_err("no consumer");
    assert_eq!(paths(&problems(err)), ["consumer"]);
    let mut r = route("r", "u");
    r.policies = vec![PolicySpec::Jwt(policies::JwtSpec {
        issuers: vec!["auth".into()],
        ..Default::default()
    })];
    let config = Config {
        upstreams: vec![upstream("u")],
        routes: vec![r],
        ..Config::default()
    };
    let err = store
        .apply(
            Change::Import {
                config,
                replace: true,
            },
            "t",
        )
        .expect_err("no issuer");
    assert_eq!(paths(&problems(err)), ["routes[r].policies[0].issuers[0]"]);
    assert_eq!(store.revision(), 0);
}

#[test]
fn duplicate_ids_in_an_import_are_problems() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let config = Config {
        upstreams: vec![upstream("a"), upstream("a")],
        ..Config::default()
    };
    let err = store
        .apply(
            Change::Import {
                config,
                replace: true,
            },
            "t",
        )
        .expect_err("duplicate");
    assert_eq!(
        problems(err),
        [(
            "upstreams[a].id".to_owned(),
            "duplicate upstream a".to_owned()
        )]
    );
}

#[test]
fn jwt_issuer_with_unusable_key_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let mut bad = issuer("auth");
    bad.algorithms = vec!["RS256".into()];
    bad.keys[0].secret = None;
    bad.keys[0].pem = Some("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----".into());
    let err = store
        .apply(Change::Create(Object::JwtIssuer(bad)), "t")
        .expect_err("unusable key");
    let found = problems(err);
    assert!(!found.is_empty());
    assert!(
        found.iter().all(|(p, _)| p.starts_with("keys[0]")),
        "{found:?}"
    );
}
