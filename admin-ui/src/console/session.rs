//! Console sessions: a random token in an `HttpOnly; SameSite=Strict` cookie, looked up by
//! its sha256, with an absolute expiry, a per-session CSRF token and a one-shot flash
//! message. Held in memory, and saved in the store (user and expiry, under the token's
//! hash) so that a restart logs nobody out; a session the memory does not know is looked
//! up there and gets a new CSRF token (a form rendered before the restart answers 403 once).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use parking_lot::Mutex;
use rand::distributions::{Alphanumeric, DistString};
use sha2::{Digest, Sha256};

use super::{ConsoleError, ConsoleState};
use crate::unix_now;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tollgate_session";
/// How long a session lasts when the caller has no better idea: 8 hours.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// The form field every console form carries.
pub(crate) const CSRF_FIELD: &str = "csrf";
/// Largest form body accepted (config imports are the big ones); axum's default body
/// limit for `Form`, so the middleware and the handlers agree.
pub(crate) const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;
/// Random characters of a session token (alphanumeric: ~190 bits).
const TOKEN_CHARS: usize = 32;
/// Sessions beyond this drop the expired ones first, then the oldest.
const CAPACITY: usize = 10_000;

/// A message shown once, on the next page the session renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Flash {
    Done(String),
    Failed(String),
    /// A secret shown this once (a new API key), with a copy button.
    Secret {
        text: String,
        secret: String,
    },
}

struct Entry {
    user: String,
    csrf: String,
    expires: Instant,
    flash: Option<Flash>,
}

/// The logged-in user of a request, put in its extensions by [`require_session`].
#[derive(Debug, Clone)]
pub(crate) struct CurrentSession {
    pub key: [u8; 32],
    pub user: String,
    pub csrf: String,
}

/// Every live session.
pub(crate) struct Sessions {
    ttl: Duration,
    map: Mutex<HashMap<[u8; 32], Entry>>,
    store: storage::Store,
}

impl Sessions {
    /// Sessions lasting `ttl`, saved in `store`; drops the stored ones that have expired.
    pub fn new(ttl: Duration, store: storage::Store) -> Self {
        if let Err(e) = store.prune_sessions(unix_now()) {
            tracing::warn!("dropping expired console sessions: {e}");
        }
        Self {
            ttl,
            map: Mutex::new(HashMap::new()),
            store,
        }
    }

    /// How long a session lasts from login.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Starts a session for `user`; returns the token for the cookie. A session the store
    /// could not save still works, until a restart.
    pub async fn create(&self, user: &str) -> String {
        let token = random_token();
        let key = digest(&token);
        self.remember(key, user.to_owned(), Instant::now() + self.ttl);
        let saved = storage::Session {
            user: user.to_owned(),
            expires: unix_now().saturating_add(self.ttl.as_secs()),
        };
        let hash = hex::encode(key);
        self.in_store(
            "saving a console session (a restart ends it)",
            move |store| store.save_session(&hash, &saved),
        )
        .await;
        token
    }

    /// Holds a session in memory, with a new CSRF token; keeps one already held (two
    /// requests may bring back the same stored session at once).
    fn remember(&self, key: [u8; 32], user: String, expires: Instant) -> CurrentSession {
        let now = Instant::now();
        let mut map = self.map.lock();
        if map.len() >= CAPACITY && !map.contains_key(&key) {
            map.retain(|_, e| e.expires > now);
            if map.len() >= CAPACITY {
                if let Some(oldest) = map.iter().min_by_key(|(_, e)| e.expires).map(|(k, _)| *k) {
                    map.remove(&oldest);
                }
            }
        }
        let entry = map.entry(key).or_insert_with(|| Entry {
            user,
            csrf: random_token(),
            expires,
            flash: None,
        });
        CurrentSession {
            key,
            user: entry.user.clone(),
            csrf: entry.csrf.clone(),
        }
    }

    /// The session of `token`, unless unknown or expired (an expired one is forgotten).
    /// One the memory does not hold (made before a restart) is looked up in the store.
    pub async fn find(&self, token: &str) -> Option<CurrentSession> {
        let key = digest(token);
        if let Some(found) = self.find_in_memory(&key) {
            return found;
        }
        let hash = hex::encode(key);
        let now = unix_now();
        let stored = self
            .in_store("reading a console session", move |store| {
                store.session(&hash, now)
            })
            .await??;
        let left = Duration::from_secs(stored.expires.saturating_sub(now));
        Some(self.remember(key, stored.user, Instant::now() + left))
    }

