//! A blocking client for the REST admin API (`/api/v1`, bearer token).

use std::net::SocketAddr;

use anyhow::{bail, Context, Result};
use reqwest::blocking::{Client, RequestBuilder};
use reqwest::Method;
use serde_json::Value;

use crate::certs::TestCert;

/// An answer of the admin API: status, parsed JSON body (`Value::Null` when the body is
/// empty or not JSON) and the raw text for failure messages.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl ApiResponse {
    /// `Ok(self)` when the status is `expected`, else `Err` naming what was sent back.
    pub fn expect_status(self, expected: u16, what: &str) -> Result<Self> {
        if self.status != expected {
            bail!(
                "{what}: expected {expected}, got {}: {}",
                self.status,
                self.text
            );
        }
        Ok(self)
    }
}

/// REST client bound to one admin listener and token.
#[derive(Clone)]
pub struct Admin {
    base: String,
    token: Option<String>,
    client: Client,
}

impl Admin {
    pub fn new(addr: SocketAddr, token: &str) -> Self {
        Admin {
            base: format!("http://{addr}"),
            token: Some(token.to_owned()),
            client: crate::http_client(),
        }
    }

    /// A client of an admin listener that serves HTTPS with `cert` (trusted alone).
    pub fn https(addr: SocketAddr, token: &str, cert: &TestCert) -> Self {
        let client = Client::builder()
            .use_native_tls()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                cert.root()
                    .expect("a certificate the openssl tool made parses"),
            )
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .expect("a reqwest client with a valid root always builds");
        Admin {
            base: format!("https://{addr}"),
            token: Some(token.to_owned()),
            client,
        }
    }

    /// The same client with another token (`None`: no Authorization header at all).
    pub fn with_token(&self, token: Option<&str>) -> Self {
        Admin {
            token: token.map(str::to_owned),
            ..self.clone()
        }
    }

    pub fn get(&self, path: &str) -> Result<ApiResponse> {
        self.send(Method::GET, path, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<ApiResponse> {
        self.send(Method::POST, path, Some(body))
    }

    pub fn put(&self, path: &str, body: &Value) -> Result<ApiResponse> {
        self.send(Method::PUT, path, Some(body))
    }

    pub fn delete(&self, path: &str) -> Result<ApiResponse> {
        self.send(Method::DELETE, path, None)
    }

    /// `POST /api/v1/upstreams`, which must answer 201.
    pub fn create_upstream(&self, spec: &Value) -> Result<Value> {
        Ok(self
            .post("/api/v1/upstreams", spec)?
            .expect_status(201, "creating an upstream")?
            .body)
    }

    /// `POST /api/v1/routes`, which must answer 201.
    pub fn create_route(&self, spec: &Value) -> Result<Value> {
        Ok(self
            .post("/api/v1/routes", spec)?
            .expect_status(201, "creating a route")?
            .body)
    }

    /// `PUT /api/v1/routes/{id}` with `spec`, which must answer 200.
    pub fn update_route(&self, id: &str, spec: &Value) -> Result<Value> {
        Ok(self
            .put(&format!("/api/v1/routes/{id}"), spec)?
            .expect_status(200, "updating a route")?
            .body)
    }

    /// `PUT /api/v1/config` (replace everything), which must answer 200.
    pub fn replace_config(&self, config: &Value) -> Result<Value> {
        Ok(self
            .put("/api/v1/config", config)?
            .expect_status(200, "replacing the config")?
            .body)
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self
            .client
            .request(method, format!("{}{}", self.base, path));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<ApiResponse> {
        let mut builder = self.request(method.clone(), path);
        if let Some(body) = body {
            builder = builder.json(body);
        }
        let response = builder.send().with_context(|| format!("{method} {path}"))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .with_context(|| format!("reading the body of {method} {path}"))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(ApiResponse { status, body, text })
    }
}

/// An upstream spec with the given targets (`host:port`), round robin, no health check.
pub fn upstream_spec(id: &str, targets: &[SocketAddr]) -> Value {
    let targets: Vec<Value> = targets
        .iter()
        .map(|a| serde_json::json!({"addr": a.to_string()}))
        .collect();
    serde_json::json!({"id": id, "targets": targets})
}

/// A route spec: `paths` to `upstream`, any host, any method.
pub fn route_spec(id: &str, paths: &[&str], upstream: &str) -> Value {
    serde_json::json!({"id": id, "paths": paths, "upstream": upstream})
}
