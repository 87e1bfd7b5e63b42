//! The feed: resuming after a revision, the whole config when the history does not reach
//! back, never a skipped revision, the history's bounds, and a follower's copy.

use super::*;
use crate::{Change, Store, StoreError};

fn object(kind: &str, json: serde_json::Value) -> Object {
    serde_json::from_value(serde_json::json!({"kind": kind, "object": json})).expect("an object")
}

fn upstream(id: &str) -> Change {
    Change::Create(object(
        "upstream",
        serde_json::json!({"id": id, "targets": [{"addr": "127.0.0.1:9"}]}),
    ))
}

fn route(id: &str) -> Change {
    Change::Create(object(
        "route",
        serde_json::json!({"id": id, "paths": [format!("/{id}")], "upstream": "up"}),
    ))
}

fn consumer(id: &str) -> Change {
    Change::Create(object("consumer", serde_json::json!({"id": id})))
}

fn key(id: &str, consumer: &str) -> Change {
    let (_, hash, prefix) = crate::new_api_key();
    Change::Create(object(
        "key",
        serde_json::json!({"id": id, "consumer": consumer, "hash": hash, "prefix": prefix,
            "created": 1}),
    ))
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    (dir, store)
}

/// A control node at revision 5: upstream, routes a, b, consumer acme with key k1.
fn control() -> (tempfile::TempDir, Store) {
    let (dir, store) = open();
    for change in [
        upstream("up"),
        route("a"),
        route("b"),
        consumer("acme"),
        key("k1", "acme"),
    ] {
        store.apply(change, "test").expect("change");
    }
    assert_eq!(store.revision(), 5);
    (dir, store)
}

/// Applies what the control node's feed answers after the follower's revision.
fn sync(follower: &Store, control: &Store) -> Result<u64, StoreError> {
    let replica = match control.changes_after(follower.revision()) {
        Feed::Current { revision } => return Ok(revision),
        Feed::Changes { deltas, .. } => {
            Replica::Changes(deltas.iter().map(|d| (**d).clone()).collect())
        }
        Feed::Whole { revision, config } => Replica::Whole {
            revision,
            config: (*config).clone(),
        },
    };
    follower.apply_replica(replica, "http://control")
}

fn revisions(feed: &Feed) -> Vec<u64> {
    match feed {
        Feed::Changes { deltas, .. } => deltas.iter().map(|d| d.revision).collect(),
        other => panic!("expected changes, got {other:?}"),
    }
}

#[test]
fn resumes_after_a_revision_with_every_later_change_in_order() {
    let (_dir, control) = control();
    assert_eq!(revisions(&control.changes_after(2)), [3, 4, 5]);
    assert_eq!(revisions(&control.changes_after(0)), [1, 2, 3, 4, 5]);
    assert!(matches!(
        control.changes_after(5),
        Feed::Current { revision: 5 }
    ));
    let feed = control.changes_after(4);
    let Feed::Changes { deltas, .. } = &feed else {
        panic!("{feed:?}")
    };
    assert_eq!(deltas[0].action, "create key k1");
    assert!(matches!(&deltas[0].upserts[..], [Object::Key(k)] if k.id == "k1"));
}

#[test]
fn a_follower_converges_at_the_same_revisions() {
    let (_c, control) = control();
    let (_f, follower) = open();
    assert_eq!(sync(&follower, &control).expect("first sync"), 5);
    assert_eq!(*follower.config(), *control.config());

    control
        .apply(
            Change::Delete {
                kind: Kind::Consumer,
                id: "acme".into(),
            },
            "test",
        )
        .expect("delete acme");
    control.apply(route("c"), "test").expect("route c");
    assert_eq!(revisions(&control.changes_after(5)), [6, 7]);
    assert_eq!(sync(&follower, &control).expect("changes"), 7);
    assert_eq!(*follower.config(), *control.config());
    assert!(
        follower.config().keys.is_empty(),
        "the cascade reached the follower"
    );

    let audit = follower.audit_log(10).expect("audit");
    assert_eq!(audit[0].revision, 7);
    assert_eq!(audit[0].actor, "sync");
    assert_eq!(audit[0].action, "sync from http://control: create route c");
    assert_eq!(audit[1].revision, 6);
}

#[test]
fn a_follower_keeps_its_copy_across_a_restart() {
    let (_c, control) = control();
    let dir = tempfile::tempdir().expect("tempdir");
    let follower = Store::open(dir.path()).expect("open");
    sync(&follower, &control).expect("sync");
    drop(follower);
    let follower = Store::open(dir.path()).expect("reopen");
    assert_eq!(follower.revision(), 5);
    assert_eq!(*follower.config(), *control.config());
}

#[test]
fn a_restarted_control_node_answers_the_whole_config() {
    let (dir, control) = control();
    drop(control);
    let control = Store::open(dir.path()).expect("reopen");
    assert!(matches!(
        control.changes_after(3),
        Feed::Whole { revision: 5, .. }
    ));
    assert!(matches!(
        control.changes_after(5),
        Feed::Current { revision: 5 }
    ));
    control.apply(route("c"), "test").expect("route c");
    assert_eq!(revisions(&control.changes_after(5)), [6]);
    assert!(matches!(
        control.changes_after(4),
        Feed::Whole { revision: 6, .. }
    ));
}

#[test]
fn a_follower_ahead_of_the_control_node_gets_the_whole_config_and_goes_back() {
    let (_c, control) = control();
    let (dir, follower) = open();
    sync(&follower, &control).expect("sync");
    follower
        .apply(route("local"), "test")
        .expect("a local write");
    assert!(matches!(
        control.changes_after(6),
        Feed::Whole { revision: 5, .. }
    ));
    assert_eq!(sync(&follower, &control).expect("back"), 5);
    assert_eq!(*follower.config(), *control.config());
    drop(follower);
    let reopened = Store::open(dir.path()).expect("a store sent back opens");
    assert_eq!(reopened.revision(), 5);
}

