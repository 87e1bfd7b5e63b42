//! The uniform collections: status codes, id rules, problems, limits.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::json;

use super::{problem_paths, upstream, Harness, TOKEN};

#[tokio::test]
async fn creates_reads_lists_replaces_and_deletes_an_upstream() {
    let h = Harness::new();
    let created = h.post("/api/v1/upstreams", upstream("orders")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    assert_eq!(created.json["id"], "orders");
    assert_eq!(
        created.json["balancing"], "round_robin",
        "defaults are filled in"
    );

    let read = h.get("/api/v1/upstreams/orders").await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.json, created.json);
    let list = h.get("/api/v1/upstreams").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.json, json!([created.json]));

    let replaced = h
        .put(
            "/api/v1/upstreams/orders",
            json!({"targets": [{"addr": "127.0.0.1:9009"}], "retries": 3}),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.json);
    assert_eq!(
        replaced.json["id"], "orders",
        "a body without id takes the path's"
    );
    assert_eq!(replaced.json["retries"], 3);
    assert_eq!(
        h.store.config().upstreams[0].targets[0].addr,
        "127.0.0.1:9009"
    );

    let deleted = h.delete("/api/v1/upstreams/orders").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(deleted.bytes.is_empty());
    assert_eq!(
        h.get("/api/v1/upstreams/orders").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn answers_404_for_missing_objects_of_every_kind() {
    let h = Harness::new();
    for kind in [
        "upstreams",
        "routes",
        "consumers",
        "plans",
        "jwt-issuers",
        "certificates",
    ] {
        let path = format!("/api/v1/{kind}/nope");
        let read = h.get(&path).await;
        assert_eq!(read.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(problem_paths(&read), Vec::<String>::new());
        assert_eq!(
            h.delete(&path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let put = h.put("/api/v1/upstreams/nope", upstream("nope")).await;
    assert_eq!(put.status, StatusCode::NOT_FOUND, "{}", put.json);
}

#[tokio::test]
async fn refuses_an_existing_id_on_post_with_409() {
    let h = Harness::new();
    h.seed().await;
    let again = h.post("/api/v1/upstreams", upstream("orders")).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.json["error"]
        .as_str()
        .is_some_and(|e| e.contains("orders")));
}

#[tokio::test]
async fn refuses_to_delete_an_upstream_a_route_uses() {
    let h = Harness::new();
    h.seed().await;
    let answer = h.delete("/api/v1/upstreams/orders").await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.json);
    assert_eq!(h.store.config().upstreams.len(), 1, "nothing was deleted");
    assert_eq!(
        h.delete("/api/v1/routes/orders-v1").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.delete("/api/v1/upstreams/orders").await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn requires_an_id_on_post() {
    let h = Harness::new();
    let answer = h
        .post(
            "/api/v1/upstreams",
            json!({"targets": [{"addr": "127.0.0.1:1"}]}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(problem_paths(&answer), ["id"]);
}

#[tokio::test]
async fn refuses_a_body_id_that_differs_from_the_path() {
    let h = Harness::new();
    h.seed().await;
    let answer = h.put("/api/v1/upstreams/orders", upstream("other")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(problem_paths(&answer), ["id"]);
}

#[tokio::test]
async fn names_missing_and_unknown_fields() {
    let h = Harness::new();
    let missing = h.post("/api/v1/upstreams", json!({"id": "orders"})).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(problem_paths(&missing), ["targets"]);

    let unknown = h
        .post(
            "/api/v1/upstreams",
            json!({"id": "orders", "targets": [{"addr": "127.0.0.1:1", "wieght": 1}]}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(problem_paths(&unknown), ["targets[0].wieght"]);
}

#[tokio::test]
async fn lists_every_validation_problem_with_its_path() {
    let h = Harness::new();
    let answer = h
        .post(
            "/api/v1/plans",
            json!({"id": "gold", "rate_limit": {"requests": 0, "per": "second", "burst": 0},
                   "quota": {"requests": 0, "per": "day"}}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.json);
    let paths = problem_paths(&answer);
    for field in ["rate_limit.requests", "rate_limit.burst", "quota.requests"] {
        assert!(
            paths.iter().any(|p| p.ends_with(field)),
            "{field} not in {paths:?}"
        );
    }
    assert!(h.store.config().plans.is_empty(), "nothing was written");
}

#[tokio::test]
async fn answers_malformed_json_with_400() {
    let h = Harness::new();
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/consumers")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"id\": \"acme\","))
        .expect("request");
    let answer = h.send(req).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(problem_paths(&answer).len(), 1);
}

#[tokio::test]
async fn refuses_bodies_over_the_limit_with_413_json() {
    let h = Harness::new();
    let huge = vec![b' '; super::super::body::MAX_BODY_BYTES + 1];
    let req = Request::builder()
        .method(Method::PUT)
        .uri("/api/v1/config")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(huge))
        .expect("request");
    let answer = h.send(req).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(answer.json["error"].is_string(), "{:?}", answer.bytes);
    assert!(answer.json["problems"].is_array());
}

#[tokio::test]
async fn answers_unknown_endpoints_and_methods_with_json() {
    let h = Harness::new();
    let missing = h.get("/api/v1/nothing-here").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.json["error"].is_string());
    let wrong = h.call(Method::PATCH, "/api/v1/upstreams", None).await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(wrong.json["error"].is_string());
}
