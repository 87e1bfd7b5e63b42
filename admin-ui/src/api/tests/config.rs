//! `GET /api/v1/config` (JSON and YAML) and `PUT /api/v1/config` (atomic replacement).

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};

use super::{problem_paths, upstream, Harness, TOKEN};

fn put_yaml(text: String) -> Request<Body> {
    Request::builder()
        .method(Method::PUT)
        .uri("/api/v1/config")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/yaml")
        .body(Body::from(text))
        .expect("request")
}

fn get_yaml(uri: &str, accept: Option<&str>) -> Request<Body> {
    let mut builder = Request::get(uri).header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    if let Some(accept) = accept {
        builder = builder.header(header::ACCEPT, accept);
    }
    builder.body(Body::empty()).expect("request")
}

#[tokio::test]
async fn exports_json_and_yaml_that_replace_back_to_the_same_config() {
    let h = Harness::new();
    h.seed().await;
    let key = h.post("/api/v1/consumers/acme/keys", json!({})).await;
    assert_eq!(key.status, StatusCode::CREATED);
    let cert = json!({"id": "main", "snis": ["api.example.com"], "cert": super::keys::CERT,
                      "key": super::keys::PRIVATE_KEY});
    assert_eq!(
        h.post("/api/v1/certificates", cert).await.status,
        StatusCode::CREATED
    );
    let before = h.store.config();

    let exported = h.get("/api/v1/config").await;
    assert_eq!(exported.status, StatusCode::OK);
    assert_eq!(exported.json["routes"][0]["id"], "orders-v1");
    assert_eq!(
        exported.json["keys"][0]["hash"],
        before.keys[0].hash.to_string()
    );
    assert!(
        exported.json["certificates"][0].get("key").is_none(),
        "private key hidden"
    );

    let replaced = h.put("/api/v1/config", exported.json.clone()).await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.json);
    assert_eq!(replaced.json, exported.json);
    assert_eq!(
        *h.store.config(),
        *before,
        "a round trip changes nothing, the private key included"
    );

    for (uri, accept) in [
        ("/api/v1/config", Some("application/yaml")),
        ("/api/v1/config?format=yaml", None),
    ] {
        let yaml = h.send(get_yaml(uri, accept)).await;
        assert_eq!(yaml.status, StatusCode::OK);
        let content_type = yaml.headers[header::CONTENT_TYPE].to_str().expect("ascii");
        assert!(content_type.contains("yaml"), "{content_type}");
        let parsed: Value = serde_yaml::from_slice(&yaml.bytes).expect("valid YAML");
        assert_eq!(parsed, exported.json, "YAML and JSON say the same");
    }

    let yaml = h.send(get_yaml("/api/v1/config?format=yaml", None)).await;
    let text = String::from_utf8(yaml.bytes.to_vec()).expect("utf-8");
    let answer = h.send(put_yaml(text)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(*h.store.config(), *before);
}

#[tokio::test]
async fn replacing_drops_what_the_new_config_lacks() {
    let h = Harness::new();
    h.seed().await;
    let smaller = json!({"upstreams": [upstream("billing")]});
    let answer = h.put("/api/v1/config", smaller).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    let config = h.store.config();
    assert_eq!(config.upstreams.len(), 1);
    assert_eq!(config.upstreams[0].id, "billing");
    assert!(config.routes.is_empty() && config.consumers.is_empty() && config.plans.is_empty());
}

#[tokio::test]
async fn refuses_an_invalid_config_with_every_problem_and_changes_nothing() {
    let h = Harness::new();
    h.seed().await;
    let revision = h.store.revision();
    let bad = json!({
        "upstreams": [upstream("orders")],
        "routes": [{"id": "orders", "paths": ["/o"], "upstream": "missing",
                    "policies": [{"type": "key_auth"},
                                 {"type": "rate_limit", "requests": 0, "per": "second", "burst": 0}]}],
        "plans": [{"id": "gold", "quota": {"requests": 0, "per": "day"}}]
    });
    let answer = h.put("/api/v1/config", bad).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.json);
    let paths = problem_paths(&answer);
    for expected in [
        "routes[orders].upstream",
        "routes[orders].policies[1].requests",
        "routes[orders].policies[1].burst",
        "plans[gold].quota.requests",
    ] {
        assert!(
            paths.iter().any(|p| p == expected),
            "{expected} not in {paths:?}"
        );
    }
    assert_eq!(h.store.revision(), revision, "nothing was written");
    assert_eq!(h.store.config().routes[0].id, "orders-v1");
}

#[tokio::test]
async fn names_a_misspelt_field_of_a_config_by_the_items_id() {
    let h = Harness::new();
    let bad = json!({
        "upstreams": [upstream("orders")],
        "routes": [{"id": "orders", "paths": ["/o"], "upstream": "orders",
                    "policies": [{"type": "key_auth"}, {"type": "key_auth", "headr": "x"}]}]
    });
    let answer = h.put("/api/v1/config", bad).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let paths = problem_paths(&answer);
    assert_eq!(paths.len(), 1);
    assert!(
        paths[0].starts_with("routes[orders].policies[1]"),
        "{paths:?}"
    );

    let yaml = h.send(put_yaml("upstreams: [orders\n".into())).await;
    assert_eq!(yaml.status, StatusCode::BAD_REQUEST);
    assert_eq!(problem_paths(&yaml).len(), 1);
}
