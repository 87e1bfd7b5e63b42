//! The follower's side of the config feed: long-polls the control node's
//! `GET /api/v1/cluster/feed` (cluster token, HTTPS verified when the URL says so) and
//! applies what it answers to the local store at the control node's revisions, so this
//! node starts and serves from its own copy when the control node is away. Reconnects with
//! capped, jittered backoff. Keeps [`Following`] (status, read-only guard), the node count
//! ([`LiveNodes`]) and `tollgate_config_sync_lag_seconds` up to date.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use admin_ui::cluster::{query, FeedAnswer, FeedMode, Following, FEED_PATH};
use prometheus::{Gauge, Opts, Registry};
use rand::Rng;
use storage::{Replica, Store, StoreError};

use super::LiveNodes;

/// Seconds the control node may hold a feed request open waiting for a change.
pub const WAIT_SECS: u64 = 25;
/// First pause after a failed request; doubled after each further failure up to
/// [`MAX_BACKOFF`], each pause drawn between half of it and all of it.
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Connecting to the control node may take this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Beyond the wait, how long an answer may take (a whole config of 100,000 keys).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the follower cannot start, or a poll failed.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("--follow {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("--follow needs TOLLGATE_CLUSTER_TOKEN (the control node's)")]
    NoToken,
    #[error("--follow-ca {path}: {reason}")]
    Ca { path: PathBuf, reason: String },
    #[error("cannot build the feed client: {0}")]
    Client(String),
    #[error("the control node cannot be reached: {0}")]
    Request(#[from] reqwest::Error),
    #[error("the control node answered {status}: {error}")]
    Refused { status: u16, error: String },
    #[error("the control node's answer does not decode: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("the received config cannot be applied: {0}")]
    Apply(#[from] StoreError),
    #[error("applying the received config did not finish: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(
        "the control node's store is another one than this node's config came from ({followed}, \
         now {now}) and it is empty (a new data directory?): not applied, this node keeps \
         serving its own copy; restore the control node's data, or remove this node's data \
         directory to take the empty config"
    )]
    EmptyOtherStore { followed: String, now: String },
    #[error("the control node's answer is over {cap} bytes: not read")]
    TooBig { cap: usize },
}

/// What `tollgate run --follow` was given.
#[derive(Debug, Clone)]
pub struct FollowConfig {
    /// The control node's admin listener (`http://` or `https://`), without a trailing `/`.
    pub url: String,
    pub token: String,
    /// Extra CA certificate (PEM) to verify an `https://` control node with.
    pub ca: Option<PathBuf>,
    pub node_id: String,
    /// This node's proxy address, as the control node lists it.
    pub address: String,
    pub version: String,
}

impl FollowConfig {
    /// Checks the URL (`http` or `https`, a host, nothing after the authority but `/`) and
    /// that a token is set.
    pub fn new(
        url: &str,
        token: Option<String>,
        ca: Option<PathBuf>,
        node_id: String,
        address: String,
        version: &str,
    ) -> Result<Self, FollowError> {
        let bad = |reason: &str| FollowError::Url {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad("must start with http:// or https://"));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(bad("names no host"));
        }
        if parsed.path() != "/"
            || parsed.query().is_some()
            || parsed.fragment().is_some()
            || !parsed.username().is_empty()
        {
            return Err(bad(
                "must be the control node's admin listener only (scheme, host, port)",
            ));
        }
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or(FollowError::NoToken)?;
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            token,
            ca,
            node_id,
            address,
            version: version.to_owned(),
        })
    }
}

/// The default node id: the host name and the proxy port (`web-3:8080`).
pub fn default_node_id(proxy_port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{proxy_port}")
}

/// The running follower.
pub struct Follower {
    config: FollowConfig,
    client: reqwest::Client,
    store: Store,
    following: Arc<Following>,
    nodes: Arc<LiveNodes>,
    lag: Gauge,
    started: Instant,
}

