//! API keys, basic-auth credentials and certificates: secrets are shown once or never.

use axum::http::{header, StatusCode};
use serde_json::{json, Value};

use super::{problem_paths, Harness, TOKEN};

#[tokio::test]
async fn shows_a_new_key_once_and_never_lists_it_or_its_hash() {
    let h = Harness::new();
    h.seed().await;
    let created = h
        .post(
            "/api/v1/consumers/acme/keys",
            json!({"label": "ci", "expires_at": 4_000_000_000u64}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    let key = created.json["key"].as_str().expect("key shown");
    let prefix = created.json["prefix"].as_str().expect("prefix");
    assert!(
        key.starts_with("tg_") && key.starts_with(prefix),
        "{key} / {prefix}"
    );
    assert_eq!(created.json["label"], "ci");
    assert_eq!(created.json["expires"], 4_000_000_000u64);
    assert!(created.json.get("hash").is_none());

    let stored = &h.store.config().keys;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].hash,
        storage::hash_key(key),
        "the store keeps the hash"
    );

    let list = h.get("/api/v1/consumers/acme/keys").await;
    assert_eq!(list.status, StatusCode::OK);
    let items = list.json.as_array().expect("list");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], created.json["id"]);
    assert_eq!(items[0]["prefix"], prefix);
    assert!(
        items[0].get("hash").is_none() && items[0].get("key").is_none(),
        "{}",
        items[0]
    );
    assert!(!list.bytes.windows(key.len()).any(|w| w == key.as_bytes()));
}

#[tokio::test]
async fn creates_a_key_from_an_empty_json_body_but_not_from_a_bare_post() {
    let h = Harness::new();
    h.seed().await;
    let post = |content_type: Option<&str>| {
        let mut builder = axum::http::Request::builder()
            .method(axum::http::Method::POST)
            .uri("/api/v1/consumers/acme/keys")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
        if let Some(content_type) = content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        builder.body(axum::body::Body::empty()).expect("request")
    };
    let created = h.send(post(Some("application/json"))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    assert_eq!(created.json["label"], Value::Null);
    assert_eq!(created.json["expires"], Value::Null);
    // A bare POST is one any web page can send with a browser's stored Basic credentials.
    let bare = h.send(post(None)).await;
    assert_eq!(bare.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(h.store.config().keys.len(), 1);
}

#[tokio::test]
async fn deletes_only_the_consumers_own_keys() {
    let h = Harness::new();
    h.seed().await;
    assert_eq!(
        h.post("/api/v1/consumers", json!({"id": "other"}))
            .await
            .status,
        StatusCode::CREATED
    );
    let created = h.post("/api/v1/consumers/acme/keys", json!({})).await;
    let id = created.json["id"].as_str().expect("id");
    let elsewhere = h
        .delete(&format!("/api/v1/consumers/other/keys/{id}"))
        .await;
    assert_eq!(elsewhere.status, StatusCode::NOT_FOUND);
    let own = h.delete(&format!("/api/v1/consumers/acme/keys/{id}")).await;
    assert_eq!(own.status, StatusCode::NO_CONTENT);
    assert!(h.store.config().keys.is_empty());
    let again = h.delete(&format!("/api/v1/consumers/acme/keys/{id}")).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn answers_404_for_keys_and_credentials_of_a_missing_consumer() {
    let h = Harness::new();
    for path in [
        "/api/v1/consumers/ghost/keys",
        "/api/v1/consumers/ghost/basic-auth",
    ] {
        assert_eq!(h.get(path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    let key = h.post("/api/v1/consumers/ghost/keys", json!({})).await;
    assert_eq!(key.status, StatusCode::NOT_FOUND);
    let cred = h
        .post(
            "/api/v1/consumers/ghost/basic-auth",
            json!({"username": "u", "password": "p"}),
        )
        .await;
    assert_eq!(cred.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn stores_basic_auth_passwords_as_hashes_and_never_shows_them() {
    let h = Harness::new();
    h.seed().await;
    let body = json!({"username": "alice", "password": "s3cret-pass"});
    let created = h
        .post("/api/v1/consumers/acme/basic-auth", body.clone())
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    assert_eq!(
        created.json,
        json!({"username": "alice", "consumer": "acme"})
    );

    let stored = &h.store.config().credentials;
    assert!(storage::verify_password(
        "s3cret-pass",
        &stored[0].password_hash
    ));

    let list = h.get("/api/v1/consumers/acme/basic-auth").await;
    assert_eq!(
        list.json,
        json!([{"username": "alice", "consumer": "acme"}])
    );

    let again = h.post("/api/v1/consumers/acme/basic-auth", body).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.json);

    let missing = h
        .post(
            "/api/v1/consumers/acme/basic-auth",
            json!({"username": "bob"}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(problem_paths(&missing), ["password"]);

    assert_eq!(
        h.delete("/api/v1/consumers/acme/basic-auth/bob")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.delete("/api/v1/consumers/acme/basic-auth/alice")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert!(h.store.config().credentials.is_empty());
}

pub(super) const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
pub(super) const PRIVATE_KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

#[tokio::test]
async fn never_shows_a_certificates_private_key() {
    let h = Harness::new();
    let created = h
        .post(
            "/api/v1/certificates",
            json!({"id": "main", "snis": ["api.example.com"], "cert": CERT, "key": PRIVATE_KEY}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    assert_eq!(created.json["cert"], CERT);
    assert!(created.json.get("key").is_none(), "{}", created.json);
    assert_eq!(h.store.config().certificates[0].key, PRIVATE_KEY, "stored");

    for path in [
        "/api/v1/certificates",
        "/api/v1/certificates/main",
        "/api/v1/config",
    ] {
        let answer = h.get(path).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        let text = String::from_utf8_lossy(&answer.bytes);
        assert!(text.contains("api.example.com"), "{path}: {text}");
        assert!(
            !text.contains("PRIVATE KEY"),
            "{path} shows the key: {text}"
        );
    }
    assert_eq!(
        h.delete("/api/v1/certificates/main").await.status,
        StatusCode::NO_CONTENT
    );
}
