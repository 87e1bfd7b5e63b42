//! List, create, edit and delete pages of the config objects (routes, upstreams, consumers,
//! plans, JWT issuers, certificates), one [`Resource`] table each, all through
//! [`storage::Store::apply`]: the same validation as the REST API.

mod table;

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use leptos::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::Value;
use storage::{Change, Config, Kind, Object, Problem, StoreError};

use super::form::{self, serde_problem, Values};
use super::layout::{empty_state, page, Ctx};
use super::session::{CurrentSession, Flash};
use super::{ConsoleError, ConsoleState};
pub(crate) use table::{Resource, RESOURCES};

/// The routes of every resource: `/{slug}`, `/{slug}/new`, `/{slug}/{id}`,
/// `/{slug}/{id}/delete`.
pub(crate) fn routes() -> Router<ConsoleState> {
    RESOURCES.iter().fold(Router::new(), |router, res| {
        router
            .route(
                &format!("/{}", res.slug),
                get(move |s: State<ConsoleState>, c: Extension<CurrentSession>| list(res, s, c)),
            )
            .route(
                &format!("/{}/new", res.slug),
                get(
                    move |s: State<ConsoleState>, c: Extension<CurrentSession>| new_form(res, s, c),
                )
                .post(
                    move |s: State<ConsoleState>,
                          c: Extension<CurrentSession>,
                          f: Form<Vec<(String, String)>>| {
                        save(res, s, c, None, f)
                    },
                ),
            )
            .route(
                &format!("/{}/{{id}}", res.slug),
                get(
                    move |s: State<ConsoleState>,
                          c: Extension<CurrentSession>,
                          Path(id): Path<String>| edit_form(res, s, c, id),
                )
                .post(
                    move |s: State<ConsoleState>,
                          c: Extension<CurrentSession>,
                          Path(id): Path<String>,
                          f: Form<Vec<(String, String)>>| {
                        save(res, s, c, Some(id), f)
                    },
                ),
            )
            .route(
                &format!("/{}/{{id}}/delete", res.slug),
                post(
                    move |s: State<ConsoleState>,
                          c: Extension<CurrentSession>,
                          Path(id): Path<String>| remove(res, s, c, id),
                ),
            )
    })
}

