//! What a person writes: policy, plan, consumer, credential and JWT issuer specs (serde,
//! unvalidated). `validate` reports every problem with its path; `compile` (elsewhere)
//! turns a valid spec into the runtime type.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::problem::{check_id, Problem, Problems};

mod cache;
mod jwt_issuer;

pub use cache::*;
pub use jwt_issuer::*;

/// One entry in a route's `policies` list, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PolicySpec {
    KeyAuth(KeyAuthSpec),
    Jwt(JwtSpec),
    BasicAuth(BasicAuthSpec),
    Acl(AclSpec),
    RateLimit(RateLimitSpec),
    IpFilter(IpFilterSpec),
    Cors(CorsSpec),
    RequestSize(RequestSizeSpec),
    Headers(HeadersSpec),
    Rewrite(RewriteSpec),
    Compression(CompressionSpec),
    GrpcWeb(GrpcWebSpec),
    Cache(CacheSpec),
}

impl PolicySpec {
    /// The policy's `type` name, as used in specs and in metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::KeyAuth(_) => "key_auth",
            Self::Jwt(_) => "jwt",
            Self::BasicAuth(_) => "basic_auth",
            Self::Acl(_) => "acl",
            Self::RateLimit(_) => "rate_limit",
            Self::IpFilter(_) => "ip_filter",
            Self::Cors(_) => "cors",
            Self::RequestSize(_) => "request_size",
            Self::Headers(_) => "headers",
            Self::Rewrite(_) => "rewrite",
            Self::Compression(_) => "compression",
            Self::GrpcWeb(_) => "grpc_web",
            Self::Cache(_) => "cache",
        }
    }

    /// Every problem with this policy on its own (references to issuers are checked by the
    /// store, which sees the whole config). Paths are relative to the policy.
    pub fn validate(&self) -> Vec<Problem> {
        let mut p = Problems::new();
        match self {
            Self::KeyAuth(s) => {
                if s.header.as_deref().is_some_and(|h| !is_header_name(h)) {
                    p.push("header", "must be a valid header name");
                }
                if s.query.as_deref().is_some_and(str::is_empty) {
                    p.push("query", "must not be empty");
                }
            }
            Self::Jwt(s) => {
                for (i, id) in s.issuers.iter().enumerate() {
                    check_id(&mut p, &format!("issuers[{i}]"), id);
                }
            }
            Self::BasicAuth(_) => {}
            Self::Acl(s) => {
                if s.allow.is_empty() && s.deny.is_empty() {
                    p.push(
                        "allow",
                        "allow or deny must name at least one consumer or group",
                    );
                }
            }
            Self::RateLimit(s) => s.validate(&mut p),
            Self::IpFilter(s) => {
                for (name, list) in [("allow", &s.allow), ("deny", &s.deny)] {
                    for (i, cidr) in list.iter().enumerate() {
                        if parse_cidr(cidr).is_none() {
                            p.push(format!("{name}[{i}]"), "must be an IP address or CIDR");
                        }
                    }
                }
                if s.allow.is_empty() && s.deny.is_empty() {
                    p.push("allow", "allow or deny must hold at least one CIDR");
                }
                for (i, cidr) in s.trusted_proxies.iter().enumerate() {
                    if parse_cidr(cidr).is_none() {
                        p.push(
                            format!("trusted_proxies[{i}]"),
                            "must be an IP address or CIDR",
                        );
                    }
                }
            }
            Self::Cors(s) => {
                if s.origins.is_empty() {
                    p.push("origins", "must name at least one origin (or \"*\")");
                }
                if s.credentials && s.origins.iter().any(|o| o == "*") {
                    p.push("origins", "\"*\" cannot be used with credentials: true");
                }
                for (i, m) in s.methods.iter().enumerate() {
                    if http::Method::from_bytes(m.as_bytes()).is_err() {
                        p.push(format!("methods[{i}]"), "must be an HTTP method");
                    }
                }
                for (i, h) in s.headers.iter().enumerate() {
                    if !is_header_name(h) {
                        p.push(format!("headers[{i}]"), "must be a valid header name");
                    }
                }
                for (i, h) in s.expose_headers.iter().enumerate() {
                    if !is_header_name(h) {
                        p.push(
                            format!("expose_headers[{i}]"),
                            "must be a valid header name",
                        );
                    }
                }
            }
            Self::RequestSize(s) => {
                if s.max_bytes == 0 {
                    p.push("max_bytes", "must be > 0");
                }
            }
            Self::Headers(s) => {
                p.extend_under("request", s.request.validate());
                p.extend_under("response", s.response.validate());
            }
            Self::Rewrite(s) => {
                if let Err(e) = regex::Regex::new(&s.regex) {
                    p.push("regex", format!("invalid regex: {e}"));
                }
                // `$$` is a literal `$`: such a path could never start with `/`.
                let group_first =
                    s.replacement.starts_with('$') && !s.replacement.starts_with("$$");
                if !s.replacement.starts_with('/') && !group_first {
                    p.push("replacement", "must start with / (or a capture group)");
                }
            }
            Self::Compression(s) => s.validate(&mut p),
            Self::GrpcWeb(_) => {}
            Self::Cache(s) => s.validate(&mut p),
        }
        p.into_vec()
    }
}

