//! Running as several nodes, as the admin server sees it: the control node's token for its
//! config feed and its registry of followers ([`Nodes`]); a follower's state of its feed
//! ([`Following`]), which edge's follow loop updates and the status endpoint, the
//! read-only guard and the console show; and the feed's wire format ([`FeedAnswer`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// The cluster side of [`crate::AdminConfig`]. The default is a node on its own: no feed
/// served, not following.
#[derive(Clone, Default)]
pub struct Cluster {
    /// `TOLLGATE_CLUSTER_TOKEN`: with it, the feed is served to followers presenting it.
    pub token: Option<String>,
    /// Set on a follower: the REST API and console are then read-only.
    pub following: Option<Arc<Following>>,
    /// The followers that asked for the feed.
    pub nodes: Nodes,
    /// The whole config as the feed last encoded it.
    pub whole: Arc<WholeEncoding>,
}

/// The whole config as the feed last encoded it (JSON), shared by every answer sending it
/// and held weakly, so it is freed once none is: followers that all need the whole config
/// at once (each one after a restart of the control node) cost one encoding and one copy
/// in memory, not one each (30 MB for 100,000 keys).
#[derive(Default)]
pub struct WholeEncoding {
    last: tokio::sync::Mutex<Option<(u64, std::sync::Weak<Vec<u8>>)>>,
}

impl WholeEncoding {
    /// `config` (at `revision`) as JSON: the encoding still being sent when there is one,
    /// else a new one (made off the async workers; answers asking meanwhile wait for it).
    pub async fn get(
        &self,
        revision: u64,
        config: Arc<storage::Config>,
    ) -> Result<Arc<Vec<u8>>, EncodeError> {
        let mut last = self.last.lock().await;
        if let Some(json) = last
            .as_ref()
            .filter(|(at, _)| *at == revision)
            .and_then(|(_, json)| json.upgrade())
        {
            return Ok(json);
        }
        let json = tokio::task::spawn_blocking(move || serde_json::to_vec(&*config))
            .await
            .map_err(|e| EncodeError(e.to_string()))?
            .map_err(|e| EncodeError(e.to_string()))?;
        let json = Arc::new(json);
        *last = Some((revision, Arc::downgrade(&json)));
        Ok(json)
    }
}

/// Encoding the whole config failed (it never should: the config is plain data).
#[derive(Debug, thiserror::Error)]
#[error("encoding the whole config: {0}")]
pub struct EncodeError(String);

/// A follower's state of its feed. Cheap to read and update (atomics).
#[derive(Debug)]
pub struct Following {
    url: String,
    connected: AtomicBool,
    revision: AtomicU64,
    /// Unix seconds of the last successful answer of the control node; 0: none yet.
    last_sync: AtomicU64,
}

/// `follow` in a follower's `GET /api/v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowStatus {
    pub url: String,
    pub connected: bool,
    pub revision: u64,
    /// Unix seconds; `None` before the first successful sync of this process.
    pub last_sync: Option<u64>,
}

