//! The whole config: export (`GET /api/v1/config`, JSON or YAML) and atomic replacement
//! (`PUT /api/v1/config`, JSON or YAML by `Content-Type`).

use axum::extract::{RawQuery, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::Value;
use storage::{Change, Config, Problem};

use super::body::{self, RawBody};
use super::{Actor, AdminState, ApiError};

const YAML: &str = "application/yaml";

/// `GET /api/v1/config`: YAML with `Accept: application/yaml` (or `?format=yaml`), JSON
/// otherwise. Keys and credentials appear as hashes; certificates without private keys,
/// JWT issuers' HMAC secrets as `""`.
pub(crate) async fn export(
    State(state): State<AdminState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let config = shown(&state.store().config());
    let wants_yaml = query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|pair| pair == "format=yaml"))
        || header_mentions_yaml(&headers, ACCEPT);
    if wants_yaml {
        let text = serde_yaml::to_string(&config).map_err(ApiError::internal)?;
        Ok(([(CONTENT_TYPE, HeaderValue::from_static(YAML))], text).into_response())
    } else {
        Ok(Json(config).into_response())
    }
}

/// `PUT /api/v1/config`: replaces the whole config atomically (what the body lacks is
/// deleted). 200 with the new config as `GET` shows it; 400 with every problem, paths such as
/// `routes[orders].policies[1].burst`.
pub(crate) async fn replace(
    State(state): State<AdminState>,
    Extension(actor): Extension<Actor>,
    headers: HeaderMap,
    RawBody(bytes): RawBody,
) -> Result<Json<Config>, ApiError> {
    let value = if header_mentions_yaml(&headers, CONTENT_TYPE) {
        serde_yaml::from_slice::<Value>(&bytes).map_err(|e| {
            ApiError::invalid("malformed YAML body", vec![Problem::new("", e.to_string())])
        })?
    } else {
        body::json(&bytes)?
    };
    let config: Config = body::typed(value.clone()).map_err(|mut e| {
        for p in &mut e.problems {
            p.path = name_items_by_id(&p.path, &value);
        }
        e
    })?;
    state
        .apply(
            Change::Import {
                config,
                replace: true,
            },
            &actor,
        )
        .await?;
    Ok(Json(shown(&state.store().config())))
}

/// The config as the API shows it: no certificate private keys, JWT HMAC secrets `""`.
/// A config put back with them so keeps the stored ones (the store sees to it).
fn shown(config: &Config) -> Config {
    storage::without_secrets(config)
}

fn header_mentions_yaml(headers: &HeaderMap, name: axum::http::HeaderName) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("yaml"))
}

/// `routes[2].policies[1].burst` -> `routes[orders].policies[1].burst` when item 2 of the
/// top-level list `routes` has id `orders`, as the store names items in its problems.
fn name_items_by_id(path: &str, value: &Value) -> String {
    let Some((list, rest)) = path.split_once('[') else {
        return path.to_owned();
    };
    let Some((index, tail)) = rest.split_once(']') else {
        return path.to_owned();
    };
    let id = index
        .parse::<usize>()
        .ok()
        .and_then(|i| value.get(list)?.get(i)?.get("id")?.as_str());
    match id {
        Some(id) => format!("{list}[{id}]{tail}"),
        None => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::name_items_by_id;

    #[test]
    fn names_list_items_by_their_id() {
        let value = serde_json::json!({"routes": [{"id": "a"}, {"id": "orders"}]});
        assert_eq!(
            name_items_by_id("routes[1].policies[0].burst", &value),
            "routes[orders].policies[0].burst"
        );
        assert_eq!(name_items_by_id("routes[5].x", &value), "routes[5].x");
        assert_eq!(name_items_by_id("plans", &value), "plans");
    }
}
