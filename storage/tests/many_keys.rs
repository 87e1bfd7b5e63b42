//! A store with many keys: read back whole after a reopen, and kept in memory without
//! spare room (the in-memory config is what a 100,000-key gateway mostly holds).

#[path = "support/fixtures.rs"]
mod fixtures;

use fixtures::*;
use storage::*;

fn with_keys(n: usize) -> Config {
    let mut config = Config {
        consumers: vec![consumer("acme", None), consumer("globex", None)],
        ..Config::default()
    };
    let owner = |i: usize| if i % 2 == 0 { "acme" } else { "globex" };
    config.keys = (0..n).map(|i| key(&format!("k{i:05}"), owner(i))).collect();
    config
}

#[test]
fn reopened_store_reads_every_key_back() {
    // A small store is read through the store's own sled handle, a large one through a
    // handle of its own: both ways read everything back and keep writing.
    for read_apart_above in [u64::MAX, 0] {
        let dir = tempfile::tempdir().expect("tempdir");
        let reopen =
            || Store::open_reading_apart_above(dir.path(), read_apart_above).expect("store opens");
        let store = reopen();
        let imported = with_keys(3000);
        apply(
            &store,
            Change::Import {
                config: imported.clone(),
                replace: false,
            },
        );
        drop(store);
        let store = reopen();
        assert_eq!(store.config().keys, imported.keys);
        // The reopened store writes as well as it reads.
        create(&store, Object::Key(key("k99999", "acme")));
        drop(store);
        assert_eq!(reopen().config().keys.len(), 3001);
    }
}

#[test]
fn in_memory_lists_hold_no_spare_room() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    apply(
        &store,
        Change::Import {
            config: with_keys(1000),
            replace: false,
        },
    );
    let keys = &store.config().keys;
    assert_eq!(keys.capacity(), keys.len());
    // One more key must not double the list's allocation.
    create(&store, Object::Key(key("k99999", "acme")));
    let keys = &store.config().keys;
    assert_eq!((keys.len(), keys.capacity()), (1001, 1001));
    drop(store);
    let keys = &open(&dir).config().keys;
    assert_eq!((keys.len(), keys.capacity()), (1001, 1001));
}

#[test]
fn a_hash_that_moves_to_another_key_id_stays_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let mut config = with_keys(2);
    apply(
        &store,
        Change::Import {
            config: config.clone(),
            replace: true,
        },
    );
    // k00000 goes; a new id takes its hash in the same change.
    let mut moved = config.keys.remove(0);
    moved.id = "k77777".to_owned();
    config.keys.push(moved.clone());
    apply(
        &store,
        Change::Import {
            config,
            replace: true,
        },
    );
    drop(store);
    let keys = &open(&dir).config().keys;
    assert_eq!(keys.len(), 2);
    assert_eq!(keys.iter().find(|k| k.hash == moved.hash), Some(&moved));
}
