//! The store's health: a write the disk refuses changes nothing, marks the store degraded,
//! and the store recovers (reopened) once the disk takes writes again.

use super::recover::Fault;
use super::*;
use crate::spec::{RouteSpec, UpstreamSpec};
use crate::Object;

fn upstream(id: &str) -> Change {
    let spec: UpstreamSpec =
        serde_json::from_value(serde_json::json!({"id": id, "targets": [{"addr": "127.0.0.1:9"}]}))
            .expect("an upstream spec");
    Change::Create(Object::Upstream(spec))
}

fn route(id: &str) -> Change {
    let spec: RouteSpec = serde_json::from_value(
        serde_json::json!({"id": id, "paths": [format!("/{id}")], "upstream": "up"}),
    )
    .expect("a route spec");
    Change::Create(Object::Route(spec))
}

fn route_ids(store: &Store) -> Vec<String> {
    store.config().routes.iter().map(|r| r.id.clone()).collect()
}

fn acknowledged_in(dir: &Path) -> Option<u64> {
    acknowledged::read(dir).expect("readable acknowledged-revision file")
}

/// A store at revision 1 (one upstream).
fn store_with_upstream() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    assert_eq!(store.apply(upstream("up"), "test").expect("upstream"), 1);
    (dir, store)
}

#[test]
fn a_refused_write_changes_nothing_and_the_next_write_recovers() {
    let (dir, store) = store_with_upstream();
    store.set_fault(Fault::BeforeWrite);
    let refused = store.apply(route("a"), "test");
    assert!(
        matches!(&refused, Err(StoreError::Unwritable { cause, .. }) if cause.contains("No space left")),
        "{refused:?}"
    );
    assert_eq!(store.revision(), 1);
    assert!(route_ids(&store).is_empty());
    assert_eq!(acknowledged_in(dir.path()), Some(1));
    let health = store.health();
    assert!(!health.ok);
    assert_eq!(health.errors_by_op, [1, 0, 0]);
    assert!(health.last_error.is_some());

    store.set_fault(Fault::None);
    assert_eq!(store.apply(route("b"), "test").expect("recovered"), 2);
    assert!(store.health().ok);
    assert_eq!(route_ids(&store), ["b"]);
    assert_eq!(acknowledged_in(dir.path()), Some(2));
    let audit: Vec<u64> = store
        .audit_log(10)
        .expect("audit")
        .iter()
        .map(|e| e.revision)
        .collect();
    assert_eq!(audit, [2, 1], "no gap, no trace of the refused write");

    drop(store);
    let reopened = Store::open(dir.path()).expect("reopen");
    assert_eq!(reopened.revision(), 2);
    assert_eq!(route_ids(&reopened), ["b"]);
}

#[test]
fn a_write_reported_failed_but_stored_is_served_after_recovery() {
    let (dir, store) = store_with_upstream();
    let mut changes = store.subscribe();
    store.set_fault(Fault::AfterWrite);
    assert!(store.apply(route("a"), "test").is_err());
    assert_eq!(
        store.revision(),
        1,
        "not acknowledged: memory keeps revision 1"
    );
    assert!(route_ids(&store).is_empty());

    store.set_fault(Fault::None);
    store.check_health();
    assert!(store.health().ok);
    assert_eq!(store.revision(), 2);
    assert_eq!(route_ids(&store), ["a"]);
    assert_eq!(*changes.borrow_and_update(), 2, "the proxy hears of it");
    assert_eq!(acknowledged_in(dir.path()), Some(2));
    assert_eq!(store.apply(route("b"), "test").expect("next"), 3);
}

