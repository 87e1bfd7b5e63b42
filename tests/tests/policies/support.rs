//! What every policy test needs: a gateway with one echo upstream and some routes, the
//! checks every refusal must pass, API keys, and the rejection counter.

use anyhow::{anyhow, ensure, Context, Result};
use reqwest::blocking::Client;
use serde_json::{json, Value};
use tests::admin::upstream_spec;
use tests::{http_client, metrics, Admin, Answer, EchoServer, Gateway};

/// A gateway whose routes all go to one echo upstream named `up`.
pub struct Setup {
    pub gateway: Gateway,
    pub upstream: EchoServer,
    pub admin: Admin,
    pub client: Client,
}

impl Setup {
    /// Starts a gateway, an upstream `up`, then applies `objects` in order: each is
    /// `(collection, body)` POSTed to `/api/v1/{collection}` (which must answer 201).
    pub fn start(objects: &[(&str, Value)]) -> Result<Setup> {
        let gateway = Gateway::start_default()?;
        let upstream = EchoServer::start("up")?;
        let admin = gateway.admin();
        admin.create_upstream(&upstream_spec("up", &[upstream.addr()]))?;
        for (collection, body) in objects {
            admin
                .post(&format!("/api/v1/{collection}"), body)?
                .expect_status(201, &format!("creating {collection} {body}"))?;
        }
        Ok(Setup {
            gateway,
            upstream,
            admin,
            client: http_client(),
        })
    }

    /// `GET path` through the proxy with `headers`.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<Answer> {
        tests::send(&self.client, "GET", &self.gateway.url(path), headers)
    }

    /// A new API key of `consumer`: `(key id, key)`.
    pub fn new_key(&self, consumer: &str) -> Result<(String, String)> {
        let created = self
            .admin
            .post(&format!("/api/v1/consumers/{consumer}/keys"), &json!({}))?
            .expect_status(201, "creating a key")?
            .body;
        let text = |field: &str| {
            created[field]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow!("no {field} in {created}"))
        };
        Ok((text("id")?, text("key")?))
    }

    /// The `last_used` of key `id` of `consumer` in the key list (null: never used).
    pub fn key_last_used(&self, consumer: &str, id: &str) -> Result<Value> {
        let keys = self
            .admin
            .get(&format!("/api/v1/consumers/{consumer}/keys"))?
            .expect_status(200, "listing keys")?
            .body;
        let listed = keys
            .as_array()
            .and_then(|ks| ks.iter().find(|k| k["id"] == id))
            .ok_or_else(|| anyhow!("key {id} not in {keys}"))?;
        Ok(listed["last_used"].clone())
    }

    /// `tollgate_policy_rejections_total{route, policy, status}`, 0 when absent.
    pub fn rejections(&self, route: &str, policy: &str, status: &str) -> Result<f64> {
        let all = metrics::parse(&self.gateway.metrics_text()?);
        Ok(metrics::samples(&all, "tollgate_policy_rejections_total")
            .into_iter()
            .find(|s| {
                s.label("route") == Some(route)
                    && s.label("policy") == Some(policy)
                    && s.label("status") == Some(status)
            })
            .map_or(0.0, |s| s.value))
    }
}

/// A route `id` on `paths` to `up` with `policies`.
pub fn route(id: &str, paths: &[&str], policies: Value) -> Value {
    json!({"id": id, "paths": paths, "upstream": "up", "policies": policies})
}

/// Checks a refusal: `status`, a JSON body `{"error", "request_id"}` whose request id is the
/// response's `x-request-id`. Returns the error message.
pub fn refused(answer: &Answer, status: u16, what: &str) -> Result<String> {
    ensure!(
        answer.status == status,
        "{what}: expected {status}, got {} {}",
        answer.status,
        answer.text
    );
    let body = answer.json().with_context(|| what.to_owned())?;
    let request_id = body["request_id"].as_str().unwrap_or_default();
    ensure!(
        !request_id.is_empty() && Some(request_id) == answer.header("x-request-id"),
        "{what}: request_id {body} vs x-request-id {:?}",
        answer.header("x-request-id")
    );
    body["error"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("{what}: no error in {body}"))
}

/// Checks a proxied answer (200 from the echo upstream).
pub fn passed(answer: &Answer, what: &str) -> Result<tests::Echoed> {
    ensure!(
        answer.status == 200,
        "{what}: expected 200, got {} {}",
        answer.status,
        answer.text
    );
    answer.echo()
}

/// The value of header `name` as a number.
pub fn number(answer: &Answer, name: &str) -> Result<u64> {
    answer
        .header(name)
        .ok_or_else(|| anyhow!("no {name} header: {:?}", answer.headers))?
        .parse()
        .with_context(|| format!("{name} is not a number"))
}
