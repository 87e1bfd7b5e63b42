//! `/config`: the whole config as YAML (shown and downloadable) and an import form (merge,
//! or replace everything) that reports every problem.

use axum::extract::{Extension, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use leptos::prelude::*;
use serde::Deserialize;
use storage::{Change, Problem, StoreError};

use super::layout::{page, textarea_text, Ctx};
use super::session::{CurrentSession, Flash};
use super::{ConsoleError, ConsoleState};

#[derive(Debug, Deserialize)]
pub(crate) struct Import {
    #[serde(default)]
    yaml: String,
    /// A checkbox: present means replace.
    #[serde(default)]
    replace: Option<String>,
}

/// `GET /config`.
pub(crate) async fn show(
    State(state): State<ConsoleState>,
    Extension(session): Extension<CurrentSession>,
) -> Response {
    render(&state, &session, "", false, &[], StatusCode::OK)
}

/// `GET /config/export.yaml`: the export as shown (secrets hidden), as a file.
pub(crate) async fn download(State(state): State<ConsoleState>) -> Response {
    attachment(
        "tollgate-config.yaml",
        state.store.export_yaml_without_secrets(),
    )
}

/// `GET /config/export-with-secrets.yaml`: the full export (certificates' private keys,
/// JWT HMAC secrets), only ever as a download. A GET that changes nothing, behind the
/// session's `SameSite=Strict` cookie: another site can neither send the cookie with it
/// nor read the answer.
pub(crate) async fn download_with_secrets(
    State(state): State<ConsoleState>,
    Extension(session): Extension<CurrentSession>,
) -> Response {
    tracing::info!(user = %session.user, "config exported with secrets");
    attachment(
        "tollgate-config-with-secrets.yaml",
        state.store.export_yaml(),
    )
}

fn attachment(name: &str, yaml: String) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/yaml; charset=utf-8".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        yaml,
    )
        .into_response()
}

/// `POST /config/import`: applies the posted YAML (or JSON); `303` back with a flash, or
/// the page again (`400`) with every problem and the text as posted.
pub(crate) async fn import(
    State(state): State<ConsoleState>,
    Extension(session): Extension<CurrentSession>,
    Form(form): Form<Import>,
) -> Result<Response, ConsoleError> {
    let replace = form.replace.is_some();
    let config = match storage::parse_config(&form.yaml) {
        Ok(config) => config,
        Err(StoreError::Invalid { problems }) => {
            return Ok(render(
                &state,
                &session,
                &form.yaml,
                replace,
                &problems,
                StatusCode::BAD_REQUEST,
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let actor = session.user.clone();
    let result = state
        .blocking(move |store| store.apply(Change::Import { config, replace }, &actor))
        .await?;
    match result {
        Ok(revision) => {
            let how = if replace { "replaced" } else { "merged" };
            let text = format!("Config {how}: now at revision {revision}.");
            state.sessions.set_flash(&session.key, Flash::Done(text));
            Ok(Redirect::to("/config").into_response())
        }
        Err(StoreError::Invalid { problems }) => Ok(render(
            &state,
            &session,
            &form.yaml,
            replace,
            &problems,
            StatusCode::BAD_REQUEST,
        )),
        Err(e @ (StoreError::Conflict { .. } | StoreError::InUse { .. })) => Ok(render(
            &state,
            &session,
            &form.yaml,
            replace,
            &[Problem::new("", e.to_string())],
            StatusCode::CONFLICT,
        )),
        Err(e) => Err(e.into()),
    }
}

fn render(
    state: &ConsoleState,
    session: &CurrentSession,
    posted: &str,
    replace: bool,
    problems: &[Problem],
    status: StatusCode,
) -> Response {
    let ctx = Ctx::new(state, session);
    let (revision, _) = state.store.current();
    let export = state.store.export_yaml_without_secrets();
    let problems = (!problems.is_empty()).then(|| {
        let items = problems
            .iter()
            .map(|p| {
                let text = if p.path.is_empty() {
                    p.message.clone()
                } else {
                    format!("{}: {}", p.path, p.message)
                };
                view! { <li>{text}</li> }
            })
            .collect_view();
        view! {
            <div class="flash err" role="alert">
                <p>"Nothing was imported:"</p>
                <ul>{items}</ul>
            </div>
        }
    });
    let body = view! {
        <div class="grid two">
            <section class="card">
                <h2>"Export"</h2>
                <p class="hint">
                    {format!("Revision {revision}. ")}
                    "Keys appear as hashes only; private keys and JWT secrets are hidden, and importing this text back keeps the stored ones."
                </p>
                <p>
                    <a class="button primary" href="/config/export.yaml" download="tollgate-config.yaml">"Download YAML"</a>
                    " "
                    <a class="button" href="/config/export-with-secrets.yaml" download="tollgate-config-with-secrets.yaml">"Download with secrets"</a>
                </p>
                <p class="hint">"The file with secrets restores a fresh gateway: keep it as safe as the keys themselves."</p>
                <textarea class="mono" rows="24" readonly="readonly" aria-label="current config">{textarea_text(&export)}</textarea>
            </section>
            <section class="card">
                <h2>"Import"</h2>
                <p class="hint">"Paste YAML or JSON. Merge upserts every object in it; replace also deletes what it lacks. Nothing is written unless the whole result is valid."</p>
                {problems}
                <form method="post" action="/config/import">
                    {ctx.csrf_field()}
                    <textarea name="yaml" class="mono" rows="20" aria-label="config to import">{textarea_text(posted)}</textarea>
                    <label class="check">
                        <input type="checkbox" name="replace" checked=replace/>
                        " Replace the whole config"
                    </label>
                    <div class="actions">
                        <button type="submit" class="primary" data-confirm-if="replace">"Import"</button>
                    </div>
                </form>
            </section>
        </div>
    }
    .into_any();
    let mut response = page(&ctx, "/config", "Config", body).into_response();
    *response.status_mut() = status;
    response
}
