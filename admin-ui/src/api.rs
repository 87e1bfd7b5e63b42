//! The REST admin API: `/api/v1/**` (admin authentication required), `GET /healthz` and
//! `GET /openapi.json`. The contract is the "REST admin API" section of ADMIN_API.md.
//!
//! Every route is listed once, in [`table`], which both builds the router and lets the tests
//! check that the OpenAPI document covers it.

pub(crate) mod auth;
mod body;
pub(crate) mod cache;
mod cluster;
mod config;
mod credentials;
mod error;
mod keys;
pub(crate) mod openapi;
mod resources;
mod status;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{delete, get, MethodRouter};
use axum::Router;
use storage::{
    CertificateSpec, Change, ConsumerSpec, JwtIssuerSpec, PlanSpec, RouteSpec, UpstreamSpec,
};

use crate::{AdminConfig, LiveView};
pub(crate) use auth::Actor;
pub(crate) use error::ApiError;

/// Shared by every admin handler; clones share it.
#[derive(Clone)]
pub(crate) struct AdminState {
    inner: Arc<Inner>,
}

struct Inner {
    store: storage::Store,
    live: Arc<dyn LiveView>,
    admin_token: Option<String>,
    version: &'static str,
    started: Instant,
    auth_cache: auth::Cache,
    refusal_log: auth::RefusalLog,
    login_guard: crate::guard::LoginGuard,
    cluster: crate::cluster::Cluster,
}

impl AdminState {
    pub fn new(cfg: AdminConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                store: cfg.store,
                live: cfg.live,
                admin_token: cfg.admin_token,
                version: cfg.version,
                started: cfg.started,
                auth_cache: auth::Cache::default(),
                refusal_log: auth::RefusalLog::default(),
                login_guard: crate::guard::LoginGuard::default(),
                cluster: cfg.cluster,
            }),
        }
    }

    pub fn store(&self) -> &storage::Store {
        &self.inner.store
    }

    /// The password guard of Basic auth (shared with the console's logins).
    pub fn login_guard(&self) -> &crate::guard::LoginGuard {
        &self.inner.login_guard
    }

    pub fn live(&self) -> &dyn LiveView {
        self.inner.live.as_ref()
    }

    /// Applies `change` on a blocking thread (it writes and flushes sled) and returns the new
    /// revision once the proxy serves it. `Err` is the store's refusal, already mapped to its
    /// HTTP answer.
    pub async fn apply(&self, change: Change, actor: &Actor) -> Result<u64, ApiError> {
        let store = self.inner.store.clone();
        let actor = actor.0.clone();
        let revision = tokio::task::spawn_blocking(move || store.apply(change, &actor))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::from)?;
        crate::live::wait_applied(self.live(), revision).await;
        Ok(revision)
    }
}

/// Every route: `(path, handlers)`. Paths under `/api/v1` require admin authentication.
pub(crate) fn table() -> Vec<(&'static str, MethodRouter<AdminState>)> {
    use resources::{create, list, read, remove, replace};
    vec![
        ("/healthz", get(status::healthz)),
        ("/openapi.json", get(openapi::serve)),
        (
            "/api/v1/upstreams",
            get(list::<UpstreamSpec>).post(create::<UpstreamSpec>),
        ),
        (
            "/api/v1/upstreams/{id}",
            get(read::<UpstreamSpec>)
                .put(replace::<UpstreamSpec>)
                .delete(remove::<UpstreamSpec>),
        ),
        (
            "/api/v1/routes",
            get(list::<RouteSpec>).post(create::<RouteSpec>),
        ),
        (
            "/api/v1/routes/{id}",
            get(read::<RouteSpec>)
                .put(replace::<RouteSpec>)
                .delete(remove::<RouteSpec>),
        ),
        (
            "/api/v1/consumers",
            get(list::<ConsumerSpec>).post(create::<ConsumerSpec>),
        ),
        (
            "/api/v1/consumers/{id}",
            get(read::<ConsumerSpec>)
                .put(replace::<ConsumerSpec>)
                .delete(remove::<ConsumerSpec>),
        ),
        (
            "/api/v1/consumers/{id}/keys",
            get(keys::list).post(keys::create),
        ),
        ("/api/v1/consumers/{id}/keys/{key_id}", delete(keys::remove)),
        (
            "/api/v1/consumers/{id}/basic-auth",
            get(credentials::list).post(credentials::create),
        ),
        (
            "/api/v1/consumers/{id}/basic-auth/{username}",
            delete(credentials::remove),
        ),
        ("/api/v1/consumers/{id}/usage", get(status::usage)),
        (
            "/api/v1/plans",
            get(list::<PlanSpec>).post(create::<PlanSpec>),
        ),
        (
            "/api/v1/plans/{id}",
            get(read::<PlanSpec>)
                .put(replace::<PlanSpec>)
                .delete(remove::<PlanSpec>),
        ),
        (
            "/api/v1/jwt-issuers",
            get(list::<JwtIssuerSpec>).post(create::<JwtIssuerSpec>),
        ),
        (
            "/api/v1/jwt-issuers/{id}",
            get(read::<JwtIssuerSpec>)
                .put(replace::<JwtIssuerSpec>)
                .delete(remove::<JwtIssuerSpec>),
        ),
        (
            "/api/v1/certificates",
            get(list::<CertificateSpec>).post(create::<CertificateSpec>),
        ),
        (
            "/api/v1/certificates/{id}",
            get(read::<CertificateSpec>).delete(remove::<CertificateSpec>),
        ),
        ("/api/v1/config", get(config::export).put(config::replace)),
        ("/api/v1/status", get(status::status)),
        (cache::PURGE_PATH, axum::routing::post(cache::purge)),
        (crate::cluster::FEED_PATH, get(cluster::feed)),
        ("/api/v1/cluster/nodes", get(cluster::nodes)),
    ]
}

/// Paths that need admin authentication (the feed checks the cluster token instead).
fn is_protected(path: &str) -> bool {
    path.starts_with("/api/") && path != crate::cluster::FEED_PATH
}

/// The REST API with its state applied. Unknown paths and methods answer JSON 404 / 405;
/// bodies over [`body::MAX_BODY_BYTES`] answer 413.
pub(crate) fn router(state: AdminState) -> Router {
    let (protected, open): (Vec<_>, Vec<_>) = table()
        .into_iter()
        .partition(|(path, _)| is_protected(path));
    let protected = protected
        .into_iter()
        .fold(Router::new(), |r, (path, route)| r.route(path, route))
        // Inside authentication: a follower tells admins, not strangers, where to write.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cluster::refuse_writes,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin,
        ));
    open.into_iter()
        .fold(protected, |r, (path, route)| r.route(path, route))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        })
        .layer(DefaultBodyLimit::max(body::MAX_BODY_BYTES))
        .with_state(state)
}
