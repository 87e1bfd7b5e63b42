//! `GET/POST /login` and `POST /logout`. The login form is protected against CSRF by a
//! double-submit token: a random value both in a `SameSite=Strict` cookie and in the form.

use std::time::Duration;

use axum::extract::{Extension, State};
use axum::http::{header, Extensions, HeaderMap, StatusCode};
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use axum::Form;
use leptos::prelude::*;
use serde::Deserialize;

use super::layout::{bare_page, logo};
use super::session::{
    cookie, is_https, random_token, same, set_cookie, CurrentSession, SESSION_COOKIE,
};
use super::{ConsoleError, ConsoleState};
use crate::guard::Refusal;

/// The login form's double-submit cookie.
pub(crate) const LOGIN_CSRF_COOKIE: &str = "tollgate_login_csrf";
/// How long a login form stays usable.
const LOGIN_FORM_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, Deserialize)]
pub(crate) struct Credentials {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

/// `GET /login`: the form (or `/` for a live session).
pub(crate) async fn form(State(state): State<ConsoleState>, headers: HeaderMap) -> Response {
    let https = is_https(&headers);
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        if state.sessions.find(&token).await.is_some() {
            return Redirect::to("/").into_response();
        }
    }
    login_page(StatusCode::OK, "", None, https)
}

/// `POST /login`: a session and `303 /` for the right password; the form again with `401`
/// for a wrong one, `429` with `Retry-After` while the name must wait after too many wrong
/// ones, `503` with `Retry-After` while too many passwords are being checked (see
/// `guard.rs`), `403` without the form's CSRF token.
pub(crate) async fn submit(
    State(state): State<ConsoleState>,
    extensions: Extensions,
    headers: HeaderMap,
    Form(creds): Form<Credentials>,
) -> Result<Response, ConsoleError> {
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same(&expected, &creds.csrf) {
        return Err(ConsoleError::Csrf);
    }
    let Credentials {
        username, password, ..
    } = creds;
    let (client, https) = (crate::client_addr(&extensions), is_https(&headers));
    let turn = state.login_guard.turn(&username).await;
    let user = username.clone();
    let stored = state
        .blocking(move |store| store.admin_password_hash(&user))
        .await??;
    let checked = turn
        .verify(move || storage::verify_password_or_decoy(&password, stored.as_deref()))
        .await;
    let is_valid = match checked {
        Ok(is_valid) => is_valid,
        Err(refusal) => {
            tracing::warn!(user = %crate::guard::logged_name(&username), %client, ?refusal, "console login throttled");
            let secs = refusal.retry_after_secs();
            let (status, text) = match refusal {
                Refusal::Throttled { .. } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("Too many wrong passwords: try again in {secs} s."),
                ),
                Refusal::Busy { .. } => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("Too many logins at once: try again in {secs} s."),
                ),
            };
            let mut page = login_page(status, &username, Some(&text), https);
            page.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
            return Ok(page);
        }
    };
    if !is_valid {
        tracing::warn!(user = %crate::guard::logged_name(&username), %client, "console login refused");
        return Ok(login_page(
            StatusCode::UNAUTHORIZED,
            &username,
            Some("Wrong user name or password."),
            https,
        ));
    }
    let token = state.sessions.create(&username).await;
    let ttl = state.sessions.ttl();
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, "/")],
        AppendHeaders([
            (
                header::SET_COOKIE,
                set_cookie(SESSION_COOKIE, &token, ttl, https),
            ),
            (
                header::SET_COOKIE,
                set_cookie(LOGIN_CSRF_COOKIE, "", Duration::ZERO, https),
            ),
        ]),
    )
        .into_response())
}

/// `POST /logout`: ends the session and goes back to the login page.
pub(crate) async fn logout(
    State(state): State<ConsoleState>,
    Extension(session): Extension<CurrentSession>,
    headers: HeaderMap,
) -> Response {
    state.sessions.remove(&session.key).await;
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/login".to_owned()),
            (
                header::SET_COOKIE,
                set_cookie(SESSION_COOKIE, "", Duration::ZERO, is_https(&headers)),
            ),
        ],
    )
        .into_response()
}

fn login_page(status: StatusCode, username: &str, error: Option<&str>, https: bool) -> Response {
    let csrf = random_token();
    let error = error.map(|e| view! { <p class="error" role="alert">{e.to_owned()}</p> });
    let username = if username.is_empty() {
        "admin"
    } else {
        username
    }
    .to_owned();
    let body = view! {
        <div class="card login">
            <h1>{logo()} "Tollgate"</h1>
            <p class="hint">"Sign in to manage the gateway."</p>
            {error}
            <form method="post" action="/login">
                <input type="hidden" name="csrf" value=csrf.clone()/>
                <label for="username">"User name"</label>
                <input id="username" name="username" value=username autocomplete="username" required="required"/>
                <label for="password">"Password"</label>
                <input id="password" name="password" type="password" autocomplete="current-password" required="required" autofocus="autofocus"/>
                <button type="submit" class="primary">"Log in"</button>
            </form>
        </div>
    }
    .into_any();
    (
        status,
        [(
            header::SET_COOKIE,
            set_cookie(LOGIN_CSRF_COOKIE, &csrf, LOGIN_FORM_TTL, https),
        )],
        Html(bare_page("Log in", body)),
    )
        .into_response()
}
