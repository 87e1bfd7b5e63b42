//! A consumer's API keys. The key itself is shown once, in the answer to POST; the store keeps
//! its hash, and listings never show the hash.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use storage::{Change, ConsumerSpec, KeyRecord, Kind, Object};

use super::body::{self, RawBody};
use super::resources::find;
use super::{Actor, AdminState, ApiError};
use crate::unix_now;

/// Body of `POST /api/v1/consumers/{id}/keys`; the body itself is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    #[serde(default)]
    label: Option<String>,
    /// Unix seconds; absent: never expires.
    #[serde(default)]
    expires_at: Option<u64>,
}

/// The answer to key creation: the only time `key` is shown.
#[derive(Debug, Serialize)]
pub(crate) struct CreatedKey {
    id: String,
    key: String,
    prefix: String,
    label: Option<String>,
    created: u64,
    expires: Option<u64>,
}

/// A key as listed: everything but the hash.
#[derive(Debug, Serialize)]
struct ListedKey {
    id: String,
    consumer: String,
    prefix: String,
    label: Option<String>,
    created: u64,
    expires: Option<u64>,
    revoked: bool,
    /// Unix seconds of the last request with this key since the proxy started.
    last_used: Option<u64>,
}

impl ListedKey {
    fn new(k: &KeyRecord, last_used: Option<u64>) -> Self {
        Self {
            id: k.id.clone(),
            consumer: k.consumer.clone(),
            prefix: k.prefix.clone(),
            label: k.label.clone(),
            created: k.created,
            expires: k.expires,
            revoked: k.revoked,
            last_used,
        }
    }
}

/// 404 unless consumer `id` exists.
pub(crate) fn require_consumer(state: &AdminState, id: &str) -> Result<(), ApiError> {
    find::<ConsumerSpec>(state, id)
        .map(drop)
        .ok_or_else(|| ApiError::not_found(Kind::Consumer, id))
}

/// `GET /api/v1/consumers/{id}/keys`: the consumer's keys without their hashes.
pub(crate) async fn list(
    State(state): State<AdminState>,
    Path(consumer): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    require_consumer(&state, &consumer)?;
    let config = state.store().config();
    config
        .keys
        .iter()
        .filter(|k| k.consumer == consumer)
        .map(|k| {
            let listed = ListedKey::new(k, state.live().key_last_used(&k.hash));
            serde_json::to_value(listed).map_err(ApiError::internal)
        })
        .collect::<Result<_, _>>()
        .map(Json)
}

/// `POST /api/v1/consumers/{id}/keys`: 201 with the new key, shown this once.
pub(crate) async fn create(
    State(state): State<AdminState>,
    Extension(actor): Extension<Actor>,
    Path(consumer): Path<String>,
    RawBody(bytes): RawBody,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let new: NewKey = match body::json(&bytes)? {
        Value::Null => NewKey::default(),
        value => body::typed(value)?,
    };
    require_consumer(&state, &consumer)?;
    let (key, hash, prefix) = storage::new_api_key();
    let record = KeyRecord {
        id: new_key_id(),
        consumer,
        hash,
        prefix,
        label: new.label,
        created: unix_now(),
        expires: new.expires_at,
        revoked: false,
    };
    let created = CreatedKey {
        id: record.id.clone(),
        key,
        prefix: record.prefix.clone(),
        label: record.label.clone(),
        created: record.created,
        expires: record.expires,
    };
    state
        .apply(Change::Create(Object::Key(record)), &actor)
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `DELETE /api/v1/consumers/{id}/keys/{key_id}`: 204; 404 unless that key is the consumer's.
pub(crate) async fn remove(
    State(state): State<AdminState>,
    Extension(actor): Extension<Actor>,
    Path((consumer, key_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    require_consumer(&state, &consumer)?;
    let is_theirs = state
        .store()
        .config()
        .keys
        .iter()
        .any(|k| k.id == key_id && k.consumer == consumer);
    if !is_theirs {
        return Err(ApiError::not_found(Kind::Key, &key_id));
    }
    let change = Change::Delete {
        kind: Kind::Key,
        id: key_id,
    };
    state.apply(change, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A fresh key id: `k` and 12 hex digits (a valid object id).
fn new_key_id() -> String {
    format!(
        "k{:012x}",
        rand::thread_rng().gen::<u64>() & 0xffff_ffff_ffff
    )
}
