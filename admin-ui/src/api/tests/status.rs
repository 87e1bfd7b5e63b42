//! `/healthz`, `/api/v1/status` and quota usage.

use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

use super::{Harness, VERSION};

#[tokio::test]
async fn healthz_needs_no_auth_and_follows_readiness() {
    let h = Harness::new();
    let req = || {
        Request::get("/healthz")
            .body(Body::empty())
            .expect("request")
    };
    assert_eq!(h.send(req()).await.status, StatusCode::OK);
    h.live.ready.store(false, Ordering::SeqCst);
    assert_eq!(h.send(req()).await.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn reports_revision_version_and_target_health() {
    let h = Harness::new();
    h.seed().await;
    let answer = h.get("/api/v1/status").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json["revision"], h.store.revision());
    assert!(h.store.revision() >= 4, "seeding made four changes");
    assert_eq!(answer.json["version"], VERSION);
    assert!(answer.json["uptime_seconds"].is_u64());
    assert_eq!(
        answer.json["last_reload_error"],
        "upstream orders: bad address"
    );
    assert_eq!(
        answer.json["store"],
        json!({"ok": true, "last_error": null, "last_error_at": null, "errors": 0})
    );
    assert_eq!(
        answer.json["upstreams"],
        json!([{"id": "orders", "targets": [
            {"addr": "127.0.0.1:9001", "healthy": false},
            {"addr": "127.0.0.1:9002", "healthy": null}
        ]}])
    );
}

#[tokio::test]
async fn reports_usage_of_consumers_with_and_without_a_quota() {
    let h = Harness::new();
    h.seed().await;
    assert_eq!(
        h.post("/api/v1/consumers", json!({"id": "free"}))
            .await
            .status,
        StatusCode::CREATED
    );
    let acme = h.get("/api/v1/consumers/acme/usage").await;
    assert_eq!(acme.status, StatusCode::OK);
    assert_eq!(
        acme.json,
        json!({"period": "day", "used": 7, "limit": 10, "remaining": 3, "resets_at": 1_700_000_000u64})
    );
    let free = h.get("/api/v1/consumers/free/usage").await;
    assert_eq!(free.status, StatusCode::OK);
    assert_eq!(free.json["period"], serde_json::Value::Null);
    assert_eq!(free.json["used"], 0);
    assert_eq!(free.json["limit"], serde_json::Value::Null);
    assert_eq!(free.json["remaining"], serde_json::Value::Null);
    assert_eq!(
        h.get("/api/v1/consumers/ghost/usage").await.status,
        StatusCode::NOT_FOUND
    );
}
