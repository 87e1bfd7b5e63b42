//! In-process tests of the console: the router over a temporary store, a fake
//! [`LiveView`] and a real Prometheus registry, driven with `tower::ServiceExt::oneshot`.

mod auth;
mod config;
mod dashboard;
mod follower;
mod hardening;
mod keys;
mod pages;
mod resources;
mod traffic;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::{router, ConsoleState};
use crate::{LiveView, TargetHealth, UsageReport};

pub(super) const PASSWORD: &str = "correct horse";

/// Live state the tests control.
#[derive(Default)]
pub(super) struct FakeLive {
    pub health: Vec<TargetHealth>,
    pub usage: Option<UsageReport>,
    pub reload_error: Option<String>,
    pub redis: Option<crate::RedisStatus>,
}

impl LiveView for FakeLive {
    fn is_ready(&self) -> bool {
        true
    }
    fn upstream_health(&self) -> Vec<TargetHealth> {
        self.health.clone()
    }
    fn usage(&self, _consumer: &str) -> Option<UsageReport> {
        self.usage.clone()
    }
    fn last_reload_error(&self) -> Option<String> {
        self.reload_error.clone()
    }
    fn redis(&self) -> Option<crate::RedisStatus> {
        self.redis.clone()
    }
}

/// A console over a fresh store whose user `admin` has [`PASSWORD`].
pub(super) struct Console {
    pub app: Router,
    pub state: ConsoleState,
    _dir: tempfile::TempDir,
}

/// One argon2 hash of [`PASSWORD`] for every test (hashing is slow in debug builds).
fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| storage::hash_password(PASSWORD).expect("hashable"))
}

impl Console {
    pub fn new() -> Self {
        Self::with(
            FakeLive::default(),
            prometheus::Registry::new(),
            Duration::from_secs(3600),
        )
    }

    pub fn with(live: FakeLive, registry: prometheus::Registry, ttl: Duration) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = storage::Store::open(dir.path()).expect("store opens");
        store
            .set_admin_password("admin", password_hash())
            .expect("admin saved");
        let state = ConsoleState::new(store, Arc::new(live), registry, ttl);
        Self {
            app: router(state.clone()),
            state,
            _dir: dir,
        }
    }

    /// A console of a node that follows `url`.
    pub fn following(url: &str) -> Self {
        let mut console = Self::new();
        console.state.cluster.following = Some(Arc::new(crate::cluster::Following::new(url, 0)));
        console.app = router(console.state.clone());
        console
    }

    /// The store's data directory.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub fn store(&self) -> &storage::Store {
        &self.state.store
    }

    /// The console as a restarted gateway serves it: a new one over the same store (the
    /// returned one keeps the directory).
    pub fn restarted(self) -> Self {
        let state = ConsoleState::new(
            self.state.store.clone(),
            Arc::new(FakeLive::default()),
            prometheus::Registry::new(),
            self.state.sessions.ttl(),
        );
        Self {
            app: router(state.clone()),
            state,
            _dir: self._dir,
        }
    }

    pub async fn send(&self, req: Request<Body>) -> Page {
        let response = self.app.clone().oneshot(req).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Page {
        let mut req = Request::get(path);
        if let Some(cookie) = cookie {
            req = req.header(header::COOKIE, cookie);
        }
        self.send(req.body(Body::empty()).expect("request")).await
    }

    pub async fn post(&self, path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Page {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut req = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "text/html");
        if let Some(cookie) = cookie {
            req = req.header(header::COOKIE, cookie);
        }
        self.send(req.body(Body::from(body)).expect("request"))
            .await
    }

    /// Logs in as `admin` and returns the session.
    pub async fn login(&self) -> Session {
        let form = self.get("/login", None).await;
        let login_cookie = form
            .cookie("tollgate_login_csrf")
            .expect("login csrf cookie");
        let csrf = form.csrf().expect("login form has a csrf field");
        let done = self
            .post(
                "/login",
                Some(&format!("tollgate_login_csrf={login_cookie}")),
                &[
                    ("username", "admin"),
                    ("password", PASSWORD),
                    ("csrf", &csrf),
                ],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        let token = done.cookie("tollgate_session").expect("session cookie");
        let cookie = format!("tollgate_session={token}");
        let home = self.get("/", Some(&cookie)).await;
        assert_eq!(home.status, StatusCode::OK);
        let csrf = home.csrf().expect("pages carry the csrf token");
        Session { cookie, csrf }
    }
}

/// A logged-in browser: its cookie header and the session's CSRF token.
pub(super) struct Session {
    pub cookie: String,
    pub csrf: String,
}

impl Session {
    pub async fn get(&self, console: &Console, path: &str) -> Page {
        console.get(path, Some(&self.cookie)).await
    }

    /// Posts `form` plus the CSRF token.
    pub async fn post(&self, console: &Console, path: &str, form: &[(&str, &str)]) -> Page {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(form);
        console.post(path, Some(&self.cookie), &all).await
    }
}

/// An answer.
#[derive(Debug)]
pub(super) struct Page {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }

    /// Every `Set-Cookie` header.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// The value a `Set-Cookie` gives cookie `name`.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies().into_iter().find_map(|c| {
            let first = c.split(';').next()?.to_owned();
            let (k, v) = first.split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
    }

    /// The value of the first hidden `csrf` field.
    pub fn csrf(&self) -> Option<String> {
        let at = self.body.find("name=\"csrf\"")?;
        let rest = &self.body[at..];
        let value = rest.find("value=\"")? + "value=\"".len();
        let end = rest[value..].find('"')?;
        Some(rest[value..value + end].to_owned())
    }

    /// The HTML of the form field `name` (from its `data-field` to the next one).
    pub fn field(&self, name: &str) -> &str {
        let marker = format!("data-field=\"{name}\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no field {name}"));
        let rest = &self.body[start + marker.len()..];
        let end = rest.find("data-field=").unwrap_or(rest.len());
        &rest[..end]
    }
}
