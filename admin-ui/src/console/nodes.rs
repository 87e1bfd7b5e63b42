//! `/nodes`: the gateway nodes following this one (control node), or, on a follower, the
//! control node it follows and how its feed is doing.

use axum::extract::{Extension, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use leptos::prelude::*;

use super::layout::{empty_state, error_page, format_time, page, Ctx};
use super::session::CurrentSession;
use super::ConsoleState;

/// `GET /nodes`.
pub(crate) async fn show(
    State(state): State<ConsoleState>,
    Extension(session): Extension<CurrentSession>,
) -> Response {
    let ctx = Ctx::new(&state, &session);
    let follow = state.cluster.following.as_ref().map(|f| {
        let s = f.status();
        let connected = if s.connected {
            "connected"
        } else {
            "not connected"
        };
        let last = s.last_sync.map_or_else(|| "never".to_owned(), format_time);
        view! {
            <section class="card" id="follow">
                <h2>"Control node"</h2>
                <p>
                    <code>{s.url}</code>" — "{connected}", revision "{s.revision.to_string()}
                    ", last sync "{last}
                </p>
            </section>
        }
    });
    let nodes = state.cluster.nodes.list();
    let table = if nodes.is_empty() {
        empty_state("followers", None)
    } else {
        let rows = nodes
            .into_iter()
            .map(|n| {
                let connected = if n.connected { "yes" } else { "no" };
                view! {
                    <tr>
                        <td>{n.id}</td>
                        <td>{n.address}</td>
                        <td class="num">{n.revision.to_string()}</td>
                        <td>{n.version}</td>
                        <td>{format_time(n.last_seen)}</td>
                        <td>{connected}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <div class="table-wrap" id="nodes">
                <table>
                    <thead>
                        <tr>
                            <th>"node"</th>
                            <th>"address"</th>
                            <th>"revision"</th>
                            <th>"version"</th>
                            <th>"last seen"</th>
                            <th>"connected"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    let body = view! { {follow} <h2>"Followers"</h2> {table} }.into_any();
    page(&ctx, "/nodes", "Nodes", body).into_response()
}

/// Middleware of the console's session pages: on a follower, every form post but logging
/// out answers 409 with the control node to write to.
pub(crate) async fn refuse_writes(
    State(state): State<ConsoleState>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(following) = &state.cluster.following {
        // A cache purge is no config write: it empties this node's own cache.
        let path = req.uri().path();
        let is_local = path == "/logout"
            || (path.starts_with("/routes/") && path.ends_with(super::cache::PURGE_SUFFIX));
        if req.method() == Method::POST && !is_local {
            let body = error_page(StatusCode::CONFLICT, &following.refusal());
            return (StatusCode::CONFLICT, Html(body)).into_response();
        }
    }
    next.run(req).await
}