/// Every stored object of `kind`, as JSON, sorted by id; secrets hidden (a form that
/// leaves them so keeps the stored ones: see [`storage::without_secrets`]).
pub(crate) fn objects(config: &Config, kind: Kind) -> Vec<Value> {
    let hidden;
    let config = if matches!(kind, Kind::JwtIssuer | Kind::Certificate) {
        hidden = storage::without_secrets(&Config {
            jwt_issuers: config.jwt_issuers.clone(),
            certificates: config.certificates.clone(),
            ..Config::default()
        });
        &hidden
    } else {
        config
    };
    match serde_json::to_value(config) {
        Ok(Value::Object(mut map)) => match map.remove(kind.plural()) {
            Some(Value::Array(list)) => list,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn find(config: &Config, kind: Kind, id: &str) -> Option<Value> {
    objects(config, kind)
        .into_iter()
        .find(|o| o.get("id").and_then(Value::as_str) == Some(id))
}

async fn list(
    res: &'static Resource,
    State(state): State<ConsoleState>,
    Extension(session): Extension<CurrentSession>,
) -> Response {
    let ctx = Ctx::new(&state, &session);
    let config = state.store.config();
    let items = objects(&config, res.kind);
    let new_href = format!("/{}/new", res.slug);
    let body = if items.is_empty() {
        empty_state(
            res.title.to_lowercase().as_str(),
            Some((
                new_href.clone(),
                format!("Create the first {}", res.singular),
            )),
        )
    } else {
        table::list_view(res, &items, &state, &ctx)
    };
    let intro = res.intro;
    let new_label = format!("New {}", res.singular);
    let body = view! {
        <div class="toolbar">
            <p class="intro">{intro}</p>
            <a class="button primary" href=new_href>{new_label}</a>
        </div>
        {body}
    }
    .into_any();
    page(&ctx, &format!("/{}", res.slug), res.title, body).into_response()
}

async fn new_form(
    res: &'static Resource,
    State(state): State<ConsoleState>,
    Extension(session): Extension<CurrentSession>,
) -> Response {
    let ctx = Ctx::new(&state, &session);
    let values = form::defaults(res.fields);
    form_page(res, &state, &ctx, None, &values, &[], StatusCode::OK)
}

async fn edit_form(
    res: &'static Resource,
    State(state): State<ConsoleState>,
    Extension(session): Extension<CurrentSession>,
    id: String,
) -> Result<Response, ConsoleError> {
    let config = state.store.config();
    let stored = find(&config, res.kind, &id)
        .ok_or_else(|| ConsoleError::NotFound(format!("{} {id}", res.singular)))?;
    let ctx = Ctx::new(&state, &session);
    let values = form::values_of(res.fields, &stored);
    Ok(form_page(
        res,
        &state,
        &ctx,
        Some(&id),
        &values,
        &[],
        StatusCode::OK,
    ))
}

/// Creates (`id` is `None`) or replaces an object. Success: `303` to the list with a flash;
/// refused: the form again (`400`, `409` for a taken id) with each problem at its field.
async fn save(
    res: &'static Resource,
    State(state): State<ConsoleState>,
    Extension(session): Extension<CurrentSession>,
    id: Option<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let config = state.store.config();
    let stored = match &id {
        Some(id) => Some(
            find(&config, res.kind, id)
                .ok_or_else(|| ConsoleError::NotFound(format!("{} {id}", res.singular)))?,
        ),
        None => None,
    };
    let mut values = form::values_posted(res.fields, &pairs);
    if let Some(id) = &id {
        // The id of an edited object is its URL's, whatever the form says.
        values.insert("id".to_owned(), id.clone());
    }
    let refused = |problems: Vec<Problem>, status| {
        let ctx = Ctx::new(&state, &session);
        Ok(form_page(
            res,
            &state,
            &ctx,
            id.as_deref(),
            &values,
            &problems,
            status,
        ))
    };
    let object = match form::to_json(res.fields, &values, stored.as_ref())
        .and_then(|json| object_from(res.kind, json))
    {
        Ok(object) => object,
        Err(problems) => return refused(problems, StatusCode::BAD_REQUEST),
    };
    let object_id = object.id().to_owned();
    let change = if id.is_some() {
        Change::Replace(object)
    } else {
        Change::Create(object)
    };
    let actor = session.user.clone();
    match state
        .blocking(move |store| store.apply(change, &actor))
        .await?
    {
        Ok(revision) => {
            let verb = if id.is_some() { "Saved" } else { "Created" };
            let text = format!("{verb} {} {object_id} (revision {revision}).", res.singular);
            state.sessions.set_flash(&session.key, Flash::Done(text));
            Ok(Redirect::to(&format!("/{}", res.slug)).into_response())
        }
        Err(StoreError::Invalid { problems }) => refused(problems, StatusCode::BAD_REQUEST),
        Err(e @ StoreError::Conflict { .. }) => refused(
            vec![Problem::new("id", e.to_string())],
            StatusCode::CONFLICT,
        ),
        Err(StoreError::NotFound { kind, id }) => {
            Err(ConsoleError::NotFound(format!("{kind} {id}")))
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes an object; `303` to the list, with a flash saying what happened (an object still
/// in use is kept, and the flash names its user).
async fn remove(
    res: &'static Resource,
    State(state): State<ConsoleState>,
    Extension(session): Extension<CurrentSession>,
    id: String,
) -> Result<Response, ConsoleError> {
    let (kind, actor, target) = (res.kind, session.user.clone(), id.clone());
    let result = state
        .blocking(move |store| store.apply(Change::Delete { kind, id: target }, &actor))
        .await?;
    let flash = match result {
        Ok(revision) => Flash::Done(format!(
            "Deleted {} {id} (revision {revision}).",
            res.singular
        )),
        Err(e @ (StoreError::InUse { .. } | StoreError::NotFound { .. })) => {
            Flash::Failed(format!("Not deleted: {e}."))
        }
        Err(e) => return Err(e.into()),
    };
    state.sessions.set_flash(&session.key, flash);
    Ok(Redirect::to(&format!("/{}", res.slug)).into_response())
}

fn form_page(
    res: &'static Resource,
    state: &ConsoleState,
    ctx: &Ctx,
    id: Option<&str>,
    values: &Values,
    problems: &[Problem],
    status: StatusCode,
) -> Response {
    let config = state.store.config();
    let (title, action) = match id {
        Some(id) => (
            format!("{} {id}", capitalized(res.singular)),
            format!("/{}/{id}", res.slug),
        ),
        None => (
            format!("New {}", res.singular),
            format!("/{}/new", res.slug),
        ),
    };
    let fields = form::form_view(res.fields, values, problems, &config, id.is_some());
    let extra = id.map(|id| table::detail_extras(res, id, state, ctx));
    let delete = id.map(|id| {
        let action = format!("/{}/{id}/delete", res.slug);
        let confirm = format!("Delete {} {id}?", res.singular);
        view! {
            <form method="post" action=action class="inline" data-confirm=confirm>
                {ctx.csrf_field()}
                <button type="submit" class="danger">"Delete"</button>
            </form>
        }
    });
    let cancel = format!("/{}", res.slug);
    let body = view! {
        {extra}
        <form method="post" action=action class="object card" novalidate="novalidate">
            {ctx.csrf_field()}
            {fields}
            <div class="actions">
                <button type="submit" class="primary">"Save"</button>
                <a class="button" href=cancel>"Cancel"</a>
            </div>
        </form>
        {delete}
    }
    .into_any();
    let mut response = page(ctx, &format!("/{}", res.slug), &title, body).into_response();
    *response.status_mut() = status;
    response
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The typed object of `kind` that `json` describes, or the problem serde found, at its path.
fn object_from(kind: Kind, json: Value) -> Result<Object, Vec<Problem>> {
    fn typed<T: DeserializeOwned>(json: Value) -> Result<T, Vec<Problem>> {
        serde_path_to_error::deserialize(json)
            .map_err(|e| vec![serde_problem(e.path().to_string(), e.inner().to_string())])
    }
    Ok(match kind {
        Kind::Upstream => Object::Upstream(typed(json)?),
        Kind::Route => Object::Route(typed(json)?),
        Kind::Consumer => Object::Consumer(typed(json)?),
        Kind::Plan => Object::Plan(typed(json)?),
        Kind::JwtIssuer => Object::JwtIssuer(typed(json)?),
        Kind::Certificate => Object::Certificate(typed(json)?),
        Kind::Key => Object::Key(typed(json)?),
        Kind::Credential => Object::Credential(typed(json)?),
    })
}
