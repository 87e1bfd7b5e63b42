//! What every cache test needs: a gateway with one shaped echo upstream and routes with a
//! `cache` policy, requests that report `x-cache`, the cache metrics, and purges.

use anyhow::{anyhow, ensure, Result};
use reqwest::blocking::Client;
use serde_json::{json, Value};
use tests::admin::upstream_spec;
use tests::{http_client, metrics, Admin, Answer, EchoServer, Gateway, GatewayOptions};

pub struct Setup {
    pub gateway: Gateway,
    pub upstream: EchoServer,
    pub admin: Admin,
    pub client: Client,
}

impl Setup {
    /// A gateway (with `args`), an upstream `up`, and `routes` created in order.
    pub fn start_with(args: &[&str], routes: &[Value]) -> Result<Setup> {
        Self::start_opts(
            GatewayOptions {
                args: args.iter().map(|a| a.to_string()).collect(),
                ..GatewayOptions::default()
            },
            routes,
        )
    }

    /// A gateway started with `opts`, an upstream `up`, and `routes` created in order.
    pub fn start_opts(opts: GatewayOptions, routes: &[Value]) -> Result<Setup> {
        let gateway = Gateway::start(opts)?;
        let upstream = EchoServer::start("up")?;
        let admin = gateway.admin();
        admin.create_upstream(&upstream_spec("up", &[upstream.addr()]))?;
        for route in routes {
            admin.create_route(route)?;
        }
        Ok(Setup {
            gateway,
            upstream,
            admin,
            client: http_client(),
        })
    }

    pub fn start(routes: &[Value]) -> Result<Setup> {
        Self::start_with(&[], routes)
    }

    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Result<Answer> {
        tests::send(&self.client, method, &self.gateway.url(path), headers)
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<Answer> {
        self.send("GET", path, headers)
    }

    /// `POST /api/v1/cache/purge` with `body`: (status, answer body).
    pub fn purge(&self, body: &Value) -> Result<(u16, Value)> {
        let answer = self.admin.post("/api/v1/cache/purge", body)?;
        Ok((answer.status, answer.body))
    }

    /// `tollgate_cache_requests_total{route, result}` (0 when absent).
    pub fn counted(&self, route: &str, result: &str) -> Result<f64> {
        let all = metrics::parse(&self.gateway.metrics_text()?);
        Ok(metrics::samples(&all, "tollgate_cache_requests_total")
            .into_iter()
            .find(|s| s.label("route") == Some(route) && s.label("result") == Some(result))
            .map_or(0.0, |s| s.value))
    }

    /// `tollgate_cache_size_bytes`.
    pub fn size(&self) -> Result<f64> {
        let all = metrics::parse(&self.gateway.metrics_text()?);
        metrics::samples(&all, "tollgate_cache_size_bytes")
            .first()
            .map(|s| s.value)
            .ok_or_else(|| anyhow!("no tollgate_cache_size_bytes"))
    }
}

/// A route `id` on `paths` to `up` with `policies`.
pub fn route(id: &str, paths: &[&str], policies: Value) -> Value {
    json!({"id": id, "paths": paths, "upstream": "up", "policies": policies})
}

/// A route `id` on `paths` with only a cache of `cache` settings.
pub fn cached(id: &str, paths: &[&str], cache: Value) -> Value {
    let mut policy = cache;
    policy["type"] = json!("cache");
    route(id, paths, json!([policy]))
}

/// Checks `answer` is a 200 with `x-cache: expected`; returns it.
pub fn expect<'a>(answer: &'a Answer, expected: &str, what: &str) -> Result<&'a Answer> {
    ensure!(
        answer.status == 200,
        "{what}: status {} {}",
        answer.status,
        answer.text
    );
    ensure!(
        answer.header("x-cache") == Some(expected),
        "{what}: x-cache {:?}, expected {expected}",
        answer.header("x-cache")
    );
    Ok(answer)
}
