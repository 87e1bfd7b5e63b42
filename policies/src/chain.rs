//! A route's compiled policies, run in phase order on each request: no parsing, no lock,
//! no store read; allocation only where a header value must be made.

use std::time::Duration;

use http::header::AUTHORIZATION;
use http::HeaderName;

use crate::acl::Acl;
use crate::basic_auth::BasicAuth;
use crate::cache::Cache;
use crate::clock::duration_nanos;
use crate::compression::{Compression, GrpcWeb};
use crate::cors::Cors;
use crate::counters::Counters;
use crate::directory::Directory;
use crate::headers::{HeaderEdits, Headers};
use crate::ip_filter::IpFilter;
use crate::jwt::JwtAuth;
use crate::key_auth::KeyAuth;
use crate::problem::{Problem, Problems};
use crate::rate_limit::RateLimit;
use crate::request::{is_param_named, strip_query_params, HeaderSink, RequestState, RequestView};
use crate::request_size::RequestSize;
use crate::rewrite::{Rewrite, RewriteError};
use crate::spec::PolicySpec;
use crate::verdict::Verdict;

/// One compiled policy.
#[derive(Debug, Clone)]
pub enum Policy {
    KeyAuth(KeyAuth),
    Jwt(JwtAuth),
    BasicAuth(BasicAuth),
    Acl(Acl),
    RateLimit(RateLimit),
    IpFilter(IpFilter),
    Cors(Cors),
    RequestSize(RequestSize),
    Headers(Headers),
    Rewrite(Rewrite),
    Compression(Compression),
    GrpcWeb(GrpcWeb),
    Cache(Cache),
}

impl Policy {
    /// Compiles one (validated or not) spec; `Err` paths are relative to the policy.
    pub fn compile(
        spec: &PolicySpec,
        route: &str,
        index: usize,
        counters: &Counters,
    ) -> Result<Self, Vec<Problem>> {
        let problems = spec.validate();
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(match spec {
            PolicySpec::KeyAuth(s) => Self::KeyAuth(KeyAuth::compile(s)?),
            PolicySpec::Jwt(s) => Self::Jwt(JwtAuth::compile(s)?),
            PolicySpec::BasicAuth(s) => Self::BasicAuth(BasicAuth::compile(s)?),
            PolicySpec::Acl(s) => Self::Acl(Acl::compile(s)?),
            PolicySpec::RateLimit(s) => {
                Self::RateLimit(RateLimit::compile(s, route, index, &counters.limiters)?)
            }
            PolicySpec::IpFilter(s) => Self::IpFilter(IpFilter::compile(s)?),
            PolicySpec::Cors(s) => Self::Cors(Cors::compile(s)?),
            PolicySpec::RequestSize(s) => Self::RequestSize(RequestSize::compile(s)?),
            PolicySpec::Headers(s) => Self::Headers(Headers::compile(s)?),
            PolicySpec::Rewrite(s) => Self::Rewrite(Rewrite::compile(s)?),
            PolicySpec::Compression(s) => Self::Compression(Compression::compile(s)?),
            PolicySpec::GrpcWeb(s) => Self::GrpcWeb(GrpcWeb::compile(s)?),
            PolicySpec::Cache(s) => Self::Cache(Cache::compile(s)?),
        })
    }

    /// The policy `type`, as in specs and metric labels.
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

    /// Where the policy runs in a request, whatever the order written: address and size
    /// checks first, then CORS preflights (which carry no credentials), then the limits
    /// that need no consumer (keyed by `ip`, `route` or `header:NAME`), then auth and ACL,
    /// then the limits keyed by consumer, and transforms last.
    ///
    /// Limits used to come after auth as a whole (one phase for every `rate_limit`), so
    /// that a consumer-keyed limit could see the consumer; but then a limit by address
    /// never slowed credential guessing: every wrong password was checked (and answered
    /// 401) before any limit counted it. A limit that needs no consumer now counts every
    /// request, refused credentials included, before they are checked.
    fn phase(&self) -> u8 {
        match self {
            Self::IpFilter(_) => 0,
            Self::RequestSize(_) => 1,
            Self::Cors(_) => 2,
            Self::RateLimit(r) if !r.needs_consumer() => 3,
            Self::KeyAuth(_) | Self::Jwt(_) | Self::BasicAuth(_) => 4,
            Self::Acl(_) => 5,
            Self::RateLimit(_) => 6,
            Self::Headers(_) | Self::Rewrite(_) => 7,
            // Read by the edge when it answers, never a verdict: last. The cache is looked
            // up after every check: a cached answer still needs them.
            Self::Compression(_) | Self::GrpcWeb(_) | Self::Cache(_) => 8,
        }
    }

