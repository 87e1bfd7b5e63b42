//! Tests of the REST admin API: the real router, driven with `oneshot`, over a real store in
//! a temporary directory and a fake [`LiveView`].

mod auth;
mod cluster;
mod config;
mod crud;
mod hardening;
mod keys;
mod openapi;
mod status;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::{AdminConfig, LiveView, TargetHealth, UsageReport};

pub(super) const TOKEN: &str = "test-admin-token";
pub(super) const VERSION: &str = "9.9.9-test";

/// A proxy that is ready or not, with one healthy target and a quota for `acme`.
pub(super) struct FakeLive {
    pub ready: AtomicBool,
}

impl LiveView for FakeLive {
    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
    fn upstream_health(&self) -> Vec<TargetHealth> {
        vec![TargetHealth {
            upstream: "orders".into(),
            target: "127.0.0.1:9001".into(),
            healthy: false,
        }]
    }
    fn usage(&self, consumer: &str) -> Option<UsageReport> {
        (consumer == "acme").then(|| UsageReport {
            period: "day".into(),
            used: 7,
            limit: Some(10),
            remaining: Some(3),
            resets_at: 1_700_000_000,
        })
    }
    fn last_reload_error(&self) -> Option<String> {
        Some("upstream orders: bad address".into())
    }
}

pub(super) struct Harness {
    pub store: storage::Store,
    pub live: Arc<FakeLive>,
    pub router: Router,
    _dir: tempfile::TempDir,
}

/// An answer: status, headers and the body as JSON (`Value::Null` when empty or not JSON).
pub(super) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Bytes,
    pub json: Value,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_cluster(crate::cluster::Cluster::default())
    }

    /// A harness whose node serves a feed or follows, as `cluster` says.
    pub fn with_cluster(cluster: crate::cluster::Cluster) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = storage::Store::open(dir.path()).expect("open store");
        let live = Arc::new(FakeLive {
            ready: AtomicBool::new(true),
        });
        let router = crate::router(AdminConfig {
            store: store.clone(),
            live: live.clone(),
            admin_token: Some(TOKEN.into()),
            version: VERSION,
            started: Instant::now(),
            registry: prometheus::Registry::new(),
            cluster,
        });
        Self {
            store,
            live,
            router,
            _dir: dir,
        }
    }

    /// Sends `req` as is.
    /// The store's data directory.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub async fn send(&self, req: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(req).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            bytes,
            json,
        }
    }

    /// Sends a request with the admin token and an optional JSON body.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
        let req = match body {
            Some(body) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => builder.body(Body::empty()),
        };
        self.send(req.expect("request")).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }

    /// Creates upstream `orders`, plan `gold`, consumer `acme` (on gold) and route
    /// `orders-v1` using the upstream.
    pub async fn seed(&self) {
        for (path, body) in [
            ("/api/v1/upstreams", upstream("orders")),
            (
                "/api/v1/plans",
                json!({"id": "gold", "quota": {"requests": 10, "per": "day"}}),
            ),
            ("/api/v1/consumers", json!({"id": "acme", "plan": "gold"})),
            (
                "/api/v1/routes",
                json!({"id": "orders-v1", "paths": ["/v1/orders"], "upstream": "orders"}),
            ),
        ] {
            let answer = self.post(path, body).await;
            assert_eq!(
                answer.status,
                StatusCode::CREATED,
                "{path}: {}",
                answer.json
            );
        }
    }
}

pub(super) fn upstream(id: &str) -> Value {
    json!({"id": id, "targets": [{"addr": "127.0.0.1:9001"}, {"addr": "127.0.0.1:9002", "weight": 2}]})
}

/// The problem paths of an error answer, after checking its shape.
pub(super) fn problem_paths(answer: &Answer) -> Vec<String> {
    assert!(
        answer.json["error"].is_string(),
        "no error: {}",
        answer.json
    );
    answer.json["problems"]
        .as_array()
        .expect("problems is a list")
        .iter()
        .map(|p| {
            assert!(p["message"].is_string(), "no message: {p}");
            p["path"].as_str().expect("path").to_owned()
        })
        .collect()
}
