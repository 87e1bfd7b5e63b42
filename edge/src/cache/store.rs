//! The response cache's storage: answers (meta ready to serve, see `meta.rs`, and body) in memory, in a
//! TinyUFO cache weighed in KiB and bounded by `--cache-size`, plus an index of what is
//! stored by route and path (for purges and the size figure). A hit reads TinyUFO only (no
//! lock); filling, evicting and purging take the index's lock.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use pingora_cache::key::{CacheHashKey, CompactCacheKey, HashBinary};
use pingora_cache::storage::{
    HandleHit, HandleMiss, HitHandler, MissFinishType, MissHandler, PurgeOutcome, PurgeTarget,
    PurgeType,
};
use pingora_cache::trace::SpanHandle;
use pingora_cache::{CacheKey, CacheMeta, Storage};
use pingora_error::{Error, ErrorType, Result};
use tinyufo::TinyUfo;

use super::meta::{EmptyHeader, StoredMeta};

/// What an entry weighs besides its body and meta (key, index, bookkeeping), in bytes.
const ENTRY_OVERHEAD: usize = 160;
/// TinyUFO's unit of weight: entries are weighed in KiB (its weights are `u16`).
const WEIGHT_UNIT: usize = 1024;

/// The request path an entry answers, carried on the cache key (for purges by path).
#[derive(Debug, Clone)]
pub struct EntryPath(pub Box<str>);

/// One stored answer.
struct Entry {
    /// The full key hash: TinyUFO keys are 64-bit hashes of it, so a hit checks it.
    key: HashBinary,
    meta: StoredMeta,
    body: Bytes,
}

impl Entry {
    fn bytes(&self) -> usize {
        self.meta.bytes() + self.body.len() + ENTRY_OVERHEAD
    }
}

/// What the index knows of a stored entry.
struct Indexed {
    route: Arc<str>,
    path: Box<str>,
    bytes: u64,
}

/// The in-memory store (one per process).
pub struct MemoryStore {
    entries: TinyUfo<u128, Arc<Entry>>,
    index: Mutex<HashMap<HashBinary, Indexed>>,
    bytes: AtomicU64,
    capacity: u64,
    size_gauge: prometheus::IntGauge,
    empty_header: EmptyHeader,
}

impl MemoryStore {
    /// A store of at most `capacity` bytes; `size_gauge` follows what it holds.
    pub fn new(capacity: u64, size_gauge: prometheus::IntGauge) -> Result<MemoryStore> {
        let units = usize::try_from(capacity).unwrap_or(usize::MAX) / WEIGHT_UNIT;
        Ok(MemoryStore {
            entries: TinyUfo::new(units.max(1), (units / 8).max(1024)),
            index: Mutex::new(HashMap::new()),
            bytes: AtomicU64::new(0),
            capacity,
            size_gauge,
            empty_header: EmptyHeader::new()?,
        })
    }

    /// Bytes held now (bodies, metas and their bookkeeping).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The most bytes held (`--cache-size`).
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// How many answers are held now.
    pub fn entries(&self) -> usize {
        self.index.lock().len()
    }

    /// Drops every answer of `route` (of `path` only, when given); returns how many.
    pub fn purge(&self, route: &str, path: Option<&str>) -> u64 {
        self.purge_matching(|e| &*e.route == route && path.is_none_or(|p| &*e.path == p))
    }

    /// Drops every answer of the routes in `routes` (which left the config), in one pass.
    pub fn purge_routes(&self, routes: &HashSet<&str>) -> u64 {
        if routes.is_empty() {
            return 0;
        }
        self.purge_matching(|e| routes.contains(&*e.route))
    }

    fn purge_matching(&self, doomed: impl Fn(&Indexed) -> bool) -> u64 {
        let mut index = self.index.lock();
        let doomed: Vec<HashBinary> = index
            .iter()
            .filter(|(_, e)| doomed(e))
            .map(|(k, _)| *k)
            .collect();
        for key in &doomed {
            self.entries.remove(&u128::from_be_bytes(*key));
            if let Some(gone) = index.remove(key) {
                self.bytes.fetch_sub(gone.bytes, Ordering::Relaxed);
            }
        }
        self.publish_size();
        doomed.len() as u64
    }

    /// Drops `key` from the entries and the index.
    fn forget_locked(&self, index: &mut HashMap<HashBinary, Indexed>, key: HashBinary) {
        self.entries.remove(&u128::from_be_bytes(key));
        if let Some(gone) = index.remove(&key) {
            self.bytes.fetch_sub(gone.bytes, Ordering::Relaxed);
        }
        self.publish_size();
    }

