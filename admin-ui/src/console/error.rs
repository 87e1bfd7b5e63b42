//! Failures of console requests that are not a form's validation problems (those are shown
//! next to their fields): each becomes a small HTML error page.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// Why a console request failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("{0} not found")]
    NotFound(String),
    /// A form post without the session's CSRF token, or with another one.
    #[error("the form's security token is missing or stale: reload the page and try again")]
    Csrf,
    #[error("the form could not be read: {0}")]
    BadForm(String),
    #[error("store: {0}")]
    Store(#[from] storage::StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ConsoleError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Csrf => StatusCode::FORBIDDEN,
            Self::BadForm(_) => StatusCode::BAD_REQUEST,
            Self::Store(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            // Named to the admin, and logged by the store (rate-limited), not per request.
            Self::Store(e @ storage::StoreError::Unwritable { .. }) => e.to_string(),
            Self::Store(_) | Self::Internal(_) => {
                tracing::error!(error = %self, "console request failed");
                "internal error: see the gateway's log".to_owned()
            }
            other => other.to_string(),
        };
        let body = super::layout::error_page(status, &message);
        (status, Html(body)).into_response()
    }
}
