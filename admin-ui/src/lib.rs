//! Tollgate's admin server: the REST admin API under `/api/v1` (with `GET /healthz` and
//! `GET /openapi.json`) and, beside it, the browser console.
//!
//! Owns: HTTP handling of admin requests, admin authentication (bearer token or a console
//! admin's password), the first-start admin bootstrap. Depends on `storage` (and `policies`
//! through it); never on `edge`: what it shows of the live proxy comes through [`LiveView`].

mod api;
mod bootstrap;
pub mod cluster;
pub mod console;
mod guard;
mod live;

use std::sync::Arc;
use std::time::Instant;

pub use bootstrap::{bootstrap_admin, BootstrapError, ADMIN_USER};
pub use live::{CacheStats, LiveView, RedisStatus, TargetHealth, UsageReport};

/// Everything the admin server needs, handed over by edge at start-up.
pub struct AdminConfig {
    pub store: storage::Store,
    pub live: Arc<dyn LiveView>,
    /// When set, `Authorization: Bearer <admin_token>` is accepted on `/api/v1`.
    pub admin_token: Option<String>,
    /// The gateway's version, shown by `GET /api/v1/status`.
    pub version: &'static str,
    /// When the process started, for `uptime_seconds`.
    pub started: Instant,
    /// The proxy's metrics, sampled by the console for its charts.
    pub registry: prometheus::Registry,
    /// The config feed and followers; the default: a node on its own.
    pub cluster: cluster::Cluster,
}

/// Now in unix seconds, from the clock the proxy stamps key uses and quotas with (stored
/// times, such as key creation and session expiry, outlive the process).
pub(crate) fn unix_now() -> u64 {
    use policies::Clock;
    policies::SystemClock.now().as_secs()
}

/// The client's address for logs: from `axum::extract::ConnectInfo` when the server was
/// made with `into_make_service_with_connect_info::<SocketAddr>()`, else `unknown`.
pub(crate) fn client_addr(extensions: &axum::http::Extensions) -> String {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |info| info.0.to_string())
}

/// The whole admin server: `/healthz`, `/openapi.json`, `/api/v1/**` and the console under
/// `/`. Call it inside a Tokio runtime (the console starts its metrics sampler there) and
/// serve it with `axum::serve` (with connect info, so that logs name the client).
pub fn router(cfg: AdminConfig) -> axum::Router {
    let mut console = console::ConsoleState::new(
        cfg.store.clone(),
        cfg.live.clone(),
        cfg.registry.clone(),
        console::DEFAULT_SESSION_TTL,
    );
    let cfg_cluster = cfg.cluster.clone();
    let state = api::AdminState::new(cfg);
    // One guard: a name's wrong passwords count whether tried on the console or the API.
    console.login_guard = state.login_guard().clone();
    console.cluster = cfg_cluster;
    // The API router owns the fallbacks (JSON 404/405), so the console's router sets none.
    api::router(state).merge(console::router(console))
}
