//! Admin authentication: bearer token, console admins' Basic credentials, the bootstrap.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use base64::Engine as _;

use super::{Harness, TOKEN};
use crate::{bootstrap_admin, ADMIN_USER};

fn get_with(authorization: Option<String>) -> Request<Body> {
    let mut builder = Request::get("/api/v1/upstreams");
    if let Some(value) = authorization {
        builder = builder.header(header::AUTHORIZATION, value);
    }
    builder.body(Body::empty()).expect("request")
}

fn basic(user: &str, password: &str) -> Option<String> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    Some(format!("Basic {encoded}"))
}

#[tokio::test]
async fn refuses_missing_or_wrong_credentials_with_401_and_a_challenge() {
    let h = Harness::new();
    for authorization in [
        None,
        Some("Bearer wrong-token".to_owned()),
        Some(format!("Bearer {TOKEN}x")),
        Some(TOKEN.to_owned()),
        basic(ADMIN_USER, "no-admin-yet"),
        Some("Basic !!!".to_owned()),
    ] {
        let answer = h.send(get_with(authorization.clone())).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{authorization:?}");
        assert_eq!(answer.headers[header::WWW_AUTHENTICATE], "Bearer");
        assert!(answer.json["error"].is_string());
        assert!(answer.json["problems"].is_array());
    }
    let ok = h.send(get_with(Some(format!("Bearer {TOKEN}")))).await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test]
async fn accepts_a_console_admins_password_until_it_changes() {
    let h = Harness::new();
    assert_eq!(
        bootstrap_admin(&h.store, Some("first-pass".into())).expect("bootstrap"),
        None
    );
    let good = basic(ADMIN_USER, "first-pass");
    assert_eq!(h.send(get_with(good.clone())).await.status, StatusCode::OK);
    assert_eq!(
        h.send(get_with(good.clone())).await.status,
        StatusCode::OK,
        "cached"
    );
    let wrong = basic(ADMIN_USER, "other-pass");
    assert_eq!(
        h.send(get_with(wrong)).await.status,
        StatusCode::UNAUTHORIZED
    );

    bootstrap_admin(&h.store, Some("second-pass".into())).expect("reset");
    assert_eq!(
        h.send(get_with(good)).await.status,
        StatusCode::UNAUTHORIZED,
        "the cached login ends with the password"
    );
    let new = basic(ADMIN_USER, "second-pass");
    assert_eq!(h.send(get_with(new)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn records_the_token_or_the_admin_as_the_actor() {
    let h = Harness::new();
    bootstrap_admin(&h.store, Some("pass-word".into())).expect("bootstrap");
    let by_token = h
        .post("/api/v1/consumers", serde_json::json!({"id": "one"}))
        .await;
    assert_eq!(by_token.status, StatusCode::CREATED);
    let req = Request::post("/api/v1/consumers")
        .header(
            header::AUTHORIZATION,
            basic(ADMIN_USER, "pass-word").expect("header"),
        )
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"id": "two"}"#))
        .expect("request");
    assert_eq!(h.send(req).await.status, StatusCode::CREATED);
    let log = h.store.audit_log(2).expect("audit log");
    let actors: Vec<&str> = log.iter().map(|e| e.actor.as_str()).collect();
    assert_eq!(
        actors,
        [ADMIN_USER, crate::api::auth::TOKEN_ACTOR],
        "newest first"
    );
}

#[test]
fn generates_an_admin_password_only_on_first_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = storage::Store::open(dir.path()).expect("open");
    let generated = bootstrap_admin(&store, None)
        .expect("bootstrap")
        .expect("a password on first start");
    assert!(generated.len() >= 16);
    let hash = store
        .admin_password_hash(ADMIN_USER)
        .expect("read")
        .expect("admin exists");
    assert!(storage::verify_password(&generated, &hash));
    assert_eq!(bootstrap_admin(&store, None).expect("second start"), None);
    let same = store.admin_password_hash(ADMIN_USER).expect("read");
    assert_eq!(same.as_deref(), Some(hash.as_str()), "the password is kept");
}
