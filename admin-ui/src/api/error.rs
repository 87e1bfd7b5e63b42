//! The one place where failures become HTTP answers: every error body is
//! `{"error": "...", "problems": [{"path", "message"}]}` (problems may be empty).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use storage::{Kind, Problem, StoreError};

/// An admin API failure, ready to be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub error: String,
    pub problems: Vec<Problem>,
    /// Whole seconds for `Retry-After` (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self {
            status,
            error: error.into(),
            problems: Vec::new(),
            retry_after: None,
        }
    }

    /// 400 with every problem found.
    pub fn invalid(error: impl Into<String>, problems: Vec<Problem>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: error.into(),
            problems,
            retry_after: None,
        }
    }

    /// 404 for one object.
    pub fn not_found(kind: Kind, id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{kind} {id} not found"))
    }

    /// 401; the answer carries `WWW-Authenticate: Bearer`.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "missing or wrong credentials")
    }

    /// 429 (the name is throttled) or 503 (too many password checks at once), with
    /// `Retry-After`.
    pub fn refused(refusal: crate::guard::Refusal) -> Self {
        let (status, error) = match refusal {
            crate::guard::Refusal::Throttled { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too many wrong passwords for this user: retry later",
            ),
            crate::guard::Refusal::Busy { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "too many password checks at once: retry later",
            ),
        };
        Self {
            retry_after: Some(refusal.retry_after_secs()),
            ..Self::new(status, error)
        }
    }

    /// 500. The cause is logged here and not shown to the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "admin API internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { kind, id } => Self::not_found(kind, &id),
            e @ (StoreError::Conflict { .. } | StoreError::InUse { .. }) => {
                Self::new(StatusCode::CONFLICT, e.to_string())
            }
            StoreError::Invalid { problems } => Self::invalid("invalid config", problems),
            // Named to the admin: a full disk is theirs to fix (and logged by the store).
            e @ StoreError::Unwritable { .. } => {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
            other @ (StoreError::Db(_)
            | StoreError::Corrupt(_)
            | StoreError::Behind { .. }
            | StoreError::OutOfOrder { .. }
            | StoreError::Io { .. }) => Self::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.error, "problems": self.problems });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