/// `key_auth`: the caller presents an API key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyAuthSpec {
    /// Header carrying the key. Default [`DEFAULT_KEY_HEADER`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Query parameter carrying the key; off unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Remove the key (its header and its query parameter, the rest of the query kept byte
    /// for byte) from the request to the upstream. Default [`DEFAULT_HIDE_KEY`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hide_credentials: Option<bool>,
}

/// The header `key_auth` reads when none is configured.
pub const DEFAULT_KEY_HEADER: &str = "x-api-key";
/// Whether `key_auth` hides the key from the upstream unless told: no (an upstream may use
/// the key itself, as before the option existed).
pub const DEFAULT_HIDE_KEY: bool = false;
/// Whether `jwt` hides the token from the upstream unless told: no (upstreams commonly read
/// the verified token's claims themselves).
pub const DEFAULT_HIDE_TOKEN: bool = false;
/// Whether `basic_auth` hides `Authorization` from the upstream unless told: yes, it holds
/// the password in clear and the upstream needs only the consumer.
pub const DEFAULT_HIDE_PASSWORD: bool = true;

/// `jwt`: `Authorization: Bearer` token from one of the named issuers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSpec {
    /// Issuer ids; empty means every configured issuer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issuers: Vec<String>,
    /// Remove `Authorization` from the request to the upstream. Default
    /// [`DEFAULT_HIDE_TOKEN`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hide_credentials: Option<bool>,
}

/// `basic_auth`: consumer credentials checked against argon2 hashes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthSpec {
    /// Remove `Authorization` from the request to the upstream. Default
    /// [`DEFAULT_HIDE_PASSWORD`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hide_credentials: Option<bool>,
}

/// `acl`: allow or deny by consumer id or group name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// The window a rate is expressed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    Second,
    Minute,
    Hour,
}

impl Per {
    pub fn seconds(self) -> u64 {
        match self {
            Self::Second => 1,
            Self::Minute => 60,
            Self::Hour => 3600,
        }
    }
}

/// `rate_limit` (also a plan's `rate_limit`): `requests` per `per`, with `burst`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    pub requests: u32,
    pub per: Per,
    /// The bucket's size: the most requests allowed at once, counted from a full bucket
    /// (not on top of the steady rate); then one more each `per / requests`. Default:
    /// `requests`. It is what `RateLimit-Limit` reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// What is counted: `consumer` (default), `ip`, `route` or `header:NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl RateLimitSpec {
    fn validate(&self, p: &mut Problems) {
        if self.requests == 0 {
            p.push("requests", "must be > 0");
        }
        if self.burst == Some(0) {
            p.push("burst", "must be > 0");
        }
        if let Some(key) = &self.key {
            let ok = match key.as_str() {
                "consumer" | "ip" | "route" => true,
                other => other.strip_prefix("header:").is_some_and(is_header_name),
            };
            if !ok {
                p.push("key", "must be consumer, ip, route or header:NAME");
            }
        }
    }
}

