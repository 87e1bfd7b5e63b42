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

#[tokio::test]
async fn a_store_that_cannot_write_shows_in_status_and_refuses_writes_by_name() {
    let h = Harness::new();
    // A directory where the acknowledged-revision file's temporary goes: sled takes the
    // write, the file cannot be replaced, and the store cannot recover while it stays.
    let blocker = h
        .dir()
        .join(format!("{}.tmp", storage::acknowledged::FILE_NAME));
    std::fs::create_dir(&blocker).expect("blocker");
    let first = h.post("/api/v1/consumers", json!({"id": "acme"})).await;
    assert_eq!(
        first.status,
        StatusCode::CREATED,
        "sled has it: acknowledged"
    );
    let status = h.get("/api/v1/status").await.json;
    assert_eq!(status["store"]["ok"], false, "{status}");
    assert_eq!(status["store"]["errors"], 1, "{status}");
    assert!(status["store"]["last_error_at"].is_u64(), "{status}");

    let refused = h.post("/api/v1/consumers", json!({"id": "beta"})).await;
    assert_eq!(refused.status, StatusCode::INTERNAL_SERVER_ERROR);
    let error = refused.json["error"].as_str().unwrap_or_default();
    assert!(error.contains("cannot write"), "{}", refused.json);
    assert_eq!(h.store.revision(), 1, "nothing changed");
    assert_eq!(
        h.get("/api/v1/consumers/beta").await.status,
        StatusCode::NOT_FOUND
    );

    std::fs::remove_dir(&blocker).expect("blocker removed");
    let after = h.post("/api/v1/consumers", json!({"id": "beta"})).await;
    assert_eq!(after.status, StatusCode::CREATED, "{}", after.json);
    assert_eq!(h.store.revision(), 2);
    let status = h.get("/api/v1/status").await.json;
    assert_eq!(status["store"]["ok"], true, "{status}");
    assert_eq!(status["store"]["errors"], 2, "{status}");
}
