//! Request bodies: a size-limited byte extractor whose failures are JSON errors, and parsing
//! that names the offending field (`targets[0].addr: missing field`).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use storage::Problem;

use super::error::ApiError;

/// Largest request body accepted; a larger one is answered 413.
pub(crate) const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The raw body, read under [`MAX_BODY_BYTES`] (enforced by `DefaultBodyLimit` on the router),
/// of a request whose `Content-Type` is JSON or YAML (see [`is_accepted_content_type`]);
/// another one, or none on a POST or with a non-empty body, is answered 415. A browser
/// posts a form (`text/plain`, urlencoded, multipart), or nothing without a type, to
/// another site without asking it first; it cannot send JSON without a CORS preflight,
/// which the admin API never allows.
pub(crate) struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_post = req.method() == Method::POST;
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("(not text)").to_owned());
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;
        match content_type {
            Some(ct) if !is_accepted_content_type(&ct) => {
                Err(unsupported(&format!("Content-Type {ct} is not accepted")))
            }
            None if is_post => Err(unsupported("a POST needs a Content-Type")),
            None if !bytes.iter().all(u8::is_ascii_whitespace) => {
                Err(unsupported("a body needs a Content-Type"))
            }
            _ => Ok(RawBody(bytes)),
        }
    }
}

fn unsupported(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("{what}: send application/json or application/yaml"),
    )
}

/// `application/json`, `application/yaml` (or `x-yaml`), and any `application/…+json` or
/// `+yaml`, with any parameters (`; charset=utf-8`); case does not matter.
pub(crate) fn is_accepted_content_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let Some(subtype) = essence.strip_prefix("application/") else {
        return false;
    };
    matches!(subtype, "json" | "yaml" | "x-yaml")
        || (subtype.ends_with("+json") || subtype.ends_with("+yaml")) && !subtype.starts_with('+')
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

#[cfg(test)]
mod tests {
    use super::is_accepted_content_type;

    #[test]
    fn accepts_json_and_yaml_with_parameters_and_suffixes_only() {
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
            "application/yaml",
            "application/x-yaml;charset=UTF-8",
            "application/vnd.tollgate+yaml",
        ] {
            assert!(is_accepted_content_type(ok), "{ok}");
        }
        for refused in [
            "text/plain",
            "text/plain; x=application/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
            "application/+json",
            "text/json",
            "",
        ] {
            assert!(!is_accepted_content_type(refused), "{refused}");
        }
    }
}
