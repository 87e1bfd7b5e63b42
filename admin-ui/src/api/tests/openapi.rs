//! The OpenAPI document covers the router exactly and is well formed.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::Value;

use super::{Harness, TOKEN};
use crate::api::{openapi, table};

/// `path` with every `{param}` filled in.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "x" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn documents_every_route_and_method_the_router_serves() {
    let h = Harness::new();
    let served = h
        .send(
            Request::get("/openapi.json")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(served.status, StatusCode::OK, "no auth needed");
    let doc = served.json;
    let paths = doc["paths"].as_object().expect("paths");
    let table = table();
    assert_eq!(paths.len(), table.len(), "no undocumented or extra paths");
    for (path, _) in table {
        let item = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} not documented"));
        for method in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
            let req = Request::builder()
                .method(method.clone())
                .uri(concrete(path))
                .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                .body(Body::empty())
                .expect("request");
            let is_served = h.send(req).await.status != StatusCode::METHOD_NOT_ALLOWED;
            let is_documented = item.get(method.as_str().to_lowercase()).is_some();
            assert_eq!(
                is_served, is_documented,
                "{method} {path}: served {is_served}, documented {is_documented}"
            );
        }
    }
}

fn collect_refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r);
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[test]
fn is_openapi_3_with_every_reference_resolved() {
    let doc = openapi::document();
    assert!(doc["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.0.")));
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 20);
    for r in refs {
        let pointer = r.strip_prefix('#').expect("local reference");
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if method == "parameters" {
                continue;
            }
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path}"
            );
            let params = path.matches('{').count();
            let declared = item["parameters"].as_array().map_or(0, Vec::len);
            assert_eq!(params, declared, "{path}: every path parameter is declared");
        }
    }
}
