//! Config reload: on every store revision, compile a new snapshot and swap it in. A failed
//! compile keeps the last good snapshot, counts `tollgate_config_reload_errors_total` and
//! keeps the error for the console until the next successful reload.
//!
//! [`Freshness`] publishes the revision the reloader has dealt with, so the admin server
//! can answer a write only once the proxy serves it (the contract: a 2xx applies from the
//! next request). The waiting happens on the admin path, never on the request path.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::watch;

use crate::gateway::Shared;
use crate::snapshot::Snapshot;

/// The store revision the reloader has dealt with (compiled and swapped in, or refused).
pub struct Freshness {
    applied: watch::Sender<u64>,
}

impl Freshness {
    /// Starts at `revision`, the one the first snapshot was compiled from.
    pub fn new(revision: u64) -> Freshness {
        Freshness {
            applied: watch::Sender::new(revision),
        }
    }

    /// Records that the reloader dealt with `revision` (and so with every older one).
    pub fn mark(&self, revision: u64) {
        self.applied.send_if_modified(|current| {
            let newer = revision > *current;
            if newer {
                *current = revision;
            }
            newer
        });
    }

    /// Follows the revision dealt with (for the admin server's `LiveView::applied`).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }
}

/// Follows `changes` (from `store.subscribe()`, taken before the first snapshot was
/// compiled so no change is missed) until the store's notifier closes. Runs on a tokio
/// runtime; compiles on the blocking pool (a new pool looks its target names up once).
pub async fn run(
    store: storage::Store,
    mut changes: tokio::sync::watch::Receiver<u64>,
    shared: Arc<Shared>,
) {
    loop {
        if changes.changed().await.is_err() {
            return;
        }
        let seen = *changes.borrow_and_update();
        let store = store.clone();
        let shared2 = shared.clone();
        let rt = tokio::runtime::Handle::current();
        // A panic in compile must not end reloading: it counts as a failed reload.
        if tokio::task::spawn_blocking(move || reload_once(&store, &shared2, &rt))
            .await
            .is_err()
        {
            shared.metrics.reload_errors.inc();
            shared.set_reload_error(Some("reload panicked".to_owned()));
        }
        shared.freshness.mark(seen);
    }
}

/// Compiles the store's current config against the live snapshot and swaps it in.
/// Returns whether the new snapshot is live.
pub fn reload_once(store: &storage::Store, shared: &Shared, rt: &tokio::runtime::Handle) -> bool {
    let (revision, config) = store.current();
    let previous = shared.snapshot.load_full();
    if previous.revision == revision && revision != 0 {
        shared.freshness.mark(revision);
        return true;
    }
    match Snapshot::compile(
        &config,
        revision,
        Some(&previous),
        &shared.metrics,
        &shared.counters,
        Some(rt),
    ) {
        Ok(next) => {
            let next = Arc::new(next);
            shared.snapshot.store(next.clone());
            // Key uses the old snapshot recorded while this one compiled.
            next.directory.carry_last_used(&previous.directory);
            shared
                .metrics
                .config_revision
                .set(i64::try_from(revision).unwrap_or(i64::MAX));
            shared.set_reload_error(None);
            forget_removed_targets(shared, &previous, &next);
            forget_removed_routes(shared, &previous, &next);
            shared.freshness.mark(revision);
            true
        }
        Err(e) => {
            shared.metrics.reload_errors.inc();
            shared.set_reload_error(Some(format!("revision {revision}: {e}")));
            shared.freshness.mark(revision);
            false
        }
    }
}

/// Drops the series of routes the proxy serves no more (deleted or disabled), and the
/// upstream time of routes that moved to another upstream. Requests still in flight on the
/// previous snapshot then count nothing more for them (`RouteMetrics::retire`).
fn forget_removed_routes(shared: &Shared, previous: &Snapshot, next: &Snapshot) {
    let live: HashMap<&str, &str> = next
        .routes
        .iter()
        .map(|r| (r.id.as_str(), r.pool.id()))
        .collect();
    let mut gone = HashSet::new();
    for r in &previous.routes {
        match live.get(r.id.as_str()) {
            None => {
                r.metrics.retire();
                gone.insert(r.id.as_str());
            }
            Some(upstream) if *upstream != r.pool.id() => {
                shared.metrics.forget_route_upstream(&r.id, r.pool.id());
            }
            Some(_) => {}
        }
    }
    shared.metrics.forget_routes(&gone);
    // Their cached answers go too: a route made again under the same id starts empty.
    if let Some(cache) = crate::cache::get() {
        cache.store.purge_routes(&gone);
    }
}

/// Drops the health series of targets that are in no pool any more, so the gauge shows
/// only configured targets (labelled by their configured `addr`), and the panic series of
/// upstreams that are gone.
fn forget_removed_targets(shared: &Shared, previous: &Snapshot, next: &Snapshot) {
    let live: HashSet<(&str, &str)> = next
        .pools
        .values()
        .flat_map(|p| {
            p.spec
                .targets
                .iter()
                .map(move |t| (p.id(), t.addr.as_str()))
        })
        .collect();
    for p in previous.pools.values() {
        if !next.pools.contains_key(p.id()) {
            let _ = shared.metrics.upstream_panic.remove_label_values(&[p.id()]);
        }
        for t in &p.spec.targets {
            if !live.contains(&(p.id(), t.addr.as_str())) {
                let _ = shared
                    .metrics
                    .target_healthy
                    .remove_label_values(&[p.id(), t.addr.as_str()]);
            }
        }
    }
}
