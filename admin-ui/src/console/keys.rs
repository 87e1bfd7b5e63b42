//! `/keys`: every consumer's API keys (prefix, label, created, expiry, last use, state), a form that
//! creates one (shown once, with a copy button) and revoke/delete buttons.

use axum::extract::{Extension, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use leptos::prelude::*;
use rand::Rng;
use serde::Deserialize;
use storage::{Change, KeyRecord, Kind, Object, StoreError};

use super::layout::{empty_state, format_time, page, Ctx};
use super::session::{CurrentSession, Flash};
use super::{ConsoleError, ConsoleState};
use crate::unix_now;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Filter {
    #[serde(default)]
    consumer: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NewKey {
    #[serde(default)]
    consumer: String,
    #[serde(default)]
    label: String,
}

/// `GET /keys[?consumer=ID]`.
pub(crate) async fn list(
    State(state): State<ConsoleState>,
    Extension(session): Extension<CurrentSession>,
    Query(filter): Query<Filter>,
) -> Response {
    let ctx = Ctx::new(&state, &session);
    let config = state.store.config();
    let only = filter.consumer.filter(|c| !c.is_empty());
    let keys: Vec<&KeyRecord> = config
        .keys
        .iter()
        .filter(|k| only.as_ref().is_none_or(|c| &k.consumer == c))
        .collect();
    let create = if config.consumers.is_empty() {
        empty_state(
            "consumers",
            Some((
                "/consumers/new".to_owned(),
                "Create a consumer first".to_owned(),
            )),
        )
    } else {
        let options = config
            .consumers
            .iter()
            .map(|c| {
                let selected = only.as_deref() == Some(c.id.as_str());
                view! { <option value=c.id.clone() selected=selected>{c.id.clone()}</option> }
            })
            .collect_view();
        view! {
            <form method="post" action="/keys" class="card row-form">
                {ctx.csrf_field()}
                <div class="field">
                    <label for="field-consumer">"Consumer"</label>
                    <select id="field-consumer" name="consumer">{options}</select>
                </div>
                <div class="field">
                    <label for="field-label">"Label"</label>
                    <input id="field-label" name="label" placeholder="e.g. production server"/>
                </div>
                <button type="submit" class="primary">"Create key"</button>
            </form>
        }
        .into_any()
    };
    let table = if keys.is_empty() {
        empty_state("API keys", None)
    } else {
        key_table(&keys, &ctx, state.live.as_ref())
    };
    let heading = match &only {
        Some(c) => format!("Keys of {c}"),
        None => "All keys".to_owned(),
    };
    let show_all = only
        .is_some()
        .then(|| view! { <a href="/keys">"show every consumer's keys"</a> });
    let body = view! {
        {create}
        <h2>{heading} " " {show_all}</h2>
        {table}
    }
    .into_any();
    page(&ctx, "/keys", "API keys", body).into_response()
}

fn key_table(keys: &[&KeyRecord], ctx: &Ctx, live: &dyn crate::LiveView) -> AnyView {
    let now = unix_now();
    let rows = keys
        .iter()
        .map(|k| {
            let (class, state) = if k.revoked {
                ("badge err", "revoked")
            } else if k.expires.is_some_and(|e| e <= now) {
                ("badge warn", "expired")
            } else {
                ("badge ok", "active")
            };
            let revoke = (!k.revoked).then(|| {
                let action = format!("/keys/{}/revoke", k.id);
                let confirm = format!("Revoke key {}…? Requests with it fail at once.", k.prefix);
                view! {
                    <form method="post" action=action class="inline" data-confirm=confirm>
                        {ctx.csrf_field()}
                        <button type="submit" class="link danger">"Revoke"</button>
                    </form>
                }
            });
            let delete = format!("/keys/{}/delete", k.id);
            let consumer = format!("/consumers/{}", k.consumer);
            view! {
                <tr data-key=k.id.clone()>
                    <td class="mono">{format!("{}…", k.prefix)}</td>
                    <td>{k.label.clone().unwrap_or_else(|| "—".to_owned())}</td>
                    <td><a href=consumer>{k.consumer.clone()}</a></td>
                    <td>{format_time(k.created)}</td>
                    <td>{k.expires.map_or_else(|| "never".to_owned(), format_time)}</td>
                    <td>{live.key_last_used(&k.hash).map_or_else(|| "—".to_owned(), format_time)}</td>
                    <td><span class=class>{state}</span></td>
                    <td class="row-actions">
                        {revoke}
                        <form method="post" action=delete class="inline" data-confirm="Delete this key for good?">
                            {ctx.csrf_field()}
                            <button type="submit" class="link danger">"Delete"</button>
                        </form>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table>
                <thead>
                    <tr>
                        <th>"prefix"</th>
                        <th>"label"</th>
                        <th>"consumer"</th>
                        <th>"created"</th>
                        <th>"expires"</th>
                        <th>"last used"</th>
                        <th>"state"</th>
                        <th></th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

/// `POST /keys`: creates a key and shows it once (a flash on the next page).
pub(crate) async fn create(
    State(state): State<ConsoleState>,
    Extension(session): Extension<CurrentSession>,
    Form(new): Form<NewKey>,
) -> Result<Response, ConsoleError> {
    let (key, hash, prefix) = storage::new_api_key();
    let label = Some(new.label.trim().to_owned()).filter(|l| !l.is_empty());
    let record = KeyRecord {
        id: new_key_id(),
        consumer: new.consumer.clone(),
        hash,
        prefix,
        label,
        created: unix_now(),
        expires: None,
        revoked: false,
    };
    let back = format!("/keys?consumer={}", new.consumer);
    if !state
        .store
        .config()
        .consumers
        .iter()
        .any(|c| c.id == new.consumer)
    {
        let text = format!(
            "No key created: consumer {:?} does not exist.",
            new.consumer
        );
        state.sessions.set_flash(&session.key, Flash::Failed(text));
        return Ok(Redirect::to("/keys").into_response());
    }
    let actor = session.user.clone();
    let result = state
        .blocking(move |store| store.apply(Change::Create(Object::Key(record)), &actor))
        .await?;
    let flash = match result {
        Ok(_) => Flash::Secret {
            text: format!("New key for {}: copy it now.", new.consumer),
            secret: key,
        },
        Err(StoreError::Invalid { problems }) => Flash::Failed(format!(
            "No key created: {}",
            problems
                .iter()
                .map(|p| format!("{} {}", p.path, p.message))
                .collect::<Vec<_>>()
                .join("; ")
        )),
        Err(e) => return Err(e.into()),
    };
    state.sessions.set_flash(&session.key, flash);
    Ok(Redirect::to(&back).into_response())
}

/// `POST /keys/{id}/revoke`: the key stays listed, marked revoked, and is refused at once.
pub(crate) async fn revoke(
    State(state): State<ConsoleState>,
    Extension(session): Extension<CurrentSession>,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let mut record = state
        .store
        .config()
        .keys
        .iter()
        .find(|k| k.id == id)
        .cloned()
        .ok_or_else(|| ConsoleError::NotFound(format!("key {id}")))?;
    record.revoked = true;
    let (back, prefix) = (
        format!("/keys?consumer={}", record.consumer),
        record.prefix.clone(),
    );
    let actor = session.user.clone();
    state
        .blocking(move |store| store.apply(Change::Replace(Object::Key(record)), &actor))
        .await??;
    let text = format!("Revoked key {prefix}….");
    state.sessions.set_flash(&session.key, Flash::Done(text));
    Ok(Redirect::to(&back).into_response())
}

/// `POST /keys/{id}/delete`: forgets the key.
pub(crate) async fn remove(
    State(state): State<ConsoleState>,
    Extension(session): Extension<CurrentSession>,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let record = state
        .store
        .config()
        .keys
        .iter()
        .find(|k| k.id == id)
        .cloned()
        .ok_or_else(|| ConsoleError::NotFound(format!("key {id}")))?;
    let actor = session.user.clone();
    state
        .blocking(move |store| {
            store.apply(
                Change::Delete {
                    kind: Kind::Key,
                    id,
                },
                &actor,
            )
        })
        .await??;
    let text = format!("Deleted key {}….", record.prefix);
    state.sessions.set_flash(&session.key, Flash::Done(text));
    Ok(Redirect::to(&format!("/keys?consumer={}", record.consumer)).into_response())
}

/// A fresh key id: `k` and 12 hex digits, as the REST API makes them.
fn new_key_id() -> String {
    format!(
        "k{:012x}",
        rand::thread_rng().gen::<u64>() & 0xffff_ffff_ffff
    )
}
