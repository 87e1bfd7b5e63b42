//! What lives beside the config: schema mark, usage counters, admins and sessions.

#[path = "support/fixtures.rs"]
mod fixtures;

use fixtures::*;
use storage::*;

/// Opens the store's directory with sled itself. A store dropped a moment ago lets go of
/// the directory only once sled's writer threads have (the store's own open waits for
/// that too): a lock refusal is retried until it is lifted, for at most 5 s.
fn open_sled(dir: &tempfile::TempDir) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match sled::open(dir.path()) {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::yield_now();
            }
            other => return other.expect("sled opens"),
        }
    }
}

fn schema_mark(dir: &tempfile::TempDir) -> Option<u64> {
    let db = open_sled(dir);
    let meta = db.open_tree("meta").expect("meta");
    meta.get("schema")
        .expect("readable")
        .map(|v| u64::from_be_bytes(v.as_ref().try_into().expect("8 bytes")))
}

fn set_schema_mark(dir: &tempfile::TempDir, schema: Option<u64>) {
    let db = open_sled(dir);
    let meta = db.open_tree("meta").expect("meta");
    match schema {
        Some(s) => meta.insert("schema", &s.to_be_bytes()).map(drop),
        None => meta.remove("schema").map(drop),
    }
    .expect("written");
    db.flush().expect("flushed");
}

#[test]
fn new_store_writes_its_schema_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(open(&dir));
    assert_eq!(schema_mark(&dir), Some(SCHEMA_VERSION));
}

#[test]
fn refuses_a_newer_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(open(&dir));
    set_schema_mark(&dir, Some(SCHEMA_VERSION + 1));
    match Store::open(dir.path()) {
        Err(StoreError::Corrupt(why)) => assert!(why.contains("newer"), "{why}"),
        Err(other) => panic!("expected Corrupt, got {other:?}"),
        Ok(_) => panic!("a newer schema must be refused"),
    }
}

#[test]
fn migrates_data_without_a_schema_mark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    create(&store, Object::Upstream(upstream("orders")));
    drop(store);
    set_schema_mark(&dir, None);
    let store = open(&dir);
    assert_eq!(store.config().upstreams, vec![upstream("orders")]);
    drop(store);
    assert_eq!(schema_mark(&dir), Some(SCHEMA_VERSION));
}

#[test]
fn usage_is_saved_overwritten_and_loaded_without_a_revision() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let record = |consumer: &str, period: &str, count| UsageRecord {
        consumer: consumer.into(),
        period: period.into(),
        count,
    };
    store
        .save_usage(&[
            record("acme", "day:2026-11-27", 5),
            record("acme", "month:2026-11", 9),
        ])
        .expect("saved");
    store
        .save_usage(&[record("acme", "day:2026-11-27", 7)])
        .expect("saved");
    assert_eq!(store.revision(), 0);
    drop(store);
    let store = open(&dir);
    assert_eq!(
        store.load_usage().expect("loaded"),
        vec![
            record("acme", "day:2026-11-27", 7),
            record("acme", "month:2026-11", 9)
        ]
    );
    let dropped = store
        .prune_usage(|r| r.period.starts_with("month:"))
        .expect("pruned");
    assert_eq!(dropped, 1);
    assert_eq!(
        store.load_usage().expect("loaded"),
        vec![record("acme", "month:2026-11", 9)]
    );
}

#[test]
fn key_uses_are_saved_overwritten_loaded_and_forgotten_without_a_revision() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let (a, b) = (KeyHash::of(b"tg_a"), KeyHash::of(b"tg_b"));
    store
        .save_key_uses(&[(a, 1_800_000_000), (b, 1_800_000_005)])
        .expect("saved");
    store.save_key_uses(&[(a, 1_800_000_009)]).expect("saved");
    assert_eq!(store.revision(), 0);
    drop(store);
    let store = open(&dir);
    let mut uses = store.load_key_uses().expect("loaded");
    uses.sort_by_key(|(_, secs)| *secs);
    assert_eq!(uses, vec![(b, 1_800_000_005), (a, 1_800_000_009)]);
    store.forget_key_uses(&[b]).expect("forgotten");
    assert_eq!(
        store.load_key_uses().expect("loaded"),
        vec![(a, 1_800_000_009)]
    );
}

#[test]
fn admins_are_stored_and_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    assert!(!store.has_admins().expect("readable"));
    assert_eq!(store.admin_password_hash("admin").expect("readable"), None);
    store
        .set_admin_password("admin", "$argon2id$x")
        .expect("set");
    drop(store);
    let store = open(&dir);
    assert!(store.has_admins().expect("readable"));
    assert_eq!(
        store
            .admin_password_hash("admin")
            .expect("readable")
            .as_deref(),
        Some("$argon2id$x")
    );
}

#[test]
fn sessions_expire() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let session = Session {
        user: "admin".into(),
        expires: 1000,
    };
    store.save_session("h1", &session).expect("saved");
    assert_eq!(store.session("h1", 999).expect("readable"), Some(session));
    assert_eq!(store.session("h1", 1000).expect("readable"), None);
    assert_eq!(store.session("h1", 10).expect("readable"), None);
    store
        .save_session(
            "h2",
            &Session {
                user: "a".into(),
                expires: 50,
            },
        )
        .expect("saved");
    store.delete_session("h2").expect("deleted");
    assert_eq!(store.session("h2", 0).expect("readable"), None);
}

#[test]
fn expired_sessions_are_pruned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let session = |expires| Session {
        user: "admin".into(),
        expires,
    };
    store.save_session("old", &session(100)).expect("saved");
    store.save_session("new", &session(200)).expect("saved");
    assert_eq!(store.prune_sessions(150).expect("pruned"), 1);
    assert_eq!(store.prune_sessions(150).expect("pruned"), 0);
    assert_eq!(
        store.session("new", 150).expect("readable"),
        Some(session(200))
    );
    assert_eq!(store.session("old", 0).expect("readable"), None, "gone");
}

#[test]
fn a_new_password_ends_the_users_sessions_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let session = |user: &str| Session {
        user: user.into(),
        expires: 1000,
    };
    store
        .set_admin_password("admin", "$argon2id$old")
        .expect("set");
    store
        .save_session("mine", &session("admin"))
        .expect("saved");
    store
        .save_session("theirs", &session("ops"))
        .expect("saved");
    store
        .set_admin_password("admin", "$argon2id$new")
        .expect("set");
    assert_eq!(store.session("mine", 0).expect("readable"), None, "ended");
    assert_eq!(
        store.session("theirs", 0).expect("readable"),
        Some(session("ops")),
        "another user's session stays"
    );
}