    fn publish_size(&self) {
        self.size_gauge
            .set(i64::try_from(self.bytes()).unwrap_or(i64::MAX));
    }

    fn get(&self, key: HashBinary) -> Option<Arc<Entry>> {
        self.entries
            .get(&u128::from_be_bytes(key))
            .filter(|e| e.key == key)
    }

    /// Stores (or replaces) `entry`, evicting what TinyUFO chooses to make room.
    fn insert(&self, entry: Entry, route: &str, path: Box<str>) {
        let mut index = self.index.lock();
        self.insert_locked(&mut index, entry, route, path);
    }

    fn insert_locked(
        &self,
        index: &mut HashMap<HashBinary, Indexed>,
        entry: Entry,
        route: &str,
        path: Box<str>,
    ) {
        // The index's copy of the path is memory the entry costs too.
        let bytes = entry.bytes() + path.len();
        let key = entry.key;
        // An answer heavier than a quarter of the whole cache is not kept (one of 6 MB was
        // kept in a cache of 4 MB, above its bound); nor is what it replaced.
        if bytes as u64 > self.capacity / 4 {
            self.forget_locked(index, key);
            return;
        }
        let weight = u16::try_from(bytes.div_ceil(WEIGHT_UNIT)).unwrap_or(u16::MAX);
        // `put`, not `force_put`: TinyLFU admission, so a flood of answers asked for once
        // (a key part an attacker varies) cannot evict the answers asked for often. A new
        // answer it does not admit comes back in the evicted list.
        let evicted = self
            .entries
            .put(u128::from_be_bytes(key), Arc::new(entry), weight);
        let mut admitted = true;
        for gone in evicted {
            admitted &= gone.data.key != key;
            if let Some(e) = index.remove(&gone.data.key) {
                self.bytes.fetch_sub(e.bytes, Ordering::Relaxed);
            }
        }
        if !admitted {
            self.publish_size();
            return;
        }
        let route = match index.get(&key) {
            Some(old) if &*old.route == route => old.route.clone(),
            _ => Arc::from(route),
        };
        let item = Indexed {
            route,
            path,
            bytes: bytes as u64,
        };
        if let Some(old) = index.insert(key, item) {
            self.bytes.fetch_sub(old.bytes, Ordering::Relaxed);
        }
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.publish_size();
    }

    fn remove(&self, key: HashBinary) -> bool {
        let mut index = self.index.lock();
        let found = self.entries.remove(&u128::from_be_bytes(key)).is_some();
        if let Some(gone) = index.remove(&key) {
            self.bytes.fetch_sub(gone.bytes, Ordering::Relaxed);
        }
        self.publish_size();
        found
    }
}

fn target_bin(target: &PurgeTarget<'_>) -> HashBinary {
    let key: &CompactCacheKey = target.key();
    key.combined_bin()
}

