//! Content types of writes and hidden JWT secrets.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::json;

use super::{Harness, TOKEN};

const SECRET: &str = "hmac-secret-0123456789";

fn post_consumer(content_type: Option<&str>, body: &'static str) -> Request<Body> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/consumers")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    builder.body(Body::from(body)).expect("request")
}

#[tokio::test]
async fn writes_without_a_json_or_yaml_content_type_answer_415_json() {
    let h = Harness::new();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let answer = h
            .send(post_consumer(content_type, r#"{"id": "acme"}"#))
            .await;
        assert_eq!(
            answer.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        assert!(answer.json["error"].is_string(), "{:?}", answer.bytes);
    }
    assert!(h.store.config().consumers.is_empty(), "nothing was written");
    let answer = h
        .send(post_consumer(
            Some("application/json; charset=utf-8"),
            r#"{"id": "acme"}"#,
        ))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.json);
}

#[tokio::test]
async fn jwt_secrets_are_shown_empty_and_kept_when_put_back_so() {
    let h = Harness::new();
    let issuer = json!({"id": "idp", "issuer": "https://idp.example", "algorithms": ["HS256"],
                        "keys": [{"kid": "k1", "secret": SECRET}]});
    let created = h.post("/api/v1/jwt-issuers", issuer).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    for path in [
        "/api/v1/jwt-issuers",
        "/api/v1/jwt-issuers/idp",
        "/api/v1/config",
        "/api/v1/config?format=yaml",
    ] {
        let answer = h.get(path).await;
        let text = String::from_utf8_lossy(&answer.bytes);
        assert!(!text.contains(SECRET), "{path}: {text}");
    }
    assert!(!created.json.to_string().contains(SECRET));
    let shown = h.get("/api/v1/jwt-issuers/idp").await.json;
    assert_eq!(shown["keys"][0]["secret"], "");

    let put = h.put("/api/v1/jwt-issuers/idp", shown).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.json);
    let config = h.get("/api/v1/config").await.json;
    let replaced = h.put("/api/v1/config", config).await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.json);
    let stored = h.store.config();
    assert_eq!(
        stored.jwt_issuers[0].keys[0].secret.as_deref(),
        Some(SECRET)
    );
}
