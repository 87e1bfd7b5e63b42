//! A store whose sled data is older than a revision it acknowledged is refused at open,
//! before anything is written to it; a store that is level with (or ahead of) its file
//! opens as before.

#[path = "support/fixtures.rs"]
mod fixtures;

use std::path::Path;

use fixtures::*;
use storage::*;

/// Applies `n` changes (a route's priority, over and over) and returns the last revision.
fn write_revisions(store: &Store, n: u64) -> u64 {
    let mut revision = store.revision();
    for _ in 0..n {
        let mut route = route("r", "up");
        route.priority = i32::try_from(revision % 1000).expect("small");
        let change = if store.config().routes.is_empty() {
            Change::Create(Object::Route(route))
        } else {
            Change::Replace(Object::Route(route))
        };
        revision = store.apply(change, "test").expect("applied");
    }
    revision
}

/// Copies sled's files (everything but the acknowledged-revision file) from `from` to `to`.
fn copy_sled_files(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("readable") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(acknowledged::FILE_NAME) {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_sled_files(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copied");
        }
    }
}

#[test]
fn every_acknowledged_write_is_recorded_beside_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    create(&store, Object::Upstream(upstream("up")));
    let revision = write_revisions(&store, 5);
    assert_eq!(
        acknowledged::read(dir.path()).expect("read"),
        Some(revision)
    );
    drop(store);
    let store = open(&dir);
    assert_eq!(store.revision(), revision);
}

#[test]
fn refuses_a_store_that_lost_acknowledged_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    create(&store, Object::Upstream(upstream("up")));
    let at_26 = write_revisions(&store, 25);
    assert_eq!(at_26, 26);
    store.flush().expect("flushed");
    drop(store);
    copy_sled_files(dir.path(), old.path());
    let store = open(&dir);
    assert_eq!(write_revisions(&store, 25), 51);
    drop(store);

    // The data goes back to revision 26 (a restored disk image); the file still says 51.
    for entry in std::fs::read_dir(dir.path()).expect("readable") {
        let entry = entry.expect("entry");
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with(acknowledged::FILE_NAME)
        {
            let path = entry.path();
            if path.is_dir() {
                std::fs::remove_dir_all(path).expect("removed");
            } else {
                std::fs::remove_file(path).expect("removed");
            }
        }
    }
    copy_sled_files(old.path(), dir.path());
    for _ in 0..2 {
        match Store::open(dir.path()) {
            Err(e @ StoreError::Behind { .. }) => {
                let message = e.to_string();
                for part in ["revision 26", "revision 51", "import"] {
                    assert!(message.contains(part), "{part} in {message}");
                }
                assert!(message.contains(&dir.path().display().to_string()));
            }
            Err(other) => panic!("expected Behind, got {other:?}"),
            Ok(store) => panic!("opened at revision {}", store.revision()),
        }
    }
}

#[test]
fn a_store_without_the_file_gets_one_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    create(&store, Object::Upstream(upstream("up")));
    let revision = write_revisions(&store, 3);
    drop(store);
    std::fs::remove_file(acknowledged::path(dir.path())).expect("removed");
    let store = open(&dir);
    assert_eq!(store.revision(), revision);
    assert_eq!(
        acknowledged::read(dir.path()).expect("read"),
        Some(revision)
    );
}
