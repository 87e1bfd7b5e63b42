//! The glue between the proxy and the `policies` crate: a route's compiled chain with its
//! pre-resolved rejection counters ([`RoutePolicies`]), the borrowed [`RequestView`] built
//! from a Pingora request header, and the policy steps of the request phases (called from
//! `gateway.rs`; header edits go straight to the `http` header maps, see `headers.rs`).
//!
//! A route without policies has no [`RoutePolicies`] (`None` in its `CompiledRoute`), so its
//! requests skip every step here after one `Option` check.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use http::StatusCode;
use pingora_core::{Error, ErrorType};
use pingora_http::RequestHeader;
use pingora_proxy::Session;
use policies::shared::Step;
use policies::{Chain, Clock, Counters, Policy, PolicySpec, Problem, RequestView};
use prometheus::{IntCounter, IntCounterVec};

use crate::cluster::counting::SharedCounting;
use crate::gateway::{Gateway, RequestCtx};
use crate::respond::Rejection;
use crate::routing;

/// A route's policy chain, compiled with the route.
pub struct RoutePolicies {
    pub chain: Chain,
    /// The smallest `request_size` limit: bodies without a `Content-Length` are counted
    /// against it as they stream (413 once over).
    pub max_body: Option<u64>,
    /// At most how many headers the chain adds to the request to the upstream, and to the
    /// response: room is made for them once, before the edits.
    pub request_headers_added: usize,
    pub response_headers_added: usize,
    /// The route's `compression` settings (read when it answers).
    pub compression: Option<policies::Compression>,
    /// Whether the route bridges gRPC-Web calls (`grpc_web`).
    pub grpc_web: bool,
    /// The route's `cache` settings (looked up in several phases of every request).
    pub cache: Option<policies::Cache>,
    /// `tollgate_cache_requests_total` of the route (used when it has a `cache` policy).
    pub cache_counters: crate::cache::RouteCounters,
    rejections: RejectionCounters,
}

impl RoutePolicies {
    /// Compiles `route`'s policies against the process-wide `counters`. `Ok(None)`: the route
    /// has no policies (its requests skip the chain). `Err` lists every problem, with paths
    /// like `policies[1].burst`.
    pub fn compile(
        route: &str,
        specs: &[PolicySpec],
        counters: &Counters,
        rejections: &IntCounterVec,
    ) -> Result<Option<Box<RoutePolicies>>, Vec<Problem>> {
        if specs.is_empty() {
            return Ok(None);
        }
        let chain = Chain::compile(route, specs, counters)?;
        Ok(Some(Box::new(RoutePolicies {
            max_body: chain.max_body_bytes(),
            request_headers_added: chain.request_headers_added(),
            response_headers_added: chain.response_headers_added(),
            compression: chain.compression().cloned(),
            grpc_web: chain.has_grpc_web(),
            cache: chain.cache().cloned(),
            rejections: RejectionCounters::new(route, &chain, rejections),
            cache_counters: crate::cache::RouteCounters::default(),
            chain,
        })))
    }

    /// Counts one answer of `policy` with `status` (only refusals, status >= 400).
    pub fn count_rejection(&self, policy: &str, status: StatusCode) {
        if status.as_u16() >= 400 {
            self.rejections.counter(policy, status.as_u16()).inc();
        }
    }
}

