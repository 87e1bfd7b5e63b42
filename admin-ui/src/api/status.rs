//! Liveness and status: `GET /healthz`, `GET /api/v1/status`, `GET /api/v1/consumers/{id}/usage`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use serde_json::Value;

use super::keys::require_consumer;
use super::{AdminState, ApiError};

/// `GET /healthz` (no auth): 200 once the proxy listener accepts connections, else 503.
/// A store that cannot write does not fail it: the proxy still serves the config it has
/// in memory (status and metrics say the store is degraded).
pub(crate) async fn healthz(State(state): State<AdminState>) -> (StatusCode, Json<Value>) {
    if state.live().is_ready() {
        (StatusCode::OK, Json(serde_json::json!({"status": "ok"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "starting"})),
        )
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Status {
    revision: u64,
    version: &'static str,
    uptime_seconds: u64,
    upstreams: Vec<UpstreamStatus>,
    last_reload_error: Option<String>,
    /// Whether the store writes; see [`storage::StoreHealth`].
    store: storage::StoreHealth,
    /// On a follower only: its feed from the control node.
    #[serde(skip_serializing_if = "Option::is_none")]
    follow: Option<crate::cluster::FollowStatus>,
    /// With `--redis`: whether the Redis that shares limits answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    redis: Option<crate::live::RedisStatus>,
    /// The response cache's figures (size, entries, requests by result).
    #[serde(skip_serializing_if = "Option::is_none")]
    cache: Option<crate::live::CacheStats>,
}

#[derive(Debug, Serialize)]
struct UpstreamStatus {
    id: String,
    targets: Vec<TargetStatus>,
}

#[derive(Debug, Serialize)]
struct TargetStatus {
    addr: String,
    /// `null` while the proxy has not reported on this target (e.g. before a reload).
    healthy: Option<bool>,
}

/// `GET /api/v1/status`: revision, version, uptime and the health of every configured target.
pub(crate) async fn status(State(state): State<AdminState>) -> Json<Status> {
    let config = state.store().config();
    let live = state.live();
    let health = live.upstream_health();
    let upstreams = config
        .upstreams
        .iter()
        .map(|u| UpstreamStatus {
            id: u.id.clone(),
            targets: u
                .targets
                .iter()
                .map(|t| TargetStatus {
                    addr: t.addr.clone(),
                    healthy: health
                        .iter()
                        .find(|h| h.upstream == u.id && h.target == t.addr)
                        .map(|h| h.healthy),
                })
                .collect(),
        })
        .collect();
    Json(Status {
        revision: state.store().revision(),
        version: state.inner.version,
        uptime_seconds: state.inner.started.elapsed().as_secs(),
        upstreams,
        last_reload_error: live.last_reload_error(),
        store: state.store().health(),
        follow: state.inner.cluster.following.as_ref().map(|f| f.status()),
        redis: live.redis(),
        cache: live.cache_stats(),
    })
}

/// `GET /api/v1/consumers/{id}/usage`: 404 without that consumer; the live quota usage, or
/// `{period: null, used: 0, limit: null, remaining: null, resets_at: null}` without a quota.
pub(crate) async fn usage(
    State(state): State<AdminState>,
    Path(consumer): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require_consumer(&state, &consumer)?;
    let report = match state.live().shared_usage(&consumer).await {
        Some(report) => serde_json::to_value(report).map_err(ApiError::internal)?,
        None => serde_json::json!({
            "period": null, "used": 0, "limit": null, "remaining": null, "resets_at": null
        }),
    };
    Ok(Json(report))
}