#[async_trait]
impl Storage for MemoryStore {
    async fn lookup(
        &'static self,
        key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<Option<(CacheMeta, HitHandler)>> {
        let Some(entry) = self.get(key.combined_bin()) else {
            return Ok(None);
        };
        let meta = entry.meta.to_meta(&self.empty_header)?;
        let hit = Hit {
            body: entry.body.clone(),
            done: false,
            start: 0,
            end: entry.body.len(),
        };
        Ok(Some((meta, Box::new(hit))))
    }

    async fn get_miss_handler(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<MissHandler> {
        let path = key
            .extensions
            .get::<EntryPath>()
            .map(|p| p.0.clone())
            .unwrap_or_default();
        Ok(Box::new(Miss {
            store: self,
            key: key.combined_bin(),
            route: key.user_tag.clone(),
            path,
            meta: StoredMeta::new(meta)?,
            body: BytesMut::new(),
        }))
    }

    async fn purge(
        &'static self,
        target: PurgeTarget<'_>,
        _purge_type: PurgeType,
        _trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        Ok(if self.remove(target_bin(&target)) {
            PurgeOutcome::Purged(None)
        } else {
            PurgeOutcome::NotFound
        })
    }

    async fn update_meta(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<bool> {
        let bin = key.combined_bin();
        let stored = StoredMeta::new(meta)?;
        // Under the index's lock, so that a purge cannot come between the lookup and the
        // write and see its entry put back.
        let mut index = self.index.lock();
        let (Some(old), Some(indexed)) = (self.get(bin), index.get(&bin)) else {
            return Ok(false);
        };
        let (route, path) = (indexed.route.clone(), indexed.path.clone());
        let entry = Entry {
            key: bin,
            meta: stored,
            body: old.body.clone(),
        };
        self.insert_locked(&mut index, entry, &route, path);
        Ok(true)
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync + 'static) {
        self
    }
}

/// Reads a stored body: one chunk (shared, not copied), or the seeked range of it.
struct Hit {
    body: Bytes,
    done: bool,
    start: usize,
    end: usize,
}

#[async_trait]
impl HandleHit for Hit {
    async fn read_body(&mut self) -> Result<Option<Bytes>> {
        if self.done {
            return Ok(None);
        }
        self.done = true;
        Ok(Some(self.body.slice(self.start..self.end)))
    }

    async fn finish(
        self: Box<Self>,
        _storage: &'static (dyn Storage + Sync),
        _key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<()> {
        Ok(())
    }

    fn can_seek(&self) -> bool {
        true
    }

    fn seek(&mut self, start: usize, end: Option<usize>) -> Result<()> {
        if start >= self.body.len() {
            return Error::e_explain(
                ErrorType::InternalError,
                format!("seek start out of range {start} >= {}", self.body.len()),
            );
        }
        self.start = start;
        self.end = end.map_or(self.body.len(), |e| e.min(self.body.len()));
        self.done = false;
        Ok(())
    }

    fn get_eviction_weight(&self) -> usize {
        self.body.len()
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }

    fn as_any_mut(&mut self) -> &mut (dyn Any + Send + Sync) {
        self
    }
}

/// Collects an answer's body from the upstream; stored whole when it ends.
struct Miss {
    store: &'static MemoryStore,
    key: HashBinary,
    route: String,
    path: Box<str>,
    meta: StoredMeta,
    body: BytesMut,
}

#[async_trait]
impl HandleMiss for Miss {
    async fn write_body(&mut self, data: Bytes, _eof: bool) -> Result<()> {
        self.body.extend_from_slice(&data);
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<MissFinishType> {
        let Miss {
            store,
            key,
            route,
            path,
            meta,
            body,
        } = *self;
        let entry = Entry {
            key,
            meta,
            body: body.freeze(),
        };
        let size = entry.bytes();
        store.insert(entry, &route, path);
        Ok(MissFinishType::Created(size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(capacity: u64) -> &'static MemoryStore {
        let gauge = prometheus::IntGauge::new("size", "size").expect("gauge");
        Box::leak(Box::new(MemoryStore::new(capacity, gauge).expect("store")))
    }

    fn meta() -> StoredMeta {
        let now = std::time::SystemTime::now();
        let header = pingora_http::ResponseHeader::build(200, None).expect("header");
        StoredMeta::new(&CacheMeta::new(now, now, 0, 0, header)).expect("meta")
    }

    fn entry(n: u8, body: usize) -> Entry {
        Entry {
            key: [n; 16],
            meta: meta(),
            body: Bytes::from(vec![n; body]),
        }
    }

    #[test]
    fn purges_by_route_and_by_path() {
        let s = store(1 << 20);
        s.insert(entry(1, 10), "a", "/x".into());
        s.insert(entry(2, 10), "a", "/y".into());
        s.insert(entry(3, 10), "b", "/x".into());
        assert_eq!(s.purge("a", Some("/x")), 1);
        assert!(s.get([1; 16]).is_none());
        assert!(s.get([2; 16]).is_some());
        assert_eq!(s.purge("a", None), 1);
        assert_eq!(s.entries(), 1);
        assert_eq!(
            s.bytes(),
            (10 + meta().bytes() + ENTRY_OVERHEAD + "/y".len()) as u64
        );
    }

    #[test]
    fn stays_within_its_capacity() {
        let s = store(64 * 1024);
        for n in 0..200u8 {
            s.insert(entry(n, 4000), "r", "/".into());
        }
        assert!(s.bytes() <= 64 * 1024, "{} bytes held", s.bytes());
        assert!(s.entries() > 0);
    }

    #[test]
    fn replacing_an_entry_counts_it_once() {
        let s = store(1 << 20);
        s.insert(entry(1, 100), "r", "/".into());
        s.insert(entry(1, 50), "r", "/".into());
        assert_eq!(s.entries(), 1);
        assert_eq!(s.bytes(), (50 + meta().bytes() + ENTRY_OVERHEAD + 1) as u64);
    }
}