/// `ip_filter`: CIDR allow and deny lists (an IPv4-mapped entry, `::ffff:10.0.0.0/104`,
/// means its IPv4 network).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpFilterSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    /// Peers whose `X-Forwarded-For` is believed. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
}

/// `cors`: the gateway answers preflights and decorates responses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSpec {
    #[serde(default)]
    pub origins: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
    #[serde(default)]
    pub credentials: bool,
    /// Seconds a preflight may be cached by the browser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u32>,
    /// Response headers a page's script may read (`Access-Control-Expose-Headers`), such as
    /// `grpc-status` and `grpc-message` for gRPC-Web.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
}

/// `request_size`: refuse bodies over `max_bytes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSizeSpec {
    pub max_bytes: u64,
}

/// `headers`: edits on the request to the upstream and the response to the client.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadersSpec {
    #[serde(default)]
    pub request: HeaderEditsSpec,
    #[serde(default)]
    pub response: HeaderEditsSpec,
}

/// One direction's header edits: `remove` first, then `set` (replace), then `add`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderEditsSpec {
    /// Replaces every value sent under the name: what to use for a header the upstream
    /// trusts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
    /// Appends after the values already there: a client's `X-Role: admin` and an added
    /// `reader` both go on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub add: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

impl HeaderEditsSpec {
    fn validate(&self) -> Vec<Problem> {
        let mut p = Problems::new();
        for (field, map) in [("set", &self.set), ("add", &self.add)] {
            for (name, value) in map {
                if !is_header_name(name) {
                    p.push(format!("{field}.{name}"), "must be a valid header name");
                } else if let Some(why) = refused_edit(name, field) {
                    p.push(format!("{field}.{name}"), why);
                }
                if http::HeaderValue::from_str(value).is_err() {
                    p.push(format!("{field}.{name}"), "must be a valid header value");
                }
            }
        }
        for (i, name) in self.remove.iter().enumerate() {
            if !is_header_name(name) {
                p.push(format!("remove[{i}]"), "must be a valid header name");
            } else if let Some(why) = refused_edit(name, "remove") {
                p.push(format!("remove[{i}]"), why);
            }
        }
        p.into_vec()
    }
}

/// Why header `name` (a valid name, any case) may not be edited by `op` (`set`, `add`,
/// `remove`), if so. The gateway frames each message itself: a `Content-Length` or
/// `Transfer-Encoding` set or added by config cut bodies short (Pingora writes the body by
/// the edited header: `set content-length: 0` dropped every request body, a response's
/// `set content-length: 2` cut every answer to 2 bytes), and hop-by-hop fields are the
/// gateway's own. A second `Host` (added) failed every request of the route with 500, and
/// none (removed) is no HTTP/1.1 request; `set` replaces it, as a virtual host upstream
/// needs. Removing a length or a hop-by-hop field is harmless: the gateway frames and
/// drops them anyway.
fn refused_edit(name: &str, op: &str) -> Option<&'static str> {
    const FRAMING: [&str; 8] = [
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    ];
    let name = name.to_ascii_lowercase();
    match (op, name.as_str()) {
        ("set" | "add", n) if FRAMING.contains(&n) => {
            Some("the gateway frames messages itself: this field cannot be set or added")
        }
        ("add" | "remove", "host") => Some("host can only be set (replaced)"),
        _ => None,
    }
}

/// `rewrite`: regex substitution on the path (`$1` refers to a capture group).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewriteSpec {
    pub regex: String,
    pub replacement: String,
}