impl Follower {
    /// Builds the HTTP client (certificates verified; `--follow-ca` added to the roots) and
    /// registers `tollgate_config_sync_lag_seconds` on `registry`.
    pub fn new(
        config: FollowConfig,
        store: Store,
        following: Arc<Following>,
        nodes: Arc<LiveNodes>,
        registry: &Registry,
    ) -> Result<Self, FollowError> {
        let client = client(config.ca.as_deref())?;
        let lag = Gauge::with_opts(Opts::new(
            "tollgate_config_sync_lag_seconds",
            "Follower: 0 while the control node's feed answers and this node applied it; \
             else seconds since the last successful sync (since start when none yet)",
        ))?;
        registry.register(Box::new(lag.clone()))?;
        Ok(Self {
            config,
            client,
            store,
            following,
            nodes,
            lag,
            started: Instant::now(),
        })
    }

    /// Follows the control node until the process ends.
    pub async fn run(self) {
        let this = Arc::new(self);
        tokio::spawn(Arc::clone(&this).update_lag());
        let mut backoff = Backoff::default();
        let mut failing: Option<std::mem::Discriminant<FollowError>> = None;
        loop {
            match this.poll_once().await {
                Ok(revision) => {
                    if failing.take().is_some() {
                        tracing::info!(url = %this.config.url, revision, "following the control node again");
                    }
                    backoff.reset();
                }
                Err(e) => {
                    this.following.disconnected();
                    let pause = backoff.next_pause();
                    // The first failure of each kind in a run is a warning; the repeats
                    // are debug.
                    let kind = std::mem::discriminant(&e);
                    if failing != Some(kind) {
                        tracing::warn!(url = %this.config.url, error = %e, "config feed failed; retrying with backoff");
                        failing = Some(kind);
                    } else {
                        tracing::debug!(url = %this.config.url, error = %e, ?pause, "config feed failed again");
                    }
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    /// One feed request and what it brings applied; returns the local revision after it.
    async fn poll_once(&self) -> Result<u64, FollowError> {
        let after = self.store.revision();
        let followed = self.store.followed_store()?;
        // Not connected yet (start, or after a failure): ask without waiting, so the
        // control node answers at once and the status says connected (and in sync) at once.
        let wait = if self.following.status().connected {
            WAIT_SECS
        } else {
            0
        };
        let mut request = self
            .client
            .get(format!("{}{FEED_PATH}", self.config.url))
            .bearer_auth(&self.config.token)
            .query(&[
                (query::AFTER, after.to_string()),
                (query::WAIT, wait.to_string()),
                (query::NODE, self.config.node_id.clone()),
                (query::ADDRESS, self.config.address.clone()),
                (query::VERSION, self.config.version.clone()),
            ]);
        if let Some(followed) = &followed {
            request = request.query(&[(query::STORE, followed)]);
        }
        let answer = request
            .timeout(Duration::from_secs(wait) + ANSWER_TIMEOUT)
            .send()
            .await?;
        let status = answer.status();
        let body = read_capped(answer, MAX_ANSWER_BYTES).await?;
        if !status.is_success() {
            let error = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
            return Err(FollowError::Refused {
                status: status.as_u16(),
                error,
            });
        }
        let store = self.store.clone();
        let source = self.config.url.clone();
        // Decoding a whole config of 100,000 keys and writing it: off the async workers.
        let (revision, nodes) = tokio::task::spawn_blocking(move || {
            let answer: FeedAnswer = serde_json::from_slice(&body)?;
            drop(body);
            let nodes = answer.nodes;
            let from = answer.store.clone();
            // Another store than the one this config came from: the control node answers
            // with its whole config (never its revisions on top of ours). An empty one is
            // far more often a control node started on a wrong or new data directory than
            // an operator's wish: it is not taken over a config that has something.
            let other_store = matches!((&followed, &from), (Some(f), Some(n)) if f != n);
            if other_store
                && answer.config.as_ref().is_some_and(is_empty)
                && !is_empty(&store.config())
            {
                return Err(FollowError::EmptyOtherStore {
                    followed: followed.unwrap_or_default(),
                    now: from.unwrap_or_default(),
                });
            }
            let replica = replica_of(answer)?;
            let revision = match replica {
                Some(replica) => store.apply_replica(replica, &source)?,
                None => store.revision(),
            };
            if let Some(from) = from.filter(|n| followed.as_deref() != Some(n.as_str())) {
                store.set_followed_store(&from)?;
                if other_store {
                    tracing::warn!(
                        url = %source,
                        followed = followed.as_deref().unwrap_or_default(),
                        now = %from,
                        revision,
                        "the control node's store is another one than this node's config came from: took its whole config"
                    );
                }
            }
            Ok::<_, FollowError>((revision, nodes))
        })
        .await??;
        self.nodes.set(nodes);
        self.following.synced(revision, admin_ui_now());
        Ok(revision)
    }

    /// Keeps the lag gauge current: 0 while connected, else seconds since the last sync.
    async fn update_lag(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let status = self.following.status();
            let lag = if status.connected {
                0.0
            } else {
                match status.last_sync {
                    Some(at) => admin_ui_now().saturating_sub(at) as f64,
                    None => self.started.elapsed().as_secs_f64().floor(),
                }
            };
            self.lag.set(lag);
        }
    }
}

/// The largest feed answer a follower reads (a whole config of 100,000 keys is about
/// 30 MB): a control node, or anyone on a plain `http://` path to it, cannot make a
/// follower hold gigabytes.
pub const MAX_ANSWER_BYTES: usize = 512 * 1024 * 1024;

/// The answer's body, refused as soon as it says or turns out to be over `cap` bytes.
async fn read_capped(mut answer: reqwest::Response, cap: usize) -> Result<Vec<u8>, FollowError> {
    let too_big = || FollowError::TooBig { cap };
    if answer.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Whether `config` holds nothing at all.
fn is_empty(config: &storage::Config) -> bool {
    config.upstreams.is_empty()
        && config.routes.is_empty()
        && config.consumers.is_empty()
        && config.plans.is_empty()
        && config.jwt_issuers.is_empty()
        && config.certificates.is_empty()
        && config.keys.is_empty()
        && config.credentials.is_empty()
}

/// What a feed answer asks the store to apply (`None`: nothing changed). A mode without
/// what it names is refused, never taken as empty: an empty config would delete everything.
fn replica_of(answer: FeedAnswer) -> Result<Option<Replica>, FollowError> {
    let FeedAnswer {
        mode,
        revision,
        config,
        changes,
        ..
    } = answer;
    let missing = |what: &str| {
        FollowError::Decode(<serde_json::Error as serde::de::Error>::custom(format!(
            "mode {mode:?} without {what}"
        )))
    };
    Ok(match mode {
        FeedMode::Current => None,
        FeedMode::Changes => Some(Replica::Changes(changes.ok_or_else(|| missing("changes"))?)),
        FeedMode::Whole => Some(Replica::Whole {
            revision,
            config: config.ok_or_else(|| missing("config"))?,
        }),
    })
}

/// The feed client: the system's roots (and `ca`'s certificate, when given) verify an
/// `https://` control node; certificate checks are never turned off.
fn client(ca: Option<&Path>) -> Result<reqwest::Client, FollowError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca {
        let ca_error = |reason: String| FollowError::Ca {
            path: path.to_owned(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_error(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_error("holds no PEM certificate".to_owned()));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| FollowError::Client(e.to_string()))
}

fn admin_ui_now() -> u64 {
    use policies::Clock;
    policies::SystemClock.now().as_secs()
}

/// Capped exponential backoff with jitter (each pause in `[base/2, base]`).
#[derive(Debug)]
struct Backoff {
    base: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { base: MIN_BACKOFF }
    }
}

impl Backoff {
    fn reset(&mut self) {
        self.base = MIN_BACKOFF;
    }

    fn next_pause(&mut self) -> Duration {
        let base = self.base;
        self.base = (base * 2).min(MAX_BACKOFF);
        let half = base / 2;
        half + rand::thread_rng().gen_range(Duration::ZERO..=half)
    }
}

#[cfg(test)]
mod tests;