impl Following {
    /// Following the control node whose admin listener is at `url`, not connected yet.
    pub fn new(url: impl Into<String>, revision: u64) -> Self {
        Self {
            url: url.into(),
            connected: AtomicBool::new(false),
            revision: AtomicU64::new(revision),
            last_sync: AtomicU64::new(0),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The control node answered (unix seconds `now`); this node is at `revision`.
    pub fn synced(&self, revision: u64, now: u64) {
        self.revision.store(revision, Ordering::Relaxed);
        self.last_sync.store(now, Ordering::Relaxed);
        self.connected.store(true, Ordering::Relaxed);
    }

    /// The control node could not be reached, or refused.
    pub fn disconnected(&self) {
        self.connected.store(false, Ordering::Relaxed);
    }

    pub fn status(&self) -> FollowStatus {
        let last_sync = self.last_sync.load(Ordering::Relaxed);
        FollowStatus {
            url: self.url.clone(),
            connected: self.connected.load(Ordering::Relaxed),
            revision: self.revision.load(Ordering::Relaxed),
            last_sync: (last_sync > 0).then_some(last_sync),
        }
    }

    /// The refusal of a write on this node.
    pub fn refusal(&self) -> String {
        format!("this node follows {}: write to the control node", self.url)
    }
}

/// How long a follower counts as connected after its last feed request ended: it asks
/// again at once, so a few seconds cover the gap between two long polls.
pub const CONNECTED_GRACE: Duration = Duration::from_secs(5);

/// Nodes listed at most; past it the longest unseen one is forgotten.
pub const MAX_NODES: usize = 1024;

/// The control node's registry of followers, filled by their feed requests. Clones share it.
#[derive(Clone, Default)]
pub struct Nodes {
    inner: Arc<Mutex<HashMap<String, Node>>>,
}

#[derive(Debug)]
struct Node {
    address: String,
    version: String,
    revision: u64,
    /// Unix seconds.
    last_seen: u64,
    seen: Instant,
    /// Feed requests in flight.
    polling: usize,
}

impl Node {
    fn is_connected(&self) -> bool {
        self.polling > 0 || self.seen.elapsed() < CONNECTED_GRACE
    }
}

/// One node of `GET /api/v1/cluster/nodes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    pub id: String,
    /// Its proxy address, as it reports it.
    pub address: String,
    /// The revision it had when it last asked.
    pub revision: u64,
    pub version: String,
    /// Unix seconds.
    pub last_seen: u64,
    pub connected: bool,
}

/// Who asks for the feed (from the request's query).
#[derive(Debug, Clone)]
pub struct Caller {
    pub id: String,
    pub address: String,
    pub version: String,
    pub revision: u64,
}

impl Nodes {
    /// Records a feed request of `caller`; it counts as polling until the guard drops.
    pub fn poll(&self, caller: Caller, now: u64) -> PollGuard {
        let mut nodes = self.inner.lock();
        if !nodes.contains_key(&caller.id) && nodes.len() >= MAX_NODES {
            let oldest = nodes
                .iter()
                .filter(|(_, n)| n.polling == 0)
                .min_by_key(|(_, n)| n.seen)
                .map(|(id, _)| id.clone());
            if let Some(id) = oldest {
                nodes.remove(&id);
            }
        }
        let node = nodes.entry(caller.id.clone()).or_insert_with(|| Node {
            address: String::new(),
            version: String::new(),
            revision: 0,
            last_seen: now,
            seen: Instant::now(),
            polling: 0,
        });
        node.address = caller.address;
        node.version = caller.version;
        node.revision = caller.revision;
        node.last_seen = now;
        node.seen = Instant::now();
        node.polling += 1;
        PollGuard {
            nodes: self.clone(),
            id: caller.id,
        }
    }

    /// Every node, sorted by id.
    pub fn list(&self) -> Vec<NodeView> {
        let nodes = self.inner.lock();
        let mut list: Vec<NodeView> = nodes
            .iter()
            .map(|(id, n)| NodeView {
                id: id.clone(),
                address: n.address.clone(),
                revision: n.revision,
                version: n.version.clone(),
                last_seen: n.last_seen,
                connected: n.is_connected(),
            })
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }

    /// Followers connected now.
    pub fn connected(&self) -> usize {
        self.inner
            .lock()
            .values()
            .filter(|n| n.is_connected())
            .count()
    }
}

/// A feed request in flight; ends the node's poll when dropped (answered or cut off).
pub struct PollGuard {
    nodes: Nodes,
    id: String,
}

impl Drop for PollGuard {
    fn drop(&mut self) {
        let mut nodes = self.nodes.inner.lock();
        if let Some(node) = nodes.get_mut(&self.id) {
            node.polling = node.polling.saturating_sub(1);
            node.seen = Instant::now();
            node.last_seen = crate::unix_now();
        }
    }
}

/// The feed's answer: `mode` says which of `config` / `changes` it carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeedAnswer {
    pub mode: FeedMode,
    /// The control node's revision.
    pub revision: u64,
    /// Gateway nodes serving traffic: the control node's connected followers and itself.
    pub nodes: usize,
    /// The identity of the control node's store (`storage::Store::id`): revisions count
    /// within it. Absent from a control node of a build before identities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<storage::Config>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<storage::Delta>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedMode {
    /// Nothing changed after the follower's revision (before the wait ended).
    Current,
    /// `changes`: every change after the follower's revision, in order.
    Changes,
    /// `config`: the whole config at `revision`.
    Whole,
}

/// Query parameter names of the feed request.
pub mod query {
    pub const AFTER: &str = "after";
    pub const WAIT: &str = "wait";
    pub const NODE: &str = "node";
    pub const ADDRESS: &str = "address";
    pub const VERSION: &str = "version";
    /// The identity of the control node's store the follower's config came from
    /// (`storage::Store::id`); absent before its first sync.
    pub const STORE: &str = "store";
}

/// Path of the feed on the control node's admin listener.
pub const FEED_PATH: &str = "/api/v1/cluster/feed";

#[cfg(test)]
mod tests;