/// `compression`: encode answers for clients that accept it (`crate::compression`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressionSpec {
    /// `zstd`, `br`, `gzip`, most preferred first. Default: all three in that order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithms: Option<Vec<String>>,
    /// Answers whose `Content-Length` is below this stay identity. Default
    /// [`DEFAULT_COMPRESSION_MIN_BYTES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_bytes: Option<u64>,
    /// 1 (fastest) to 9, for every coding (see `compression::LEVELS`). Default: each
    /// coding's own (`Coding::default_level`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u32>,
}

/// `compression`'s `min_bytes` when none is written: below about 1 KiB the codings' headers
/// and the chunked framing eat most of the gain.
pub const DEFAULT_COMPRESSION_MIN_BYTES: u64 = 1024;

/// `grpc_web`: no fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcWebSpec {}

/// A plan: what a consumer may do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSpec {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<PlanRateSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaSpec>,
}

impl PlanSpec {
    pub fn validate(&self) -> Vec<Problem> {
        let mut p = Problems::new();
        check_id(&mut p, "id", &self.id);
        if let Some(rl) = &self.rate_limit {
            if rl.requests == 0 {
                p.push("rate_limit.requests", "must be > 0");
            }
            if rl.burst == Some(0) {
                p.push("rate_limit.burst", "must be > 0");
            }
        }
        if let Some(q) = &self.quota {
            if q.requests == 0 {
                p.push("quota.requests", "must be > 0");
            }
        }
        p.into_vec()
    }
}

/// A plan's rate limit; it is always counted per consumer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRateSpec {
    pub requests: u32,
    pub per: Per,
    /// The bucket's size, as [`RateLimitSpec::burst`]. Default: `requests`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

/// UTC calendar period of a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaPeriod {
    Day,
    Month,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaSpec {
    pub requests: u64,
    pub per: QuotaPeriod,
}

/// A consumer: who calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSpec {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl ConsumerSpec {
    pub fn validate(&self) -> Vec<Problem> {
        let mut p = Problems::new();
        check_id(&mut p, "id", &self.id);
        if let Some(plan) = &self.plan {
            check_id(&mut p, "plan", plan);
        }
        for (i, g) in self.groups.iter().enumerate() {
            if g.is_empty() || g.len() > 64 {
                p.push(format!("groups[{i}]"), "must be 1 to 64 characters");
            }
        }
        p.into_vec()
    }
}

/// A stored API key. The key itself is never stored: `hash` is its sha256, held as 32 bytes
/// and written as 64 lowercase hex digits (anything else does not parse).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    pub id: String,
    pub consumer: String,
    /// The sha256 of the key (hex on the wire and in the store).
    pub hash: crate::directory::KeyHash,
    /// The first characters of the key, to tell keys apart (`tg_ab12`).
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds; absent: never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    #[serde(default)]
    pub revoked: bool,
}

/// A stored basic-auth credential: `password_hash` is an argon2 PHC string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialRecord {
    pub username: String,
    pub consumer: String,
    pub password_hash: String,
}

/// Whether `s` is a valid HTTP header name.
pub fn is_header_name(s: &str) -> bool {
    http::HeaderName::from_bytes(s.as_bytes()).is_ok()
}

/// Parses `10.0.0.0/8` or a bare address (as a /32 or /128).
pub fn parse_cidr(s: &str) -> Option<ipnet::IpNet> {
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_edits_that_would_break_framing_are_refused() {
        let spec = |json: serde_json::Value| -> HeaderEditsSpec {
            serde_json::from_value(json).expect("edits spec")
        };
        for refused in [
            serde_json::json!({"set": {"Content-Length": "0"}}),
            serde_json::json!({"add": {"transfer-encoding": "chunked"}}),
            serde_json::json!({"set": {"upgrade": "h2c"}}),
            serde_json::json!({"add": {"host": "a"}}),
            serde_json::json!({"remove": ["Host"]}),
        ] {
            assert!(!spec(refused.clone()).validate().is_empty(), "{refused}");
        }
        let allowed = spec(serde_json::json!({"set": {"host": "a"}, "remove": ["content-length"]}));
        assert_eq!(allowed.validate(), vec![]);
    }
}
