//! A consumer's basic-auth credentials. The password is stored as an argon2 hash and never
//! shown again.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use storage::{Change, CredentialRecord, Kind, Object};

use super::body::{self, RawBody};
use super::keys::require_consumer;
use super::{Actor, AdminState, ApiError};

/// Body of `POST /api/v1/consumers/{id}/basic-auth`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCredential {
    username: String,
    password: String,
}

/// A credential as shown: never its password or hash.
#[derive(Debug, Serialize)]
pub(crate) struct ShownCredential {
    username: String,
    consumer: String,
}

impl From<&CredentialRecord> for ShownCredential {
    fn from(c: &CredentialRecord) -> Self {
        Self {
            username: c.username.clone(),
            consumer: c.consumer.clone(),
        }
    }
}

/// `GET /api/v1/consumers/{id}/basic-auth`: the consumer's usernames.
pub(crate) async fn list(
    State(state): State<AdminState>,
    Path(consumer): Path<String>,
) -> Result<Json<Vec<ShownCredential>>, ApiError> {
    require_consumer(&state, &consumer)?;
    let config = state.store().config();
    Ok(Json(
        config
            .credentials
            .iter()
            .filter(|c| c.consumer == consumer)
            .map(ShownCredential::from)
            .collect(),
    ))
}

/// `POST /api/v1/consumers/{id}/basic-auth`: 201 `{username, consumer}`; 409 when the
/// username is taken.
pub(crate) async fn create(
    State(state): State<AdminState>,
    Extension(actor): Extension<Actor>,
    Path(consumer): Path<String>,
    RawBody(bytes): RawBody,
) -> Result<(StatusCode, Json<ShownCredential>), ApiError> {
    let new: NewCredential = body::typed(body::json(&bytes)?)?;
    require_consumer(&state, &consumer)?;
    let password = new.password;
    let password_hash = tokio::task::spawn_blocking(move || storage::hash_password(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let record = CredentialRecord {
        username: new.username,
        consumer,
        password_hash,
    };
    let shown = ShownCredential::from(&record);
    state
        .apply(Change::Create(Object::Credential(record)), &actor)
        .await?;
    Ok((StatusCode::CREATED, Json(shown)))
}

/// `DELETE /api/v1/consumers/{id}/basic-auth/{username}`: 204; 404 unless that credential
/// is the consumer's.
pub(crate) async fn remove(
    State(state): State<AdminState>,
    Extension(actor): Extension<Actor>,
    Path((consumer, username)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    require_consumer(&state, &consumer)?;
    let is_theirs = state
        .store()
        .config()
        .credentials
        .iter()
        .any(|c| c.username == username && c.consumer == consumer);
    if !is_theirs {
        return Err(ApiError::not_found(Kind::Credential, &username));
    }
    let change = Change::Delete {
        kind: Kind::Credential,
        id: username,
    };
    state.apply(change, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}
