//! End-to-end test harness for the `tollgate` binary.
//!
//! Owns everything the tests in `tests/tests/*.rs` need to drive the real gateway process
//! from the outside: start/stop/kill it on free loopback ports with a temporary data
//! directory ([`Gateway`]), talk to its REST API ([`Admin`]), run real upstream servers
//! ([`EchoServer`], [`WsEchoServer`]) and one that answers exact bytes
//! ([`ScriptedServer`]), generate bounded load ([`Load`]), send hostile
//! bytes ([`raw`]), read `/metrics` ([`metrics`]), decide what host names resolve to
//! ([`hosts`]) and wait on observable conditions ([`wait_until`]).
//!
//! It must never depend on the gateway's crates: the tests see the binary only through
//! its public contract (`/work/shared/ADMIN_API.md`, mirrored in the README), so a
//! test failure means the binary breaks that contract.
//!
//! All servers bind `127.0.0.1:0`; all loops are bounded in count and time.

pub mod admin;
pub mod certs;
pub mod console;
pub mod content;
pub mod gateway;
pub mod grpc;
pub mod hosts;
pub mod load;
pub mod metrics;
pub mod raw;
pub mod redis;
pub mod runtime;
pub mod scripted;
pub mod tls_upstream;
pub mod tmpfs;
pub mod upstream;
pub mod wait;
pub mod websocket;

pub use admin::{Admin, ApiResponse};
pub use content::ContentServer;
pub use gateway::{
    free_port, run_cli, tollgate_bin, CliOutput, Gateway, GatewayOptions, ADMIN_TOKEN,
};
pub use load::{Load, LoadReport};
pub use redis::RedisServer;
pub use scripted::ScriptedServer;
pub use upstream::{EchoServer, Echoed};
pub use wait::wait_until;
pub use websocket::WsEchoServer;

/// A blocking HTTP client for talking to the proxy: no system proxy, no redirects, a
/// bounded per-request timeout so that a hung gateway fails a test instead of hanging it.
pub fn http_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .expect("a reqwest client with static settings always builds")
}

/// What the proxy answered: status, headers and body text.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    /// The value of header `name`, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as an upstream echo; `Err` (with status and body) when it is not one.
    pub fn echo(&self) -> anyhow::Result<Echoed> {
        serde_json::from_str(&self.text).map_err(|e| {
            anyhow::anyhow!(
                "not an echo ({e}): status {} body {}",
                self.status,
                self.text
            )
        })
    }

    /// The body as JSON; `Err` (with status and body) when it is not JSON.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_str(&self.text).map_err(|e| {
            anyhow::anyhow!("not JSON ({e}): status {} body {}", self.status, self.text)
        })
    }
}

/// Sends `method url` with `headers` (a `host` entry overrides the Host header) through
/// `client` and reads the whole answer.
pub fn send(
    client: &reqwest::blocking::Client,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<Answer> {
    use anyhow::Context as _;
    let method = reqwest::Method::from_bytes(method.as_bytes())?;
    let mut request = client.request(method.clone(), url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().with_context(|| format!("{method} {url}"))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response
        .text()
        .with_context(|| format!("reading the body of {method} {url}"))?;
    Ok(Answer {
        status,
        headers,
        text,
    })
}