/// `tollgate_policy_rejections_total{route, policy, status}` handles of one route, one slot
/// per (policy, status) its chain can answer with, resolved on first use: the hot path does
/// no label hashing. The label set is bounded by the config.
struct RejectionCounters {
    route: String,
    vec: IntCounterVec,
    slots: Vec<(&'static str, u16, OnceLock<IntCounter>)>,
}

impl RejectionCounters {
    fn new(route: &str, chain: &Chain, vec: &IntCounterVec) -> RejectionCounters {
        let mut pairs: Vec<(&'static str, u16)> = Vec::new();
        let mut auth = false;
        for p in chain.policies() {
            let status = match p {
                Policy::KeyAuth(_) | Policy::Jwt(_) | Policy::BasicAuth(_) => {
                    auth = true;
                    // A repeated credential.
                    pairs.push((p.kind(), 400));
                    401
                }
                Policy::Acl(_) | Policy::IpFilter(_) | Policy::Cors(_) => 403,
                Policy::RateLimit(_) => 429,
                Policy::RequestSize(_) => 413,
                Policy::Headers(_) | Policy::Rewrite(_) => continue,
                Policy::Compression(_) | Policy::GrpcWeb(_) | Policy::Cache(_) => continue,
            };
            pairs.push((p.kind(), status));
        }
        if auth {
            // An identified consumer's plan: its rate limit and its quota.
            pairs.extend([("rate_limit", 429), ("quota", 429)]);
        }
        if chain
            .policies()
            .iter()
            .any(|p| matches!(p, Policy::BasicAuth(_)))
        {
            // Too many argon2 checks at once (see `policies::basic_auth`).
            pairs.push(("basic_auth", 503));
        }
        pairs.sort_unstable();
        pairs.dedup();
        RejectionCounters {
            route: route.to_owned(),
            vec: vec.clone(),
            slots: pairs
                .into_iter()
                .map(|(policy, status)| (policy, status, OnceLock::new()))
                .collect(),
        }
    }

    fn counter(&self, policy: &str, status: u16) -> IntCounter {
        let resolve = || {
            let status = status.to_string();
            self.vec
                .with_label_values(&[self.route.as_str(), policy, status.as_str()])
        };
        match self
            .slots
            .iter()
            .find(|(p, s, _)| *p == policy && *s == status)
        {
            Some((_, _, slot)) => slot.get_or_init(resolve).clone(),
            None => resolve(),
        }
    }
}

/// The request as the chain sees it; borrows everything, copies nothing. `peer` is the
/// downstream TCP peer (`None`, e.g. on a Unix socket, reads as `0.0.0.0`): it is both the
/// client address (rate limits by `ip`) and the peer `ip_filter` starts from.
pub fn view(req: &RequestHeader, peer: Option<IpAddr>) -> RequestView<'_> {
    let ip = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    RequestView {
        method: &req.method,
        path: req.uri.path(),
        query: req.uri.query(),
        headers: &req.headers,
        client_ip: ip,
        peer_ip: ip,
    }
}

/// Whether `seen` bytes of body plus a `chunk` of `len` bytes go over `max`; adds `len`.
pub fn body_over_limit(seen: &mut u64, len: usize, max: u64) -> bool {
    *seen = seen.saturating_add(len as u64);
    *seen > max
}

/// What running a route's chain starts from, borrowed from the request's context.
struct ChainRun<'a> {
    directory: &'a policies::Directory,
    policies: &'a RoutePolicies,
    state: &'a mut policies::RequestState,
    view: RequestView<'a>,
    now: std::time::Duration,
}

impl<'a> ChainRun<'a> {
    /// `None` when the request has no route or its route no policies. Sets the route's
    /// body limit on the context.
    fn start(session: &'a Session, ctx: &'a mut RequestCtx) -> Option<Self> {
        let RequestCtx {
            snapshot,
            route,
            policy_state,
            client_ip,
            body_limit,
            ..
        } = ctx;
        let snapshot = snapshot.as_deref()?;
        let policies = snapshot.routes.get((*route)?)?.policies.as_deref()?;
        *body_limit = policies.max_body;
        Some(ChainRun {
            directory: &snapshot.directory,
            policies,
            state: policy_state,
            view: view(session.req_header(), *client_ip),
            now: policies::SystemClock.now(),
        })
    }
}

impl Gateway {
    /// Runs the route's chain on the request. `Some`: the answer to send instead of
    /// proxying (already counted in `tollgate_policy_rejections_total`).
    pub(crate) fn run_policies(
        &self,
        session: &Session,
        ctx: &mut RequestCtx,
    ) -> Option<Rejection> {
        let ChainRun {
            directory,
            policies,
            state,
            view,
            now,
        } = ChainRun::start(session, ctx)?;
        match policies.chain.on_request(&view, state, directory, now) {
            policies::Verdict::Continue => None,
            policies::Verdict::Respond(r) => {
                policies.count_rejection(r.policy, r.status);
                Some(Rejection::from_policy(r))
            }
        }
    }

    /// [`Gateway::run_policies`] with the limits counted in Redis (`--redis`): the chain
    /// stops where counts must be made, they are made (one round trip, or none for a
    /// refusal already known, or node-local while Redis is away), and the chain resumes.
    pub(crate) async fn run_policies_shared(
        &self,
        session: &Session,
        ctx: &mut RequestCtx,
        counting: &SharedCounting,
    ) -> Option<Rejection> {
        let ChainRun {
            directory,
            policies,
            state,
            view,
            now,
        } = ChainRun::start(session, ctx)?;
        let mut from = 0;
        let refusal = loop {
            let step = policies
                .chain
                .on_request_shared(&view, state, directory, now, from);
            match step {
                Step::Done(policies::Verdict::Continue) => return None,
                Step::Done(policies::Verdict::Respond(r)) => break r,
                Step::Count(pending) => {
                    if let Some(r) = counting.count(&pending, state).await {
                        break r;
                    }
                    from = pending.resume();
                }
            }
        };
        policies.count_rejection(refusal.policy, refusal.status);
        Some(Rejection::from_policy(refusal))
    }