    /// `Some(None)`: held in memory but expired (now forgotten); `None`: not held.
    fn find_in_memory(&self, key: &[u8; 32]) -> Option<Option<CurrentSession>> {
        let mut map = self.map.lock();
        let entry = map.get(key)?;
        if entry.expires <= Instant::now() {
            map.remove(key);
            return Some(None);
        }
        Some(Some(CurrentSession {
            key: *key,
            user: entry.user.clone(),
            csrf: entry.csrf.clone(),
        }))
    }

    /// Ends the session (logout), in memory and in the store. An unknown one is fine.
    pub async fn remove(&self, key: &[u8; 32]) {
        self.map.lock().remove(key);
        let hash = hex::encode(key);
        self.in_store("forgetting a console session", move |store| {
            store.delete_session(&hash)
        })
        .await;
    }

    /// Runs `f` on the store on a blocking thread (sled reads may hit the disk, writes
    /// flush); a failure is logged as `doing` and answers `None`.
    async fn in_store<T: Send + 'static>(
        &self,
        doing: &str,
        f: impl FnOnce(&storage::Store) -> Result<T, storage::StoreError> + Send + 'static,
    ) -> Option<T> {
        let store = self.store.clone();
        let error = match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(Ok(value)) => return Some(value),
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        tracing::warn!("{doing}: {error}");
        None
    }

    /// Leaves `flash` for the session's next page.
    pub fn set_flash(&self, key: &[u8; 32], flash: Flash) {
        if let Some(entry) = self.map.lock().get_mut(key) {
            entry.flash = Some(flash);
        }
    }

    /// The flash message, once.
    pub fn take_flash(&self, key: &[u8; 32]) -> Option<Flash> {
        self.map.lock().get_mut(key).and_then(|e| e.flash.take())
    }
}

/// Middleware of every console page but the login page: without a live session, answers
/// `303` to `/login`; a `POST` must also carry the session's CSRF token in its form body
/// (else `403`). Puts the [`CurrentSession`] in the request's extensions.
pub(crate) async fn require_session(
    State(state): State<ConsoleState>,
    req: Request,
    next: Next,
) -> Response {
    let session = match cookie(req.headers(), SESSION_COOKIE) {
        Some(token) => state.sessions.find(&token).await,
        None => None,
    };
    let Some(session) = session else {
        return Redirect::to("/login").into_response();
    };
    let mut req = req;
    if req.method() == Method::POST {
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
            Ok(bytes) => bytes,
            Err(e) => return ConsoleError::BadForm(e.to_string()).into_response(),
        };
        let sent = form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == CSRF_FIELD)
            .map(|(_, v)| v.into_owned());
        if !sent.is_some_and(|sent| same(&sent, &session.csrf)) {
            return ConsoleError::Csrf.into_response();
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    req.extensions_mut().insert(session);
    next.run(req).await
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, path `/`, and `Secure` when the
/// request came over HTTPS (`secure`, see [`is_https`]); `max_age` 0 deletes it.
pub(crate) fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        max_age.as_secs()
    )
}

/// Whether the browser talks to the console over HTTPS: a TLS-terminating proxy in front
/// says so with `X-Forwarded-Proto: https` (or `Forwarded: proto=https`). The admin
/// listener itself speaks plain HTTP. Trusting the header is safe here: it can only make
/// cookies `Secure`, which a client lying about it would then not send back.
pub(crate) fn is_https(headers: &HeaderMap) -> bool {
    let says_https = |name: header::HeaderName, prefix: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split([',', ';']))
            .filter_map(|item| item.trim().strip_prefix(prefix))
            .next()
            .is_some_and(|proto| proto.trim_matches('"').eq_ignore_ascii_case("https"))
    };
    says_https(header::HeaderName::from_static("x-forwarded-proto"), "")
        || says_https(header::FORWARDED, "proto=")
}

pub(crate) fn random_token() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), TOKEN_CHARS)
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares two tokens in time independent of where they differ.
pub(crate) fn same(a: &str, b: &str) -> bool {
    let (a, b) = (digest(a), digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}
