//! The page shell every console page shares: head, navigation bar, flash message; and the
//! small view helpers the pages use (CSRF field, empty states, time formatting).

use axum::http::StatusCode;
use axum::response::Html;
use leptos::prelude::*;

use super::session::{CurrentSession, Flash, CSRF_FIELD};
use super::ConsoleState;

/// The navigation bar: `(path, label)`.
pub(crate) const NAV: [(&str, &str); 12] = [
    ("/", "Dashboard"),
    ("/routes", "Routes"),
    ("/upstreams", "Upstreams"),
    ("/consumers", "Consumers"),
    ("/keys", "API keys"),
    ("/plans", "Plans"),
    ("/jwt-issuers", "JWT issuers"),
    ("/certificates", "Certificates"),
    ("/usage", "Usage"),
    ("/audit", "Audit log"),
    ("/config", "Config"),
    ("/nodes", "Nodes"),
];

/// What every page of a session shows besides its body.
pub(crate) struct Ctx {
    pub user: String,
    pub csrf: String,
    pub flash: Option<Flash>,
    /// On a follower: the control node's URL (the pages are read-only).
    pub following: Option<String>,
}

impl Ctx {
    /// The page context of `session`; takes its flash message (shown once).
    pub fn new(state: &ConsoleState, session: &CurrentSession) -> Self {
        Self {
            user: session.user.clone(),
            csrf: session.csrf.clone(),
            flash: state.sessions.take_flash(&session.key),
            following: state.cluster.following.as_ref().map(|f| f.url().to_owned()),
        }
    }

    /// The hidden CSRF field every form of the page carries.
    pub fn csrf_field(&self) -> impl IntoView {
        let csrf = self.csrf.clone();
        view! { <input type="hidden" name=CSRF_FIELD value=csrf/> }
    }
}

/// A whole HTML page: `active` is the navigation entry (a path of [`NAV`]) to highlight.
pub(crate) fn page(ctx: &Ctx, active: &str, title: &str, body: AnyView) -> Html<String> {
    let links = NAV
        .iter()
        .map(|(path, label)| {
            let class = if *path == active { "active" } else { "" };
            view! { <a href=*path class=class>{*label}</a> }
        })
        .collect_view();
    let flash = ctx.flash.clone().map(flash_view);
    let banner = ctx.following.clone().map(|url| {
        let href = url.clone();
        view! {
            <div class="flash err follower-banner" role="status">
                "Read-only: this node follows the control node "<a href=href>{url}</a>
                ". Make changes there; they reach this node within a second."
            </div>
        }
    });
    let (user, csrf, title) = (ctx.user.clone(), ctx.csrf.clone(), title.to_owned());
    let shell = view! {
        <html lang="en">
            {head(&title)}
            <body>
                <header class="topbar">
                    <a class="brand" href="/">
                        {logo()}
                        "Tollgate"
                    </a>
                    <nav>{links}</nav>
                    <form method="post" action="/logout" class="logout">
                        <input type="hidden" name=CSRF_FIELD value=csrf/>
                        <span class="user">{user}</span>
                        <button type="submit" class="link">"Log out"</button>
                    </form>
                </header>
                <main>
                    {banner}
                    <h1>{title}</h1>
                    {flash}
                    {body}
                </main>
            </body>
        </html>
    };
    Html(format!("<!DOCTYPE html>{}", shell.to_html()))
}

/// A page outside a session (the login page, error pages): no navigation bar.
pub(crate) fn bare_page(title: &str, body: AnyView) -> String {
    let title = title.to_owned();
    let shell = view! {
        <html lang="en">
            {head(&title)}
            <body class="bare">
                <main class="narrow">{body}</main>
            </body>
        </html>
    };
    format!("<!DOCTYPE html>{}", shell.to_html())
}

/// The mark beside the name: a gate, drawn inline so it needs no font or file.
pub(crate) fn logo() -> impl IntoView {
    view! {
        <svg class="logo" viewBox="0 0 20 20" aria-hidden="true">
            <path d="M1 4.5h18M3 8h14M5 4.5V18M15 4.5V18" stroke="currentColor" stroke-width="2.2" fill="none" stroke-linecap="round"/>
        </svg>
    }
}

fn head(title: &str) -> impl IntoView {
    let title = format!("{title} · Tollgate");
    view! {
        <head>
            <meta charset="utf-8"/>
            <meta name="viewport" content="width=device-width, initial-scale=1"/>
            <title>{title}</title>
            <link rel="stylesheet" href="/assets/console.css"/>
            <script src="/assets/console.js" defer="defer"></script>
        </head>
    }
}

/// An error page: the status and what went wrong.
pub(crate) fn error_page(status: StatusCode, message: &str) -> String {
    let heading = status.to_string();
    let message = message.to_owned();
    bare_page(
        &heading,
        view! {
            <div class="card">
                <h1>{heading.clone()}</h1>
                <p class="error">{message}</p>
                <p><a href="/">"Back to the console"</a></p>
            </div>
        }
        .into_any(),
    )
}

fn flash_view(flash: Flash) -> AnyView {
    match flash {
        Flash::Done(text) => view! { <div class="flash ok" role="status">{text}</div> }.into_any(),
        Flash::Failed(text) => {
            view! { <div class="flash err" role="alert">{text}</div> }.into_any()
        }
        Flash::Secret { text, secret } => view! {
            <div class="flash secret" role="status">
                <p>{text}</p>
                <div class="secret-row">
                    <code id="secret">{secret}</code>
                    <button type="button" class="copy" data-copy="secret">"Copy"</button>
                </div>
                <p class="hint">"It is shown only this once: the gateway keeps a hash of it."</p>
            </div>
        }
        .into_any(),
    }
}

/// What a list shows when it has nothing: a sentence and the next step.
pub(crate) fn empty_state(what: &str, action: Option<(String, String)>) -> AnyView {
    let text = format!("No {what} yet.");
    let action = action.map(|(href, label)| view! { <a class="button" href=href>{label}</a> });
    view! {
        <div class="empty">
            <p>{text}</p>
            {action}
        </div>
    }
    .into_any()
}

/// Unix seconds as `2026-11-27 14:03:09 UTC`; 0 as `—`.
pub(crate) fn format_time(unix: u64) -> String {
    if unix == 0 {
        return "—".to_owned();
    }
    let secs = i64::try_from(unix).unwrap_or(i64::MAX);
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Text escaped for a `<textarea>`: Leptos writes a textarea's children as they are (it
/// treats it like `<script>`), so stored text must be escaped before it goes in.
pub(crate) fn textarea_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
