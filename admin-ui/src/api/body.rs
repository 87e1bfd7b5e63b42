//! Request bodies: a size-limited byte extractor whose failures are JSON errors, and parsing
//! that names the offending field (`targets[0].addr: missing field`).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde_json::Value;
use storage::Problem;

use super::error::ApiError;

/// Largest request body accepted; a larger one is answered 413.
pub(crate) const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The raw body, read under [`MAX_BODY_BYTES`] (enforced by `DefaultBodyLimit` on the router).
pub(crate) struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))
    }
}

/// What the path id means for a body's `id`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum IdRule<'a> {
    /// POST: the body must carry an id.
    Required,
    /// PUT: a missing id takes the path's; a different one is a problem.
    FromPath(&'a str),
}

/// Parses an object body that has an `id`, applying `rule`. Every problem found (id and
/// shape) is reported at once.
pub(crate) fn object_with_id<T: DeserializeOwned>(
    bytes: &[u8],
    rule: IdRule<'_>,
) -> Result<T, ApiError> {
    let mut value = json(bytes)?;
    let Some(map) = value.as_object_mut() else {
        return Err(ApiError::invalid(
            "invalid body",
            vec![Problem::new("", "expected a JSON object")],
        ));
    };
    let mut problems = Vec::new();
    match (rule, map.get("id")) {
        (IdRule::Required, None) => {
            problems.push(Problem::new("id", "required"));
            // Parse anyway, so the other problems are reported with this one.
            map.insert("id".to_owned(), Value::String(String::new()));
        }
        (IdRule::FromPath(id), None) => {
            map.insert("id".to_owned(), Value::String(id.to_owned()));
        }
        (IdRule::FromPath(id), Some(body_id)) if body_id.as_str() != Some(id) => {
            problems.push(Problem::new(
                "id",
                format!("must equal the id in the path ({id})"),
            ));
        }
        _ => {}
    }
    match typed::<T>(value) {
        Ok(object) if problems.is_empty() => Ok(object),
        Ok(_) => Err(ApiError::invalid("invalid body", problems)),
        Err(mut e) => {
            problems.append(&mut e.problems);
            Err(ApiError::invalid("invalid body", problems))
        }
    }
}

/// Parses `bytes` as JSON; an empty body is `null`.
pub(crate) fn json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::invalid("malformed JSON body", vec![Problem::new("", e.to_string())])
    })
}

/// Converts a JSON value into `T`; on failure the problem's path names the field.
pub(crate) fn typed<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = match e.path().to_string() {
            root if root == "." => String::new(),
            path => path,
        };
        let message = e.inner().to_string();
        ApiError::invalid(
            "invalid body",
            vec![Problem::new(field_path(path, &message), message)],
        )
    })
}

/// serde reports a missing field at the enclosing object; point at the field. (An unknown
/// field's path already ends with it.)
fn field_path(parent: String, message: &str) -> String {
    let field = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|start| message.strip_prefix(start))
        .and_then(|rest| rest.split('`').next());
    match field {
        Some(field) if parent == field || parent.ends_with(&format!(".{field}")) => parent,
        Some(field) if parent.is_empty() => field.to_owned(),
        Some(field) => format!("{parent}.{field}"),
        None => parent,
    }
}
