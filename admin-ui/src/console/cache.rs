//! The console's response cache: the "purge cache" form of a route's page
//! (`POST /routes/{id}/purge-cache`, this node's cache only, allowed on a follower) and the
//! cache figures of the dashboard.

use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use leptos::prelude::*;

use super::layout::Ctx;
use super::session::{CurrentSession, Flash};
use super::{ConsoleError, ConsoleState};
use crate::CacheStats;

/// The path suffix of the purge form (also let through on a follower).
pub(crate) const PURGE_SUFFIX: &str = "/purge-cache";

/// `POST /routes/{id}/purge-cache`: drops the route's cached answers; `303` back to the
/// route's page with a flash saying how many.
pub(crate) async fn purge(
    State(state): State<ConsoleState>,
    Extension(session): Extension<CurrentSession>,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    if !state.store.config().routes.iter().any(|r| r.id == id) {
        return Err(ConsoleError::NotFound(format!("route {id}")));
    }
    let purged = state.live.cache_purge(&id, None);
    let text = match purged {
        1 => format!("Purged 1 cached answer of route {id}."),
        n => format!("Purged {n} cached answers of route {id}."),
    };
    state.sessions.set_flash(&session.key, Flash::Done(text));
    Ok(Redirect::to(&format!("/routes/{id}")).into_response())
}

/// The route page's cache section: the purge button (a plain form: works without JS).
pub(crate) fn route_section(id: &str, ctx: &Ctx) -> AnyView {
    let action = format!("/routes/{id}{PURGE_SUFFIX}");
    let confirm = format!("Drop every cached answer of route {id} on this node?");
    view! {
        <section class="card" id="route-cache">
            <h2>"Response cache"</h2>
            <p class="hint">
                "Drops what this node has cached for the route (routes with a cache policy); \
                 the next requests go to the upstream."
            </p>
            <form method="post" action=action class="inline" data-confirm=confirm>
                {ctx.csrf_field()}
                <button type="submit">"Purge cache"</button>
            </form>
        </section>
    }
    .into_any()
}

/// "hit ratio" and "size" as the dashboard shows them.
pub(crate) fn figures(stats: &CacheStats) -> (String, String) {
    let ratio = stats
        .hit_ratio()
        .map_or_else(|| "—".to_owned(), super::dashboard::percent);
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    let size = format!(
        "{:.1} / {:.0} MB",
        mb(stats.bytes),
        mb(stats.capacity_bytes)
    );
    (ratio, size)
}