#[test]
fn a_write_stored_after_all_is_planned_on_by_the_recovering_write() {
    let (_dir, store) = store_with_upstream();
    store.set_fault(Fault::AfterWrite);
    assert!(store.apply(route("a"), "test").is_err());
    store.set_fault(Fault::None);
    // Creating the same route again: it exists now, so a conflict, not a second copy.
    assert!(matches!(
        store.apply(route("a"), "test"),
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.revision(), 2);
    assert!(store.health().ok);
}

#[test]
fn a_store_whose_probe_fails_stays_degraded_and_refuses_writes() {
    let (dir, store) = store_with_upstream();
    store.set_fault(Fault::BeforeWrite);
    assert!(store.apply(route("a"), "test").is_err());
    store.set_fault(Fault::Probe);
    store.check_health();
    assert!(!store.health().ok);
    assert!(store.apply(route("b"), "test").is_err());
    assert_eq!(store.revision(), 1);
    assert!(route_ids(&store).is_empty());
    assert!(
        store.audit_log(10).is_ok(),
        "reads work while writes are refused"
    );
    assert_eq!(store.health().errors_by_op, [3, 0, 0]);

    store.set_fault(Fault::None);
    store.check_health();
    assert!(store.health().ok, "{:?}", store.health());
    assert_eq!(store.apply(route("c"), "test").expect("recovered"), 2);
    assert_eq!(acknowledged_in(dir.path()), Some(2));
}

#[test]
fn an_unwritable_acknowledged_file_degrades_and_recovery_rewrites_it() {
    let (dir, store) = store_with_upstream();
    let temporary = dir.path().join(format!("{}.tmp", acknowledged::FILE_NAME));
    std::fs::create_dir(&temporary).expect("a directory in the way");
    assert_eq!(store.apply(route("a"), "test").expect("sled has it"), 2);
    assert!(!store.health().ok);
    assert_eq!(acknowledged_in(dir.path()), Some(1));

    std::fs::remove_dir(&temporary).expect("out of the way");
    store.check_health();
    assert!(store.health().ok);
    assert_eq!(acknowledged_in(dir.path()), Some(2));
    assert_eq!(store.revision(), 2);
}

#[test]
fn a_flush_of_a_store_that_cannot_recover_fails_as_flush_does_not() {
    let (_dir, store) = store_with_upstream();
    store.set_fault(Fault::BeforeWrite);
    assert!(store.apply(route("a"), "test").is_err());
    store.set_fault(Fault::Probe);
    assert!(matches!(store.flush(), Err(StoreError::Unwritable { .. })));
    store.set_fault(Fault::None);
    assert!(store.flush().is_ok());
    assert!(store.health().ok);
}

#[test]
fn an_unfinished_snapshot_left_by_a_full_disk_does_not_stop_the_store_opening() {
    let (dir, store) = store_with_upstream();
    drop(store);
    // What sled 0.34 leaves when the disk refuses a snapshot write (then takes for the
    // newest snapshot, and fails every open after as corrupt).
    let leftover = dir.path().join("snap.FFFFFFFFFFFFFFFF.generating");
    std::fs::write(&leftover, b"").expect("leftover");
    let store = Store::open(dir.path()).expect("opens");
    assert_eq!(store.revision(), 1);
    assert!(!leftover.exists());
}

/// A consumer and `n` keys: more tree writes than a single transaction takes.
fn many_keys(n: usize) -> Change {
    let keys: Vec<_> = (0..n)
        .map(|i| {
            serde_json::json!({"id": format!("k{i:05}"), "consumer": "acme",
                "hash": format!("{i:064x}"), "prefix": "tg_x", "created": 1_700_000_000u64})
        })
        .collect();
    let config = serde_json::from_value(serde_json::json!({
        "consumers": [{"id": "acme"}], "keys": keys
    }))
    .expect("a config");
    Change::Import {
        config,
        replace: false,
    }
}

const MANY: usize = journal::JOURNAL_ABOVE + 500;

fn key_count(store: &Store) -> usize {
    store.config().keys.len()
}

fn journal_is_empty(dir: &Path) -> bool {
    let db = reopen_db(dir).expect("sled");
    let trees = Trees::open(&db).expect("trees");
    trees.journal.is_empty() && trees.meta.get(b"journaled").expect("meta").is_none()
}

#[test]
fn a_large_change_goes_through_the_journal_and_leaves_it_empty() {
    let (dir, store) = store_with_upstream();
    assert_eq!(store.apply(many_keys(MANY), "test").expect("import"), 2);
    assert_eq!(
        store.apply(route("a"), "test").expect("a small one after"),
        3
    );
    drop(store);
    assert!(journal_is_empty(dir.path()));
    let reopened = Store::open(dir.path()).expect("reopen");
    assert_eq!((reopened.revision(), key_count(&reopened)), (3, MANY));
    assert_eq!(route_ids(&reopened), ["a"]);
    // Deleting the consumer removes every key: as many removals, journaled too.
    let gone = Change::Delete {
        kind: Kind::Consumer,
        id: "acme".to_owned(),
    };
    assert_eq!(reopened.apply(gone, "test").expect("delete"), 4);
    drop(reopened);
    let reopened = Store::open(dir.path()).expect("reopen");
    assert_eq!((reopened.revision(), key_count(&reopened)), (4, 0));
    assert!(reopened.config().consumers.is_empty());
}

#[test]
fn a_large_change_interrupted_before_its_commit_leaves_the_config_as_it_was() {
    let (dir, store) = store_with_upstream();
    store.set_fault(Fault::JournalFilled);
    assert!(store.apply(many_keys(MANY), "test").is_err());
    assert_eq!((store.revision(), key_count(&store)), (1, 0));
    drop(store);
    let reopened = Store::open(dir.path()).expect("reopen");
    assert_eq!((reopened.revision(), key_count(&reopened)), (1, 0));
    assert_eq!(reopened.audit_log(10).expect("audit").len(), 1);
    drop(reopened);
    assert!(
        journal_is_empty(dir.path()),
        "the partial journal is dropped"
    );
}

#[test]
fn a_large_change_interrupted_after_its_commit_is_finished_by_the_next_open() {
    let (dir, store) = store_with_upstream();
    store.set_fault(Fault::JournalCommitted);
    assert!(store.apply(many_keys(MANY), "test").is_err());
    drop(store);
    let reopened = Store::open(dir.path()).expect("reopen");
    assert_eq!((reopened.revision(), key_count(&reopened)), (2, MANY));
    assert_eq!(acknowledged_in(dir.path()), Some(2));
    drop(reopened);
    assert!(journal_is_empty(dir.path()));
}

#[test]
fn a_large_change_interrupted_after_its_commit_is_finished_by_recovery() {
    let (_dir, store) = store_with_upstream();
    store.set_fault(Fault::JournalCommitted);
    assert!(store.apply(many_keys(MANY), "test").is_err());
    store.set_fault(Fault::None);
    store.check_health();
    assert!(store.health().ok);
    assert_eq!((store.revision(), key_count(&store)), (2, MANY));
}
