//! `/usage` (each consumer's quota in its current period) and `/audit` (who changed what).

use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use leptos::prelude::*;

use super::layout::{empty_state, format_time, page, Ctx};
use super::session::CurrentSession;
use super::{ConsoleError, ConsoleState};

/// Audit entries shown.
const AUDIT_LIMIT: usize = 200;

/// `GET /usage`.
pub(crate) async fn usage(
    State(state): State<ConsoleState>,
    Extension(session): Extension<CurrentSession>,
) -> Response {
    let ctx = Ctx::new(&state, &session);
    let config = state.store.config();
    let body = if config.consumers.is_empty() {
        empty_state(
            "consumers",
            Some(("/consumers/new".to_owned(), "Create a consumer".to_owned())),
        )
    } else {
        let mut usages = Vec::with_capacity(config.consumers.len());
        for c in &config.consumers {
            usages.push(state.live.shared_usage(&c.id).await);
        }
        let rows = config
            .consumers
            .iter()
            .zip(usages)
            .map(|(c, usage)| {
                let plan = c.plan.clone().unwrap_or_else(|| "—".to_owned());
                let href = format!("/consumers/{}", c.id);
                let figures = match usage {
                    None => view! {
                        <td colspan="5" class="muted">"no quota"</td>
                    }
                    .into_any(),
                    Some(u) => {
                        let limit = u
                            .limit
                            .map_or_else(|| "unlimited".to_owned(), |l| l.to_string());
                        let left = u
                            .remaining
                            .map_or_else(|| "—".to_owned(), |r| r.to_string());
                        let percent = match u.limit {
                            Some(l) if l > 0 => (u.used.min(l) * 100 / l).to_string(),
                            _ => "0".to_owned(),
                        };
                        let bar = format!("width: {percent}%");
                        view! {
                            <td>{u.period}</td>
                            <td class="num">{u.used.to_string()}</td>
                            <td class="num">{left}</td>
                            <td>
                                <div class="meter" title=format!("{percent}% of {limit}")>
                                    <span style=bar></span>
                                </div>
                                <span class="muted">{format!("{percent}% of {limit}")}</span>
                            </td>
                            <td>{format_time(u.resets_at)}</td>
                        }
                        .into_any()
                    }
                };
                view! {
                    <tr>
                        <td><a href=href>{c.id.clone()}</a></td>
                        <td>{plan}</td>
                        {figures}
                    </tr>
                }
            })
            .collect_view();
        view! {
            <div class="table-wrap" id="usage" data-live="1">
                <table>
                    <thead>
                        <tr>
                            <th>"consumer"</th>
                            <th>"plan"</th>
                            <th>"period"</th>
                            <th>"used"</th>
                            <th>"left"</th>
                            <th>"quota"</th>
                            <th>"resets"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    page(&ctx, "/usage", "Usage", body).into_response()
}

/// `GET /audit`: the latest changes, newest first.
pub(crate) async fn audit(
    State(state): State<ConsoleState>,
    Extension(session): Extension<CurrentSession>,
) -> Result<Response, ConsoleError> {
    let entries = state
        .blocking(|store| store.audit_log(AUDIT_LIMIT))
        .await??;
    let ctx = Ctx::new(&state, &session);
    let body = if entries.is_empty() {
        empty_state("changes", None)
    } else {
        let rows = entries
            .into_iter()
            .map(|e| {
                view! {
                    <tr>
                        <td class="num">{e.revision.to_string()}</td>
                        <td>{format_time(e.at)}</td>
                        <td>{e.actor}</td>
                        <td>{e.action}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <div class="table-wrap">
                <table>
                    <thead>
                        <tr>
                            <th>"revision"</th>
                            <th>"when"</th>
                            <th>"who"</th>
                            <th>"what"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    Ok(page(&ctx, "/audit", "Audit log", body).into_response())
}
