//! Admin authentication of `/api/v1`: `Authorization: Bearer <admin token>` or
//! `Authorization: Basic` with a console admin's username and password.
//!
//! Basic passwords go through the [`crate::guard::LoginGuard`] shared with console logins
//! (per-name throttle, one check in flight per name, a cap on argon2 checks at once).
//! argon2 is slow by design, so a successful Basic verification is remembered for
//! [`CACHE_TTL`] under the sha256 of the header, together with the password hash it was
//! checked against: changing the password ends the cached login at once.
//!
//! Refusals are logged through a [`RefusalLog`]: each class (a refused bearer token, a
//! throttled Basic login) at once the first time, then at most once per
//! [`storage::log_limit::LOG_INTERVAL`] with the number held back since, so a client
//! guessing tokens in a loop costs a line a minute, not a line a request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::{AdminState, ApiError};

/// Who made a request, as recorded in the audit log: `token` or the admin's username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Actor(pub String);

/// The actor name of requests authenticated by the bearer token.
pub(crate) const TOKEN_ACTOR: &str = "token";

/// How long a verified Basic header is trusted without argon2.
pub(crate) const CACHE_TTL: Duration = Duration::from_secs(300);

/// Entries beyond this are dropped (expired ones first, then all) so the cache stays small.
const CACHE_CAPACITY: usize = 1024;

/// Rate-limits the log lines of refused credentials, per class.
pub(crate) struct RefusalLog {
    limiter: storage::log_limit::LogLimiter,
    started: Instant,
}

impl Default for RefusalLog {
    fn default() -> Self {
        RefusalLog {
            limiter: storage::log_limit::LogLimiter::new(storage::log_limit::LOG_INTERVAL),
            started: Instant::now(),
        }
    }
}

impl RefusalLog {
    /// `Some(held_back)`: log this refusal of `class` now, saying how many were not
    /// logged since the last line; `None`: counted, not logged.
    fn note(&self, class: &'static str) -> Option<u64> {
        self.limiter.note(class, self.started.elapsed())
    }
}

/// Verified Basic headers: sha256(header) -> who, against which hash, when.
#[derive(Default)]
pub(crate) struct Cache(Mutex<HashMap<[u8; 32], Verified>>);

#[derive(Clone)]
struct Verified {
    username: String,
    password_hash: String,
    at: Instant,
}

impl Cache {
    fn get(&self, key: &[u8; 32]) -> Option<Verified> {
        let map = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(key).filter(|v| v.at.elapsed() < CACHE_TTL).cloned()
    }

    fn insert(&self, key: [u8; 32], verified: Verified) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if map.len() >= CACHE_CAPACITY {
            map.retain(|_, v| v.at.elapsed() < CACHE_TTL);
            if map.len() >= CACHE_CAPACITY {
                map.clear();
            }
        }
        map.insert(key, verified);
    }
}

/// Middleware: lets the request through with its [`Actor`] in the extensions, or answers
/// 401 with `WWW-Authenticate: Bearer` (429 or 503 with `Retry-After` when a Basic
/// password is not checked, see `guard.rs`).
pub(crate) async fn require_admin(
    State(state): State<AdminState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(ApiError::unauthorized)?;
    let client = crate::client_addr(req.extensions());
    let actor = authenticate(&state, header, &client).await?;
    req.extensions_mut().insert(actor);
    Ok(next.run(req).await)
}

async fn authenticate(state: &AdminState, header: &str, client: &str) -> Result<Actor, ApiError> {
    let (scheme, credentials) = header.split_once(' ').ok_or_else(ApiError::unauthorized)?;
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        match &state.inner.admin_token {
            Some(token) if digests_equal(&sha256(token), &sha256(credentials)) => {
                Ok(Actor(TOKEN_ACTOR.to_owned()))
            }
            _ => {
                if let Some(held_back) = state.inner.refusal_log.note("bearer_refused") {
                    tracing::warn!(%client, held_back, "admin API bearer token refused");
                }
                Err(ApiError::unauthorized())
            }
        }
    } else if scheme.eq_ignore_ascii_case("basic") {
        basic(state, header, credentials, client).await
    } else {
        Err(ApiError::unauthorized())
    }
}

async fn basic(
    state: &AdminState,
    header: &str,
    credentials: &str,
    client: &str,
) -> Result<Actor, ApiError> {
    let key = sha256(header);
    if let Some(actor) = cached(state, &key)? {
        return Ok(actor);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(ApiError::unauthorized)?;
    let (username, password) = decoded.split_once(':').ok_or_else(ApiError::unauthorized)?;
    let turn = state.login_guard().turn(username).await;
    // The same header may have been verified while this request waited for its turn.
    if let Some(actor) = cached(state, &key)? {
        return Ok(actor);
    }
    // An unknown user is checked against a decoy hash: refused as slowly as a wrong password.
    let stored = stored_hash(state, username)?;
    let (password, checked_hash) = (password.to_owned(), stored.clone());
    let checked = turn
        .verify(move || storage::verify_password_or_decoy(&password, checked_hash.as_deref()))
        .await;
    let is_valid = match checked {
        Ok(is_valid) => is_valid,
        Err(refusal) => {
            if let Some(held_back) = state.inner.refusal_log.note("basic_throttled") {
                tracing::warn!(user = %crate::guard::logged_name(username), %client, ?refusal, held_back, "admin API login throttled");
            }
            return Err(ApiError::refused(refusal));
        }
    };
    let Some(password_hash) = stored.filter(|_| is_valid) else {
        tracing::warn!(user = %crate::guard::logged_name(username), %client, "admin API login refused");
        return Err(ApiError::unauthorized());
    };
    state.inner.auth_cache.insert(
        key,
        Verified {
            username: username.to_owned(),
            password_hash,
            at: Instant::now(),
        },
    );
    Ok(Actor(username.to_owned()))
}

/// The actor of a Basic header verified lately, if its user's password is still the one
/// it was checked against.
fn cached(state: &AdminState, key: &[u8; 32]) -> Result<Option<Actor>, ApiError> {
    let Some(hit) = state.inner.auth_cache.get(key) else {
        return Ok(None);
    };
    let is_current =
        stored_hash(state, &hit.username)?.as_deref() == Some(hit.password_hash.as_str());
    Ok(is_current.then_some(Actor(hit.username)))
}

fn stored_hash(state: &AdminState, username: &str) -> Result<Option<String>, ApiError> {
    state
        .store()
        .admin_password_hash(username)
        .map_err(ApiError::from)
}

fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Compares two digests in time independent of where they differ.
fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
