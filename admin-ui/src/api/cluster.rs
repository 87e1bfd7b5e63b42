//! The cluster endpoints: the config feed followers long-poll (`GET /api/v1/cluster/feed`,
//! cluster token), the control node's list of followers (`GET /api/v1/cluster/nodes`), and
//! the guard that makes a follower's API read-only.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};
use storage::{Feed, Problem};

use super::{AdminState, ApiError};
use crate::cluster::{query, Caller, FeedMode, NodeView};

/// How long a feed request waits for a change by default, and at most (seconds).
pub const DEFAULT_WAIT_SECS: u64 = 25;
pub const MAX_WAIT_SECS: u64 = 60;
/// Longest node id, address and version a follower may report.
const MAX_FIELD_LEN: usize = 256;

/// `GET /api/v1/cluster/feed?after=R&wait=S&node=ID&address=A&version=V` with
/// `Authorization: Bearer <cluster token>`: the changes after revision R, the whole config,
/// or, when nothing changed within S seconds, `mode: current`. 404 when this node serves no
/// feed (no cluster token), 401 without the right token, 400 for a malformed query.
pub(crate) async fn feed(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let cluster = &state.inner.cluster;
    let Some(token) = cluster.token.as_deref() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "this node serves no config feed: set TOLLGATE_CLUSTER_TOKEN on the control node",
        ));
    };
    if !presents(&headers, token) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong cluster token",
        ));
    }
    let (caller, wait) = parse(&params)?;
    let after = caller.revision;
    // Revisions count within one store: a follower whose config came from another store
    // (this node restarted on another data directory, restored, replaced) gets the whole
    // config, whatever its revision, and never these revisions on top of that config.
    let same_store = params
        .get(query::STORE)
        .is_none_or(|followed| followed == state.store().id());
    let _polling = cluster.nodes.poll(caller, crate::unix_now());
    let store = state.store();
    let mut changed = store.subscribe();
    let deadline = tokio::time::Instant::now() + wait;
    let feed = loop {
        if !same_store {
            let (revision, config) = store.current();
            break Feed::Whole { revision, config };
        }
        match store.changes_after(after) {
            Feed::Current { .. } => {
                // Subscribed before looking: a change made since wakes this at once.
                match tokio::time::timeout_at(deadline, changed.changed()).await {
                    Ok(Ok(())) => continue,
                    Ok(Err(_)) | Err(_) => break store.changes_after(after),
                }
            }
            other => break other,
        }
    };
    let nodes = cluster.nodes.connected() + 1;
    let id = store.id().to_owned();
    let body = match feed {
        // A whole config may hold 100,000 keys: encoded once for every answer sending it,
        // and sent after a head of the answer's own fields, with no copy.
        Feed::Whole { revision, config } => {
            let config = cluster
                .whole
                .get(revision, config)
                .await
                .map_err(ApiError::internal)?;
            let head = whole_head(revision, nodes, &id).map_err(ApiError::internal)?;
            let chunks = [
                Bytes::from(head),
                Bytes::from_owner(Shared(config)),
                Bytes::from_static(b"}"),
            ];
            Body::from_stream(futures_util::stream::iter(
                chunks.into_iter().map(Ok::<_, std::convert::Infallible>),
            ))
        }
        other => Body::from(encode(&other, nodes, &id).map_err(ApiError::internal)?),
    };
    Ok((
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response())
}

/// The encoded whole config as a body chunk.
struct Shared(Arc<Vec<u8>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A whole answer up to its `config` value: `{"mode":"whole",...,"config":`.
fn whole_head(revision: u64, nodes: usize, store: &str) -> Result<Vec<u8>, serde_json::Error> {
    #[derive(Serialize)]
    struct Head<'a> {
        mode: FeedMode,
        revision: u64,
        nodes: usize,
        store: &'a str,
    }
    let mut head = serde_json::to_vec(&Head {
        mode: FeedMode::Whole,
        revision,
        nodes,
        store,
    })?;
    // `{...}` becomes `{...,"config":`.
    head.pop();
    head.extend_from_slice(br#","config":"#);
    Ok(head)
}

/// The feed answer as JSON, borrowing what the store holds ([`crate::cluster::FeedAnswer`]
/// is the owned form followers read).
fn encode(feed: &Feed, nodes: usize, store: &str) -> Result<Vec<u8>, serde_json::Error> {
    #[derive(Serialize)]
    struct Answer<'a> {
        mode: FeedMode,
        revision: u64,
        nodes: usize,
        store: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        config: Option<&'a storage::Config>,
        #[serde(skip_serializing_if = "Option::is_none")]
        changes: Option<Vec<&'a storage::Delta>>,
    }
    let answer = match feed {
        Feed::Current { revision } => Answer {
            mode: FeedMode::Current,
            revision: *revision,
            nodes,
            store,
            config: None,
            changes: None,
        },
        Feed::Changes { revision, deltas } => Answer {
            mode: FeedMode::Changes,
            revision: *revision,
            nodes,
            store,
            config: None,
            changes: Some(deltas.iter().map(AsRef::as_ref).collect()),
        },
        // Sent in chunks, by `feed`; encoded whole here for completeness.
        Feed::Whole { revision, config } => Answer {
            mode: FeedMode::Whole,
            revision: *revision,
            nodes,
            store,
            config: Some(config),
            changes: None,
        },
    };
    serde_json::to_vec(&answer)
}

/// Whether the request carries `Authorization: Bearer <token>`, compared in constant time
/// (digests of equal length, every byte looked at).
fn presents(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(token.as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The caller and the wait from the query; every problem at once.
fn parse(params: &HashMap<String, String>) -> Result<(Caller, Duration), ApiError> {
    let mut problems = Vec::new();
    let mut number = |name: &str, default: u64| match params.get(name) {
        None => default,
        Some(v) => v.parse().unwrap_or_else(|_| {
            problems.push(Problem::new(name, "must be a whole number"));
            default
        }),
    };
    let after = number(query::AFTER, 0);
    let wait = number(query::WAIT, DEFAULT_WAIT_SECS).min(MAX_WAIT_SECS);
    let mut text = |name: &str, required: bool| {
        let value = params.get(name).cloned().unwrap_or_default();
        if required && value.is_empty() {
            problems.push(Problem::new(name, "is required"));
        } else if value.len() > MAX_FIELD_LEN || value.chars().any(char::is_control) {
            problems.push(Problem::new(
                name,
                format!("must be at most {MAX_FIELD_LEN} printable characters"),
            ));
        }
        value
    };
    let caller = Caller {
        id: text(query::NODE, true),
        address: text(query::ADDRESS, false),
        version: text(query::VERSION, false),
        revision: after,
    };
    if problems.is_empty() {
        Ok((caller, Duration::from_secs(wait)))
    } else {
        Err(ApiError::invalid("invalid feed request", problems))
    }
}

/// `GET /api/v1/cluster/nodes`: the followers that asked for the feed, sorted by id.
pub(crate) async fn nodes(State(state): State<AdminState>) -> Json<Vec<NodeView>> {
    Json(state.inner.cluster.nodes.list())
}

/// Middleware of the REST API: on a follower, every request that is not a read answers
/// 409 `{"error": "this node follows <URL>: write to the control node"}`.
pub(crate) async fn refuse_writes(
    State(state): State<AdminState>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(following) = &state.inner.cluster.following {
        // A purge is no config write: it empties this node's own cache.
        let is_purge = req.uri().path() == super::cache::PURGE_PATH;
        if !is_purge && !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
            return ApiError::new(StatusCode::CONFLICT, following.refusal()).into_response();
        }
    }
    next.run(req).await
}