    /// The request header this policy removes before the upstream (`hide_credentials`).
    fn hidden_header(&self) -> Option<&HeaderName> {
        match self {
            Self::KeyAuth(k) => k.hidden_header(),
            Self::Jwt(j) if j.hides_credentials() => Some(&AUTHORIZATION),
            Self::BasicAuth(b) if b.hides_credentials() => Some(&AUTHORIZATION),
            _ => None,
        }
    }
}

/// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`.
const RATE_LIMIT_HEADERS: usize = 3;
/// What CORS adds to an allowed actual request's response, at most.
const CORS_RESPONSE_HEADERS: usize = 3;

/// A route's policies, compiled once per config revision.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    /// In phase order (stable: the spec's order within a phase).
    policies: Vec<Policy>,
}

impl Chain {
    /// Compiles `route`'s policy list. Rate-limit state comes from `counters`: a policy whose
    /// spec did not change keeps its state across reloads. `Err` lists every problem with
    /// paths like `policies[1].burst`.
    pub fn compile(
        route: &str,
        specs: &[PolicySpec],
        counters: &Counters,
    ) -> Result<Self, Vec<Problem>> {
        let mut p = Problems::new();
        let mut policies = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            match Policy::compile(spec, route, i, counters) {
                Ok(policy) => policies.push(policy),
                Err(problems) => p.extend_under(&format!("policies[{i}]"), problems),
            }
        }
        if !p.is_empty() {
            return Err(p.into_vec());
        }
        policies.sort_by_key(Policy::phase);
        Ok(Self { policies })
    }

    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Runs the request policies in phase order, then the identified consumer's plan (rate
    /// limit, then quota: only requests that pass everything else use quota). Stops at the
    /// first `Respond`. `now` is the time since the epoch, from the edge's `Clock`.
    pub fn on_request(
        &self,
        view: &RequestView<'_>,
        state: &mut RequestState,
        directory: &Directory,
        now: Duration,
    ) -> Verdict {
        let nanos = duration_nanos(now);
        let secs = now.as_secs();
        for policy in &self.policies {
            let verdict = match policy {
                Policy::IpFilter(p) => p.on_request(view),
                Policy::RequestSize(p) => p.on_request(view),
                Policy::Cors(p) => p.on_request(view, state),
                Policy::KeyAuth(p) => p.on_request(view, state, directory, secs),
                Policy::Jwt(p) => p.on_request(view, state, directory, secs),
                Policy::BasicAuth(p) => p.on_request(view, state, directory),
                Policy::Acl(p) => p.on_request(state),
                Policy::RateLimit(p) => p.on_request(view, state, nanos),
                Policy::Headers(_) | Policy::Rewrite(_) => Verdict::Continue,
                Policy::Compression(_) | Policy::GrpcWeb(_) | Policy::Cache(_) => Verdict::Continue,
            };
            if let Verdict::Respond(_) = verdict {
                return verdict;
            }
        }
        let plan = match state.consumer.as_deref() {
            Some(consumer) => consumer.check_plan(now),
            None => return Verdict::Continue,
        };
        match plan {
            Ok(limits) => {
                for status in limits.into_iter().flatten() {
                    state.record_limit(status);
                }
                Verdict::Continue
            }
            Err(rejection) => Verdict::Respond(rejection),
        }
    }

    /// Decorates the response: `RateLimit-*` headers when a limit was counted, CORS headers
    /// for an allowed origin, then the `headers` policies' response edits.
    pub fn on_response<S: HeaderSink + ?Sized>(&self, state: &RequestState, sink: &mut S) {
        if let Some(status) = state.rate_limit {
            for (name, value) in status.headers() {
                sink.set_header(name, value);
            }
        }
        for policy in &self.policies {
            match policy {
                Policy::Cors(p) => p.on_response(state, sink),
                Policy::Headers(h) => h.response.apply(sink),
                _ => {}
            }
        }
    }

    /// Decorates the gateway's own refusal of a request (after this chain ran on it): the
    /// CORS headers of an allowed origin only, so that a browser's script sees the status
    /// (a 401, a gRPC-Web status) instead of a CORS error.
    pub fn on_refusal<S: HeaderSink + ?Sized>(&self, state: &RequestState, sink: &mut S) {
        for policy in &self.policies {
            if let Policy::Cors(p) = policy {
                p.on_response(state, sink);
            }
        }
    }

    /// The request header edits, in order, for the request to the upstream.
    pub fn request_header_edits(&self) -> impl Iterator<Item = &HeaderEdits> {
        self.policies.iter().filter_map(|p| match p {
            Policy::Headers(h) if !h.request.is_empty() => Some(&h.request),
            _ => None,
        })
    }

    /// Edits the request to the upstream: first removes the credentials of the auth
    /// policies with `hide_credentials` (so a `headers` policy may still set one of its
    /// own), then applies every request header edit.
    pub fn apply_request_headers<S: HeaderSink + ?Sized>(&self, sink: &mut S) {
        for name in self.policies.iter().filter_map(Policy::hidden_header) {
            sink.remove_header(name);
        }
        for edits in self.request_header_edits() {
            edits.apply_to_request(sink);
        }
    }

    /// The query string for the upstream without the key parameters of `key_auth` policies
    /// with `hide_credentials`; every other byte kept. `None`: nothing to remove (no
    /// allocation); `Some("")`: no parameter left.
    pub fn upstream_query(&self, query: &str) -> Option<String> {
        let hidden = |name: Option<&str>| {
            self.policies.iter().any(|p| match p {
                Policy::KeyAuth(k) => k
                    .hidden_query()
                    .is_some_and(|q| name.is_none_or(|n| is_param_named(n, q))),
                _ => false,
            })
        };
        if !hidden(None) {
            return None;
        }
        strip_query_params(query, |name| hidden(Some(name)))
    }

    /// The upstream path after every `rewrite` policy, in order; `Ok(None)` when none
    /// matched. `Err` when a rewrite made something that is not an origin-form path (it
    /// does not start with `/`: `*`, a host name): the request must be refused.
    pub fn rewrite_path(&self, path: &str) -> Result<Option<String>, RewriteError> {
        let mut out: Option<String> = None;
        for policy in &self.policies {
            if let Policy::Rewrite(r) = policy {
                if let Some(next) = r.apply(out.as_deref().unwrap_or(path))? {
                    out = Some(next);
                }
            }
        }
        Ok(out)
    }

    /// The smallest `request_size` limit, for the edge to count bodies without a
    /// `Content-Length` (413 once exceeded).
    pub fn max_body_bytes(&self) -> Option<u64> {
        self.policies
            .iter()
            .filter_map(|p| match p {
                Policy::RequestSize(r) => Some(r.max_bytes()),
                _ => None,
            })
            .min()
    }

    /// At most how many headers [`Chain::apply_request_headers`] adds (to make room once).
    pub fn request_headers_added(&self) -> usize {
        self.request_header_edits()
            .map(|e| e.set.len() + e.add.len())
            .sum()
    }

    /// At most how many headers [`Chain::on_response`] adds (to make room once): the
    /// `RateLimit-*` trio wherever a route or plan limit may count, CORS's, the edits'.
    pub fn response_headers_added(&self) -> usize {
        self.policies
            .iter()
            .map(|p| match p {
                Policy::RateLimit(_)
                | Policy::KeyAuth(_)
                | Policy::Jwt(_)
                | Policy::BasicAuth(_) => RATE_LIMIT_HEADERS,
                Policy::Cors(_) => CORS_RESPONSE_HEADERS,
                Policy::Headers(h) => h.response.set.len() + h.response.add.len(),
                _ => 0,
            })
            .sum()
    }

    /// The route's `compression` settings (the first such policy), if any.
    pub fn compression(&self) -> Option<&Compression> {
        self.policies.iter().find_map(|p| match p {
            Policy::Compression(c) => Some(c),
            _ => None,
        })
    }

    /// The route's response cache settings (the first `cache` policy), if it has one.
    pub fn cache(&self) -> Option<&Cache> {
        self.policies.iter().find_map(|p| match p {
            Policy::Cache(c) => Some(c),
            _ => None,
        })
    }

    /// Whether the route bridges gRPC-Web calls (`grpc_web`).
    pub fn has_grpc_web(&self) -> bool {
        self.policies
            .iter()
            .any(|p| matches!(p, Policy::GrpcWeb(_)))
    }

    /// Whether any limit (route or plan) may be counted, so responses carry `RateLimit-*`.
    pub fn has_rate_limit(&self) -> bool {
        self.policies
            .iter()
            .any(|p| matches!(p, Policy::RateLimit(_)))
    }
}

#[cfg(test)]
#[path = "chain/tests.rs"]
mod tests;