    /// The request target for the upstream when it is not the client's, into
    /// `ctx.upstream_target`: the path after `strip_prefix` and the `rewrite` policies, and
    /// the query without the key parameters of `key_auth` policies with `hide_credentials`.
    /// Worked out once, before the first try (retries reuse it). A rewritten path is made
    /// canonical like the client's (`routing::canonical`): `Err` (400) when the rewrite
    /// made something that is not a path, a dot segment (the upstream would resolve it past
    /// this route), or a path with no canonical form (`%2F` from a capture group).
    pub(crate) fn plan_upstream_target(
        &self,
        req: &RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<(), Rejection> {
        let Some(route) = ctx.compiled_route() else {
            return Ok(());
        };
        let client_path = req.uri.path();
        let mut path: Option<String> = None;
        if let Some(prefix) = route.strip_prefix.as_deref() {
            let stripped = routing::strip_prefix(client_path, prefix);
            if stripped != client_path {
                path = Some(stripped.into_owned());
            }
        }
        let mut query: Option<String> = None;
        if let Some(p) = route.policies.as_deref() {
            let current = path.as_deref().unwrap_or(client_path);
            let rewritten = p
                .chain
                .rewrite_path(current)
                .map_err(|e| Rejection::bad_request(e.to_string()))?;
            if let Some(rewritten) = rewritten {
                // The input is canonical, but a replacement around a capture can still
                // make a dot segment (`^/u-(.*)$` to `/users/$1` makes `/u-../admin`
                // `/users/../admin`): resolved, it would leave what this route sends.
                if routing::canonical::has_dot_segment(&rewritten) {
                    return Err(Rejection::bad_request(
                        "the rewritten path has a dot segment",
                    ));
                }
                path = Some(match routing::canonical_path(rewritten.as_bytes()) {
                    Ok(None) => rewritten,
                    Ok(Some(canonical)) => canonical,
                    Err(e) => return Err(Rejection::bad_request(format!("rewritten path: {e}"))),
                });
            }
            query = req.uri.query().and_then(|q| p.chain.upstream_query(q));
        }
        ctx.upstream_target = match (path, query) {
            (None, None) => None,
            (path, query) => {
                let mut target = match path {
                    Some(p) if p.is_empty() => "/".to_owned(),
                    Some(p) => p,
                    None => client_path.to_owned(),
                };
                match query {
                    Some(q) if q.is_empty() => {}
                    Some(q) => {
                        target.push('?');
                        target.push_str(&q);
                    }
                    None => {
                        if let Some(q) = req.uri.query() {
                            target.push('?');
                            target.push_str(q);
                        }
                    }
                }
                Some(target)
            }
        };
        Ok(())
    }

    /// Counts a streamed body against the route's `request_size` limit; once over, fails
    /// the request with 413 (the answer is left in `ctx.refusal` for `fail_to_proxy`). The
    /// body is never buffered.
    pub fn request_body_filter(
        &self,
        body: Option<&bytes::Bytes>,
        ctx: &mut RequestCtx,
    ) -> pingora_core::Result<()> {
        let (Some(max), Some(chunk)) = (ctx.body_limit, body) else {
            return Ok(());
        };
        if !body_over_limit(&mut ctx.body_bytes, chunk.len(), max) {
            return Ok(());
        }
        let r = policies::Rejection::payload_too_large("request_size");
        if let Some(p) = ctx.compiled_route().and_then(|r| r.policies.as_deref()) {
            p.count_rejection(r.policy, r.status);
        }
        ctx.refusal = Some(Rejection::from_policy(r));
        // The client's fault, marked so: Pingora's HTTP/2 upstream path takes an error of
        // no source as the upstream's, stops reading the body and waits for the answer,
        // which the upstream, waiting for the rest of the body, never sends.
        Err(Error::explain(
            ErrorType::HTTPStatus(413),
            "request body over the route's request_size",
        )
        .into_down())
    }
}

#[cfg(test)]
#[path = "policy/tests.rs"]
mod tests;
