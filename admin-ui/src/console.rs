//! The browser console: Leptos views rendered on the server (no Wasm, no hydration) and
//! served by axum beside the REST API, on the same store and validation rules.
//!
//! Forms are plain HTML forms posted to axum handlers: each handler checks the session's
//! CSRF token, applies a [`storage::Change`] through [`storage::Store::apply`] (the very
//! rules the REST API uses), then answers `303 See Other` back to the page, or re-renders
//! the form with every problem next to the field at fault. A few lines of plain JavaScript
//! (`assets/console.js`) refresh the live figures. Nothing but `/login` and `/assets/*` is
//! reachable without a session.
//!
//! Mount it with `admin_router.merge(console::router(state))`: it sets no fallback, so the
//! REST API's JSON 404/405 stay in charge of unknown paths.

mod assets;
mod cache;
mod config_page;
mod dashboard;
mod error;
mod form;
mod headers;
mod keys;
mod layout;
mod login;
mod nodes;
mod pages;
mod resources;
mod session;
mod traffic;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;

use crate::LiveView;
pub use error::ConsoleError;
pub use session::{DEFAULT_SESSION_TTL, SESSION_COOKIE};
pub use traffic::SAMPLE_INTERVAL;

/// Everything the console needs; clones share it.
#[derive(Clone)]
pub struct ConsoleState {
    pub(crate) store: storage::Store,
    pub(crate) live: Arc<dyn LiveView>,
    pub(crate) registry: prometheus::Registry,
    pub(crate) sessions: Arc<session::Sessions>,
    pub(crate) traffic: Arc<traffic::Traffic>,
    pub(crate) login_guard: crate::guard::LoginGuard,
    /// A follower's console is read-only and says which node it follows.
    pub(crate) cluster: crate::cluster::Cluster,
}

impl ConsoleState {
    /// The console over `store`, showing `live` proxy state and the traffic figures of the
    /// proxy's Prometheus `registry` (the metrics named in ADMIN_API.md). A session lasts
    /// `session_ttl` from login, whatever it does meanwhile.
    pub fn new(
        store: storage::Store,
        live: Arc<dyn LiveView>,
        registry: prometheus::Registry,
        session_ttl: Duration,
    ) -> Self {
        Self {
            sessions: Arc::new(session::Sessions::new(session_ttl, store.clone())),
            store,
            live,
            registry,
            traffic: Arc::new(traffic::Traffic::default()),
            login_guard: crate::guard::LoginGuard::default(),
            cluster: crate::cluster::Cluster::default(),
        }
    }

    /// Takes one traffic sample now (the sampler task does this every
    /// [`SAMPLE_INTERVAL`]).
    pub fn sample_traffic(&self) {
        self.traffic.sample(&self.registry);
    }

    /// Runs `f` on a blocking thread (sled writes flush; argon2 is slow by design), then
    /// waits until the proxy serves the store's revision, so a change made by `f` applies
    /// from the next request (at once when `f` changed nothing).
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&storage::Store) -> T + Send + 'static,
    ) -> Result<T, ConsoleError> {
        let store = self.store.clone();
        let out = tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| ConsoleError::Internal(e.to_string()))?;
        crate::live::wait_applied(self.live.as_ref(), self.store.revision()).await;
        Ok(out)
    }
}

/// The console's routes, with its state applied. When called inside a Tokio runtime it also
/// starts the traffic sampler, a task that samples the registry every [`SAMPLE_INTERVAL`]
/// and ends once every clone of the state is dropped.
pub fn router(state: ConsoleState) -> Router {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(traffic::run_sampler(
            Arc::downgrade(&state.traffic),
            state.registry.clone(),
        ));
    }
    let protected = Router::new()
        .route("/", get(dashboard::show))
        .route("/logout", post(login::logout))
        .route("/keys", get(keys::list).post(keys::create))
        .route("/keys/{id}/revoke", post(keys::revoke))
        .route("/keys/{id}/delete", post(keys::remove))
        .route("/usage", get(pages::usage))
        .route("/audit", get(pages::audit))
        .route("/config", get(config_page::show))
        .route("/config/export.yaml", get(config_page::download))
        .route(
            "/config/export-with-secrets.yaml",
            get(config_page::download_with_secrets),
        )
        .route("/config/import", post(config_page::import))
        .route("/nodes", get(nodes::show))
        .route("/routes/{id}/purge-cache", post(cache::purge))
        .merge(resources::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            nodes::refuse_writes,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::require_session,
        ));
    Router::new()
        .route("/login", get(login::form).post(login::submit))
        .route("/assets/{file}", get(assets::serve))
        .merge(protected)
        .route_layer(axum::middleware::map_response(
            headers::add_security_headers,
        ))
        .with_state(state)
}
