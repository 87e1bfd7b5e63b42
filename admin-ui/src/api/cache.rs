//! `POST /api/v1/cache/purge`: drops what the proxy's response cache holds for a route (or
//! one path of it). Not a config write: it is allowed on a follower, where it purges that
//! node's cache only (each node has its own).

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use storage::{Kind, Problem};

use super::body::{json, typed, RawBody};
use super::{AdminState, ApiError};

/// The path of the purge endpoint.
pub(crate) const PURGE_PATH: &str = "/api/v1/cache/purge";

/// What to purge: every answer of `route`, or only those of request path `path`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Purge {
    pub route: String,
    #[serde(default)]
    pub path: Option<String>,
}

impl Purge {
    /// Every problem of the request, with its field.
    pub(crate) fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.route.is_empty() {
            problems.push(Problem::new("route", "must not be empty"));
        }
        if self.path.as_deref().is_some_and(|p| !p.starts_with('/')) {
            problems.push(Problem::new("path", "must start with /"));
        }
        if self.path.as_deref().is_some_and(|p| p.contains(['?', '#'])) {
            // Entries are kept by path; every query string of it is purged with it.
            problems.push(Problem::new(
                "path",
                "must be a path only, without query or fragment",
            ));
        }
        problems
    }
}

/// `{"route": ID}` or `{"route": ID, "path": "/p"}` -> `{"purged": N}`; 404 for a route
/// the config does not have, 400 (with problems) for a bad body.
pub(crate) async fn purge(
    State(state): State<AdminState>,
    RawBody(bytes): RawBody,
) -> Result<Json<Value>, ApiError> {
    let request: Purge = typed(json(&bytes)?)?;
    let purged = purge_route(&state, &request)?;
    Ok(Json(json!({ "purged": purged })))
}

/// Checks `request` and purges; shared with the console's form.
pub(crate) fn purge_route(state: &AdminState, request: &Purge) -> Result<u64, ApiError> {
    let problems = request.problems();
    if !problems.is_empty() {
        return Err(ApiError::invalid("invalid body", problems));
    }
    if !state
        .store()
        .config()
        .routes
        .iter()
        .any(|r| r.id == request.route)
    {
        return Err(ApiError::not_found(Kind::Route, &request.route));
    }
    Ok(state
        .live()
        .cache_purge(&request.route, request.path.as_deref()))
}
