//! `Store::apply`: existence rules, references, cascades, revisions and notification.

#[path = "support/fixtures.rs"]
mod fixtures;

use fixtures::*;
use storage::*;

#[test]
fn new_store_is_empty_at_revision_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    assert_eq!(store.revision(), 0);
    assert_eq!(*store.config(), Config::default());
}

#[test]
fn create_bumps_revision_and_notifies_subscribers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let mut rx = store.subscribe();
    assert_eq!(create(&store, Object::Upstream(upstream("orders"))), 1);
    assert!(rx.has_changed().expect("sender alive"));
    assert_eq!(*rx.borrow_and_update(), 1);
    assert_eq!(create(&store, Object::Route(route("orders", "orders"))), 2);
    assert_eq!(*rx.borrow_and_update(), 2);
    assert_eq!(store.revision(), 2);
    assert_eq!(store.config().routes, vec![route("orders", "orders")]);
}

#[test]
fn create_of_existing_id_is_conflict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    create(&store, Object::Upstream(upstream("orders")));
    let err = store
        .apply(Change::Create(Object::Upstream(upstream("orders"))), "t")
        .expect_err("conflict");
    assert!(
        matches!(&err, StoreError::Conflict { kind: Kind::Upstream, id } if id == "orders"),
        "{err:?}"
    );
    assert_eq!(store.revision(), 1);
}

#[test]
fn replace_and_delete_of_missing_id_are_not_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let err = store
        .apply(Change::Replace(Object::Plan(plan("gold"))), "t")
        .expect_err("missing");
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                kind: Kind::Plan,
                ..
            }
        ),
        "{err:?}"
    );
    let err = store
        .apply(
            Change::Delete {
                kind: Kind::Route,
                id: "nope".into(),
            },
            "t",
        )
        .expect_err("missing");
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                kind: Kind::Route,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.revision(), 0);
}

#[test]
fn replace_changes_the_stored_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    create(&store, Object::Upstream(upstream("orders")));
    let mut changed = upstream("orders");
    changed.retries = 5;
    apply(&store, Change::Replace(Object::Upstream(changed.clone())));
    assert_eq!(store.config().upstreams, vec![changed]);
}

#[test]
fn deleting_a_referenced_object_is_in_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    apply(
        &store,
        Change::Import {
            config: full_config(),
            replace: true,
        },
    );
    let cases = [
        (Kind::Upstream, "orders", "route orders"),
        (Kind::Plan, "gold", "consumer acme"),
        (Kind::JwtIssuer, "auth", "route orders"),
    ];
    for (kind, id, expected_by) in cases {
        let err = store
            .apply(
                Change::Delete {
                    kind,
                    id: id.into(),
                },
                "t",
            )
            .expect_err("in use");
        match err {
            StoreError::InUse { by, .. } => assert_eq!(by, expected_by),
            other => panic!("expected InUse, got {other:?}"),
        }
    }
    assert_eq!(store.revision(), 1);
}

#[test]
fn deleting_a_consumer_deletes_its_keys_and_credentials() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    apply(
        &store,
        Change::Import {
            config: full_config(),
            replace: true,
        },
    );
    create(&store, Object::Consumer(consumer("other", None)));
    create(&store, Object::Key(key("k2", "other")));
    apply(
        &store,
        Change::Delete {
            kind: Kind::Consumer,
            id: "acme".into(),
        },
    );
    let config = store.config();
    assert_eq!(config.keys, vec![key("k2", "other")]);
    assert!(config.credentials.is_empty());
    drop(store);
    let reopened = open(&dir);
    assert_eq!(reopened.config().keys, vec![key("k2", "other")]);
    assert!(reopened.config().credentials.is_empty());
}

#[test]
fn key_is_deleted_by_its_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    create(&store, Object::Consumer(consumer("acme", None)));
    create(&store, Object::Key(key("k1", "acme")));
    create(&store, Object::Key(key("k2", "acme")));
    apply(
        &store,
        Change::Delete {
            kind: Kind::Key,
            id: "k1".into(),
        },
    );
    assert_eq!(store.config().keys, vec![key("k2", "acme")]);
    drop(store);
    assert_eq!(open(&dir).config().keys, vec![key("k2", "acme")]);
}

#[test]
fn config_survives_reopen_sorted_by_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    for id in ["zeta", "alpha", "mid"] {
        create(&store, Object::Upstream(upstream(id)));
    }
    let before = store.config();
    // In order in memory too: each created object is placed where its id sorts.
    let ids: Vec<_> = before.upstreams.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, ["alpha", "mid", "zeta"]);
    drop(store);
    let store = open(&dir);
    assert_eq!(store.revision(), 3);
    assert_eq!(store.config(), before);
    let ids: Vec<_> = store
        .config()
        .upstreams
        .iter()
        .map(|u| u.id.clone())
        .collect();
    assert_eq!(ids, ["alpha", "mid", "zeta"]);
}

#[test]
fn audit_log_lists_changes_newest_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    create(&store, Object::Upstream(upstream("orders")));
    store
        .apply(
            Change::Create(Object::Route(route("orders", "orders"))),
            "alice",
        )
        .expect("applies");
    let log = store.audit_log(10).expect("log");
    let actions: Vec<_> = log
        .iter()
        .map(|e| (e.revision, e.action.as_str()))
        .collect();
    assert_eq!(
        actions,
        [(2, "create route orders"), (1, "create upstream orders")]
    );
    assert_eq!(log[0].actor, "alice");
    assert!(log[0].at > 1_700_000_000);
    assert_eq!(store.audit_log(1).expect("log").len(), 1);
}

#[test]
fn concurrent_changes_get_one_revision_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..5)
                    .map(|i| create(&store, Object::Upstream(upstream(&format!("u{t}-{i}")))))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut revisions: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("thread ran"))
        .collect();
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=20).collect::<Vec<_>>());
    let (revision, config) = store.current();
    assert_eq!(revision, 20);
    assert_eq!(config.upstreams.len(), 20);
}