#[test]
fn changes_that_skip_a_revision_are_refused_and_change_nothing() {
    let (_c, control) = control();
    let (_f, follower) = open();
    follower
        .apply_replica(
            Replica::Whole {
                revision: 2,
                config: Config::default(),
            },
            "http://control",
        )
        .expect("whole at 2");
    let later: Vec<Delta> = match control.changes_after(3) {
        Feed::Changes { deltas, .. } => deltas.iter().map(|d| (**d).clone()).collect(),
        other => panic!("{other:?}"),
    };
    let refused = follower.apply_replica(Replica::Changes(later), "http://control");
    assert!(
        matches!(refused, Err(StoreError::OutOfOrder { current: 2, got: 4 })),
        "{refused:?}"
    );
    assert_eq!(follower.revision(), 2);
    assert!(follower.config().routes.is_empty());
}

#[test]
fn an_invalid_replica_is_refused() {
    let (_f, follower) = open();
    let mut config = Config::default();
    let Object::Route(r) = object(
        "route",
        serde_json::json!({"id": "r", "paths": ["/r"], "upstream": "missing"}),
    ) else {
        panic!("a route")
    };
    config.routes.push(r);
    let refused = follower.apply_replica(
        Replica::Whole {
            revision: 3,
            config,
        },
        "http://control",
    );
    assert!(
        matches!(refused, Err(StoreError::Invalid { .. })),
        "{refused:?}"
    );
    assert_eq!(follower.revision(), 0);
}

/// The whole delta from `old` to `new`, however large.
fn small(old: &Config, new: &Config, revision: u64) -> Delta {
    delta(old, new, revision, String::new(), usize::MAX).expect("no limit")
}

#[test]
fn the_history_is_bounded_by_revisions() {
    let mut history = History::with_bounds(0, 3, 100);
    for revision in 1..=5 {
        history.push(small(&Config::default(), &Config::default(), revision));
    }
    assert!(history.after(1).is_none(), "revision 2 was dropped");
    let kept: Vec<u64> = history
        .after(2)
        .expect("reaches back to 2")
        .iter()
        .map(|d| d.revision)
        .collect();
    assert_eq!(kept, [3, 4, 5]);
    assert!(history.after(6).is_none(), "not a revision it has seen");
}

#[test]
fn a_large_import_empties_the_history_instead_of_pinning_memory() {
    let (_dir, control) = control();
    let mut config = (*control.config()).clone();
    let Change::Create(Object::Key(template)) = key("x", "acme") else {
        panic!("a key")
    };
    for i in 0..MAX_OBJECTS + 1 {
        let mut k = template.clone();
        k.id = format!("bulk{i:06}");
        let mut bytes = [0; 32];
        bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
        k.hash = policies::KeyHash(bytes);
        config.keys.push(k);
    }
    let big = delta(&control.config(), &config, 6, "import".into(), MAX_OBJECTS);
    assert!(big.is_none(), "not even built");
    let mut history = History::new(5);
    history.record(6, big);
    assert!(history.after(5).is_none(), "too big to keep");
    assert!(history.after(6).is_some_and(|d| d.is_empty()));
}

#[test]
fn the_history_is_bounded_by_objects() {
    let (_dir, control) = control();
    let mut history = History::with_bounds(5, MAX_REVISIONS, 3);
    let base = control.config();
    let mut next = (*base).clone();
    next.routes.clear();
    // Revision 6 deletes two routes; 7 and 8 change nothing (one slot each).
    history.push(small(&base, &next, 6));
    history.push(small(&next, &next, 7));
    assert!(history.after(5).is_some());
    history.push(small(&next, &next, 8));
    assert!(
        history.after(5).is_none(),
        "four objects over a bound of three"
    );
    assert_eq!(history.after(6).map(|d| d.len()), Some(2));
}

#[test]
fn a_large_replica_reopens_sled_and_the_store_keeps_working() {
    let (_c, control) = control();
    let mut config = (*control.config()).clone();
    let Change::Create(Object::Key(template)) = key("x", "acme") else {
        panic!("a key")
    };
    for i in 0..1500u64 {
        let mut k = template.clone();
        k.id = format!("bulk{i:06}");
        let mut bytes = [0; 32];
        bytes[..8].copy_from_slice(&i.to_be_bytes());
        k.hash = policies::KeyHash(bytes);
        config.keys.push(k);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let follower = Store::open(dir.path()).expect("open");
    let whole = Replica::Whole {
        revision: 9,
        config: config.clone(),
    };
    assert_eq!(
        follower
            .apply_replica(whole, "http://control")
            .expect("whole"),
        9
    );
    assert!(follower.health().ok, "{:?}", follower.health());
    control.apply(route("c"), "test").expect("route c");
    let next = Delta {
        revision: 10,
        ..(*revisions_of(&control, 5)[0]).clone()
    };
    assert_eq!(
        follower
            .apply_replica(Replica::Changes(vec![next]), "http://control")
            .expect("changes after the reopen"),
        10
    );
    drop(follower);
    let reopened = Store::open(dir.path()).expect("reopen");
    assert_eq!(reopened.revision(), 10);
    assert_eq!(reopened.config().keys.len(), 1501);
    assert!(reopened.config().routes.iter().any(|r| r.id == "c"));
}

fn revisions_of(store: &Store, after: u64) -> Vec<Arc<Delta>> {
    match store.changes_after(after) {
        Feed::Changes { deltas, .. } => deltas,
        other => panic!("{other:?}"),
    }
}
