//! Upstream, route and certificate specs, and `Config`: the whole configuration as one
//! value (what import/export and `PUT /api/v1/config` carry).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use policies::spec::{
    ConsumerSpec, CredentialRecord, JwtIssuerSpec, KeyRecord, PlanSpec, PolicySpec,
};
pub use policies::KeyHash;

/// A named pool of backend targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSpec {
    pub id: String,
    pub targets: Vec<TargetSpec>,
    #[serde(default)]
    pub balancing: Balancing,
    /// `consistent_hash` only: `client_ip` (default), `path` or `header:NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_on: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckSpec>,
    /// Default [`DEFAULT_CONNECT_TIMEOUT_MS`].
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Default [`DEFAULT_READ_TIMEOUT_MS`].
    #[serde(default = "default_read_timeout_ms")]
    pub read_timeout_ms: u64,
    /// Further tries on another target. Default [`DEFAULT_RETRIES`].
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Connect to the targets over TLS.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
    /// SNI and certificate name when `tls` is on. Default: the target's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// The HTTP version spoken to the targets. Default `http1`.
    #[serde(default, skip_serializing_if = "Protocol::is_http1")]
    pub protocol: Protocol,
    /// How often the addresses of targets given by host name are looked up again, in
    /// seconds (> 0). Default [`DEFAULT_DNS_REFRESH_SECS`].
    #[serde(default = "default_dns_refresh_secs")]
    pub dns_refresh_secs: u64,
}

pub const DEFAULT_DNS_REFRESH_SECS: u64 = 30;
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 1000;
pub const DEFAULT_READ_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_RETRIES: u32 = 1;

fn default_connect_timeout_ms() -> u64 {
    DEFAULT_CONNECT_TIMEOUT_MS
}
fn default_read_timeout_ms() -> u64 {
    DEFAULT_READ_TIMEOUT_MS
}
fn default_retries() -> u32 {
    DEFAULT_RETRIES
}
fn default_dns_refresh_secs() -> u64 {
    DEFAULT_DNS_REFRESH_SECS
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// `host:port`; the host is an IP address or a name that resolved when the target was
    /// written (looked up again every `dns_refresh_secs`).
    pub addr: String,
    /// Relative share of traffic. Default 1.
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balancing {
    #[default]
    RoundRobin,
    Random,
    ConsistentHash,
    LeastConnections,
}

/// The HTTP version an upstream's targets speak.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// HTTP/1.1, over TLS or not.
    #[default]
    Http1,
    /// HTTP/2 over TLS (ALPN `h2`): needs `tls`.
    H2,
    /// HTTP/2 over plain TCP, with prior knowledge (gRPC servers without TLS).
    H2c,
}

impl Protocol {
    pub fn is_http1(&self) -> bool {
        *self == Protocol::Http1
    }

    /// As in specs: `http1`, `h2`, `h2c`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Protocol::Http1 => "http1",
            Protocol::H2 => "h2",
            Protocol::H2c => "h2c",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthCheckKind {
    #[default]
    Http,
    Tcp,
}

/// Active health check of every target of an upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckSpec {
    #[serde(default)]
    pub kind: HealthCheckKind,
    /// `http` only. Default `/`.
    #[serde(default = "default_hc_path")]
    pub path: String,
    #[serde(default = "default_hc_interval_ms")]
    pub interval_ms: u64,
    #[serde(default = "default_hc_timeout_ms")]
    pub timeout_ms: u64,
    /// Consecutive successes that mark a target healthy again. Default
    /// [`DEFAULT_HEALTHY_THRESHOLD`].
    #[serde(default = "default_healthy_threshold")]
    pub healthy_threshold: u32,
    /// Consecutive failures that mark a target unhealthy. Default
    /// [`DEFAULT_UNHEALTHY_THRESHOLD`].
    #[serde(default = "default_unhealthy_threshold")]
    pub unhealthy_threshold: u32,
    /// `http` only. Default: any 2xx.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected_statuses: Vec<u16>,
}

fn default_hc_path() -> String {
    "/".to_owned()
}
fn default_hc_interval_ms() -> u64 {
    1000
}
fn default_hc_timeout_ms() -> u64 {
    500
}
/// Successes in a row before a target is healthy again: one lucky answer of a flapping
/// endpoint does not bring it back (HAProxy's `rise 2`).
pub const DEFAULT_HEALTHY_THRESHOLD: u32 = 2;
/// Failures in a row before a target is ejected: one slow or failed check does not take
/// it out (HAProxy's `fall 3`; Envoy ejects after 3 by default too). With 1/1, an endpoint
/// alternating 200/500 each second turned 836 of 1,027 requests into 503.
pub const DEFAULT_UNHEALTHY_THRESHOLD: u32 = 3;

fn default_healthy_threshold() -> u32 {
    DEFAULT_HEALTHY_THRESHOLD
}
fn default_unhealthy_threshold() -> u32 {
    DEFAULT_UNHEALTHY_THRESHOLD
}

/// Which requests go where, and the policies they pass through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    pub id: String,
    /// Exact (`api.example.com`) or wildcard (`*.example.org`); empty: any host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Empty: any method.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// `/prefix`, `=/exact`, `/users/{id}/orders` (a `{param}` matches one segment).
    pub paths: Vec<String>,
    /// Header name -> exact value, all required.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_prefix: Option<String>,
    /// Higher first; within a priority, the most specific match wins.
    #[serde(default)]
    pub priority: i32,
    pub upstream: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicySpec>,
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_true() -> bool {
    true
}

/// A TLS certificate served for its SNI names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateSpec {
    pub id: String,
    pub snis: Vec<String>,
    /// PEM chain, leaf first.
    pub cert: String,
    /// PEM private key. The admin API does not show it again, but exports carry it (so an
    /// export round-trips): treat export files as secrets.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
}

/// The whole configuration. Keys and credentials appear as hashes only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub upstreams: Vec<UpstreamSpec>,
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
    #[serde(default)]
    pub consumers: Vec<ConsumerSpec>,
    #[serde(default)]
    pub plans: Vec<PlanSpec>,
    #[serde(default)]
    pub jwt_issuers: Vec<JwtIssuerSpec>,
    #[serde(default)]
    pub certificates: Vec<CertificateSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeyRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<CredentialRecord>,
}
