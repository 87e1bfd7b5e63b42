//! The gateway's request handling, phase by phase (called from `proxy.rs`), and the state
//! shared between the proxy, the reloader and the admin server.

use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use http::{Method, StatusCode, Version};
use pingora_core::{Error, ErrorType};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;

use crate::access_log::{AccessLog, Entry};
use crate::metrics::{Metrics, NO_ROUTE};
use crate::request_id::{self, RequestId, RequestIds};
use crate::respond::Rejection;
use crate::snapshot::{CompiledRoute, Snapshot};
use crate::upstream::InFlight;
use crate::{downstream, forwarded, grpc, headers, response_header};

use crate::framing::{has_body, hostile, raw_has_content_length};

/// State shared by the proxy, the reloader and the admin server's live view.
pub struct Shared {
    pub snapshot: ArcSwap<Snapshot>,
    pub metrics: Arc<Metrics>,
    /// Rate-limit and quota state, for the life of the process (every snapshot is compiled
    /// against it).
    pub counters: Arc<policies::Counters>,
    /// Which store revision the reloader has dealt with (see `reload.rs`).
    pub freshness: crate::reload::Freshness,
    reload_error: ArcSwapOption<String>,
    /// Set once the proxy listener accepts connections.
    pub ready: AtomicBool,
    pub drain: Arc<crate::downstream::Drain>,
    /// With `--redis`: rate limits and quotas counted cluster-wide (set once at start).
    pub counting: OnceLock<Arc<crate::cluster::counting::SharedCounting>>,
    /// How many nodes serve traffic now (the follow feed keeps it up to date).
    pub live_nodes: Arc<crate::cluster::LiveNodes>,
}

impl Shared {
    pub fn new(
        snapshot: Snapshot,
        metrics: Arc<Metrics>,
        counters: Arc<policies::Counters>,
    ) -> Arc<Shared> {
        metrics
            .config_revision
            .set(i64::try_from(snapshot.revision).unwrap_or(i64::MAX));
        Arc::new(Shared {
            freshness: crate::reload::Freshness::new(snapshot.revision),
            snapshot: ArcSwap::from_pointee(snapshot),
            metrics,
            counters,
            reload_error: ArcSwapOption::empty(),
            ready: AtomicBool::new(false),
            drain: Arc::default(),
            counting: OnceLock::new(),
            live_nodes: Arc::default(),
        })
    }

    pub fn set_reload_error(&self, e: Option<String>) {
        self.reload_error.store(e.map(Arc::new));
    }

    pub fn reload_error(&self) -> Option<String> {
        self.reload_error.load().as_deref().cloned()
    }
}

/// The `ProxyHttp` implementation (see `proxy.rs`).
pub struct Gateway {
    pub shared: Arc<Shared>,
    pub ids: RequestIds,
    pub access_log: AccessLog,
}

/// Per-request state.
pub struct RequestCtx {
    pub started: Instant,
    /// Loaded once, in `early_request_filter`.
    pub snapshot: Option<Arc<Snapshot>>,
    /// Index into `snapshot.routes`.
    pub route: Option<usize>,
    pub request_id: RequestId,
    pub client_ip: Option<IpAddr>,
    /// Set when the request must be refused before routing (answered in `request_filter`).
    pub refusal: Option<Rejection>,
    /// Targets tried so far (their pool-unique ids); inline for the usual few tries.
    pub tried: smallvec::SmallVec<[usize; 4]>,
    pub retries_left: u32,
    /// Whether the request already went again after a pooled connection the upstream had
    /// closed (see [`Gateway::error_while_proxy`]).
    pub replayed_on_new_connection: bool,
    pub in_flight: Option<InFlight>,
    pub upstream_started: Option<Instant>,
    /// Status the client got (0 until a response is written).
    pub status: u16,
    /// A gRPC call's status: of the gateway's refusal, else of the upstream's answer (its
    /// header or trailers).
    pub grpc_status: Option<u16>,
    /// What the route's policy chain learned (consumer, rate-limit figures, CORS origin).
    pub policy_state: policies::RequestState,
    /// The route's `request_size` limit, counted against streamed bodies.
    pub body_limit: Option<u64>,
    /// Request body bytes seen so far (counted only when `body_limit` is set).
    pub body_bytes: u64,
    /// Counts this request as being served (shutdown waits for it) from its header on.
    pub busy: Option<crate::downstream::Busy>,
    /// The request target for the upstream when it is not the client's (strip_prefix,
    /// rewrite, hidden query credentials): path and query, set in `request_filter`.
    pub upstream_target: Option<String>,
    /// The answer's encoder when the route's `compression` encodes it (boxed: a request
    /// context stays small for the answers that are not encoded).
    pub encoder: Option<Box<crate::compress::Encoder>>,
    /// The gRPC-Web bridge of a call on a route with `grpc_web`.
    pub grpc_web: Option<crate::grpc_web::Bridge>,
    /// Set for routes with a `cache` policy: what the cache did (`x-cache`, metrics).
    pub cache: Option<crate::cache::CacheResult>,
}

impl RequestCtx {
    pub fn new() -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            snapshot: None,
            route: None,
            request_id: RequestId::default(),
            client_ip: None,
            refusal: None,
            tried: smallvec::SmallVec::new(),
            retries_left: 0,
            replayed_on_new_connection: false,
            in_flight: None,
            upstream_started: None,
            status: 0,
            grpc_status: None,
            policy_state: policies::RequestState::default(),
            body_limit: None,
            body_bytes: 0,
            busy: None,
            upstream_target: None,
            encoder: None,
            grpc_web: None,
            cache: None,
        }
    }

    pub(crate) fn compiled_route(&self) -> Option<&CompiledRoute> {
        self.snapshot.as_ref()?.routes.get(self.route?)
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        RequestCtx::new()
    }
}

impl Gateway {
    /// Takes the snapshot, the request id and the client address; refuses hostile framing;
    /// matches the route.
    pub fn early_request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) {
        ctx.busy = Some(self.shared.drain.enter());
        let snapshot = self.shared.snapshot.load_full();
        let req = session.req_header();
        ctx.request_id = self
            .ids
            .keep_or_generate(req.headers.get(&request_id::NAME));
        ctx.client_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let smuggled_length = req.headers.contains_key(http::header::TRANSFER_ENCODING)
            && raw_has_content_length(session);
        if let Some(r) = hostile(req, smuggled_length) {
            ctx.refusal = Some(r);
        } else if let Err(r) = crate::target::canonicalize(session) {
            ctx.refusal = Some(r);
        } else {
            let req = session.req_header();
            ctx.route = snapshot
                .router
                .find(
                    forwarded::request_host(req),
                    &req.method,
                    req.uri.path(),
                    &req.headers,
                )
                .map(|m| m.index);
            ctx.grpc_web = ctx
                .route
                .and_then(|i| snapshot.routes.get(i)?.policies.as_deref())
                .filter(|p| p.grpc_web)
                .and_then(|_| crate::grpc_web::Bridge::new(grpc::flavour(req)?));
        }
        ctx.snapshot = Some(snapshot);
    }

    /// Answers refusals, unmatched requests and what the route's policy chain refuses (or
    /// answers itself, as a CORS preflight). `Ok(true)`: the response is written.
    pub async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora_core::Result<bool> {
        let refusal = match ctx.refusal.take() {
            Some(r) => Some(r),
            None if ctx.route.is_none() => Some(Rejection::no_route()),
            None => match self.shared.counting.get() {
                None => self.run_policies(session, ctx),
                Some(counting) => self.run_policies_shared(session, ctx, counting).await,
            }
            .or_else(|| {
                let protocol = ctx.compiled_route()?.pool.spec.protocol;
                crate::framing::too_big_for_upstream(session.req_header(), protocol)
            })
            .or_else(|| self.plan_upstream_target(session.req_header(), ctx).err()),
        };
        if let Some(mut r) = refusal {
            self.decorate_refusal(ctx, &mut r);
            // The body of a refused request is not read, so its connection is not reused.
            if has_body(session.req_header()) {
                session.set_keepalive(None);
            }
            ctx.grpc_status = r.send(session, ctx.request_id.as_str()).await?;
            ctx.status = r.status.as_u16();
            return Ok(true);
        }
        // Pingora's own upgrade path drops some tunnels: the gateway runs them (`upgrade.rs`).
        if crate::upgrade::is_tunnel(session) {
            return self.tunnel(session, ctx).await.map(|()| true);
        }
        Ok(false)
    }

    /// The route's CORS headers on a refusal of the gateway, for an allowed origin.
    fn decorate_refusal(&self, ctx: &RequestCtx, r: &mut Rejection) {
        if let Some(p) = ctx.compiled_route().and_then(|r| r.policies.as_deref()) {
            p.chain.on_refusal(&ctx.policy_state, &mut r.headers);
        }
    }

    /// Forwarding headers, request id and the `headers` policies' edits, then the request
    /// target worked out in `request_filter` (`ctx.upstream_target`).
    pub fn upstream_request_filter(
        &self,
        session: &Session,
        req: &mut RequestHeader,
        ctx: &RequestCtx,
    ) -> pingora_core::Result<()> {
        let is_tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        let origin = forwarded::Origin {
            client_ip: ctx.client_ip,
            proto: if is_tls { "https" } else { "http" },
            host: forwarded::request_host_value(session.req_header()),
            request_id: &ctx.request_id,
        };
        let policies = ctx.compiled_route().and_then(|r| r.policies.as_deref());
        let added = forwarded::ADDED + policies.map_or(0, |p| p.request_headers_added);
        let cached = policies.is_some_and(|p| p.cache.is_some());
        headers::edit_request(req, added, |h| {
            forwarded::apply(h, &origin);
            if let Some(p) = policies {
                p.chain.apply_request_headers(h);
            }
            if cached {
                // CGI, WSGI and PHP upstreams read `x_lang` as `X-Lang`, which the cache's
                // key and `Vary` never see: an answer made for one client's `x_lang` was
                // served to everyone. On a cached route such names do not reach the
                // upstream (nginx drops them by default).
                policies::HeaderSink::remove_matching(h, &|name| name.as_str().contains('_'));
            }
        });
        let Some(target) = &ctx.upstream_target else {
            return Ok(());
        };
        // A new path replaces the whole URI, and with it an HTTP/2 client's `:authority`
        // (its only host): keep it as `Host`, or an HTTP/2 upstream gets no authority.
        if !req.headers.contains_key(http::header::HOST) {
            if let Some(authority) = req.uri.authority().map(|a| a.as_str().to_owned()) {
                req.insert_header(http::header::HOST, authority)?;
            }
        }
        req.set_raw_path(target.as_bytes())
    }

    /// The request goes out on upstream socket `fd`: the client connection's deadline
    /// times the answer, unless Pingora does (`Pool::peer`).
    pub fn connected_to_upstream(
        &self,
        peer: &pingora_core::upstreams::peer::HttpPeer,
        fd: std::os::fd::RawFd,
        digest: Option<&pingora_core::protocols::Digest>,
        ctx: &RequestCtx,
    ) {
        if peer.options.read_timeout.is_some() {
            return;
        }
        let Some(pool) = ctx.in_flight.as_ref().map(InFlight::pool) else {
            return;
        };
        let inet = |a: Option<&pingora_core::protocols::l4::socket::SocketAddr>| {
            a.and_then(|a| a.as_inet()).copied()
        };
        let socket = digest.and_then(|d| d.socket_digest.as_deref());
        downstream::awaiting_upstream(
            fd,
            inet(socket.and_then(|s| s.local_addr())),
            inet(socket.and_then(|s| s.peer_addr())),
            pool.read_timeout(),
        );
    }

    /// Cleans the upstream's header (`response_header::clean`: hop-by-hop fields, framing;
    /// `Err` for a 502, as is a `101` to a request without `Upgrade`), answers in the gateway's own HTTP version, adds `x-request-id` and
    /// the policy chain's response headers (`RateLimit-*`, CORS, `headers` edits); while
    /// draining, closes the connection after it.
    pub fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora_core::Result<()> {
        if let Some(code) = grpc::status(&resp.headers) {
            ctx.grpc_status = Some(code);
        }
        // RFC 9110 15.2.2: a server switches only to a protocol the request's `Upgrade`
        // named. Every upgrade the gateway forwards keeps that header (`upgrade::is_tunnel`
        // removes it from the requests it forwards as normal ones), so without it a `101`
        // would turn the client's connection into a tunnel that nothing asked for.
        if resp.status == StatusCode::SWITCHING_PROTOCOLS
            && !session
                .req_header()
                .headers
                .contains_key(http::header::UPGRADE)
        {
            return Err(Error::explain(
                ErrorType::InvalidHTTPHeader,
                "upstream switched protocols without an upgrade request",
            )
            .into_up());
        }
        if self.shared.drain.is_draining() {
            session.set_keepalive(None);
        }
        if has_no_body(session.req_header(), resp) {
            downstream::upstream_done();
        } else {
            downstream::upstream_progress();
        }
        ctx.status = resp.status.as_u16();
        let policies = ctx.compiled_route().and_then(|r| r.policies.as_deref());
        let compression = policies.and_then(|p| p.compression.as_ref());
        let added = 1
            + policies.map_or(0, |p| p.response_headers_added)
            + compression.map_or(0, |_| crate::compress::HEADERS_ADDED);
        let (status, client) = (resp.status, session.req_header().version);
        let mut coding = None;
        let close = headers::edit_response(resp, added, |h| {
            let close = response_header::clean(h, status, client)?;
            h.insert(request_id::NAME, ctx.request_id.header_value().clone());
            if let Some(p) = policies {
                p.chain.on_response(&ctx.policy_state, h);
            }
            if let Some(settings) = compression {
                let req = session.req_header();
                let request = crate::compress::Request {
                    method: &req.method,
                    version: client,
                    headers: &req.headers,
                    is_grpc_or_upgrade: grpc::flavour(req).is_some()
                        || req.headers.contains_key(http::header::UPGRADE),
                };
                // A HEAD's headers are edited, but it has no body to encode.
                coding = crate::compress::apply(settings, &request, status, h)
                    .and_then(|(c, reserved)| Some((c, settings.level(c), reserved?)));
            }
            Ok(close)
        })
        .map_err(|e: response_header::ResponseHeaderError| {
            Error::because(ErrorType::InvalidHTTPHeader, "upstream response", e).into_up()
        })?;
        // An HTTP/1.0 client's answer without a length ends with the connection (chunked
        // coding is taken off it, here or by `http10.rs` for HTTP/2 upstreams).
        let unframed = matches!(client, Version::HTTP_10 | Version::HTTP_09)
            && !resp.headers.contains_key(http::header::CONTENT_LENGTH)
            && !has_no_body(session.req_header(), resp);
        if close || unframed {
            session.set_keepalive(None);
        }
        if let Some((c, level, reserved)) = coding {
            let encoder = crate::compress::Encoder::new(c, level, reserved)
                .map_err(|e| Error::because(ErrorType::InternalError, "compression encoder", e))?;
            ctx.encoder = Some(Box::new(encoder));
        }
        if let Some(bridge) = &mut ctx.grpc_web {
            bridge.response_header(resp)?;
        }
        // Not the upstream's version (nginx answers HTTP/1.1 to 1.0 and 1.1 clients alike).
        if client != Version::HTTP_2 {
            resp.set_version(Version::HTTP_11);
        }
        crate::cache::phases::response_filter(session, resp, ctx);
        Ok(())
    }

    /// Renders a proxy failure as JSON when nothing was sent yet (a refusal left in
    /// `ctx.refusal` by a body filter wins over the error). Returns the status sent (0 when
    /// the client is gone or a response had already started).
    pub async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> u16 {
        if let Some(resp) = session.response_written() {
            return resp.status.as_u16();
        }
        let Some(mut r) = ctx.refusal.take().or_else(|| Rejection::from_error(e)) else {
            return 0;
        };
        self.decorate_refusal(ctx, &mut r);
        // The connection is not reused after a failure (`proxy.rs`): say so in the answer,
        // so that a client does not send its next request on it.
        session.set_keepalive(None);
        match r.send(session, ctx.request_id.as_str()).await {
            Ok(grpc_status) => ctx.grpc_status = grpc_status,
            Err(_) => return 0,
        }
        ctx.status = r.status.as_u16();
        ctx.status
    }

    /// Metrics and access log of a finished request; releases the in-flight count.
    pub fn logging(&self, session: &Session, ctx: &mut RequestCtx) {
        downstream::upstream_done();
        let in_flight = ctx.in_flight.take();
        // What the gateway answered itself, or the upstream's status; a gRPC call the
        // gateway refused went out as HTTP 200 with a gRPC status, and is counted and
        // logged under the refusal's HTTP status (401, 429, 503...).
        let status = if ctx.status != 0 {
            ctx.status
        } else {
            session
                .response_written()
                .map(|r| r.status.as_u16())
                .filter(|s| *s != 0)
                .unwrap_or(499)
        };
        let now = Instant::now();
        let total = now.saturating_duration_since(ctx.started);
        let upstream_time: Option<Duration> = ctx
            .upstream_started
            .map(|t| now.saturating_duration_since(t));
        let req = session.req_header();
        let route = ctx.compiled_route();
        match (route, &ctx.snapshot) {
            (Some(r), _) => r.metrics.observe(&req.method, status, total, upstream_time),
            (None, Some(s)) => s.no_route.observe(&req.method, status, total, None),
            (None, None) => {
                self.shared
                    .metrics
                    .no_route()
                    .observe(&req.method, status, total, None)
            }
        }
        if let (Some(result), Some(r), Some(cache)) = (ctx.cache, route, crate::cache::get()) {
            if let Some(p) = r.policies.as_deref() {
                p.cache_counters.count(cache, &r.id, result);
            }
        }
        let target = in_flight.as_ref().map(|f| f.target().name.as_str());
        self.access_log.log(&Entry {
            route: route.map_or(NO_ROUTE, |r| r.id.as_str()),
            method: req.method.as_str(),
            path: req.uri.path(),
            status,
            latency: total,
            upstream: route.map(|r| r.pool.id()),
            target,
            request_id: ctx.request_id.as_str(),
            client_ip: ctx.client_ip,
            consumer: ctx.policy_state.consumer_id(),
            grpc_status: ctx.grpc_status,
        });
    }
}

/// Whether the upstream's answer ends with its header (HTTP/1: RFC 9112 6.3), so that its
/// connection is released without a body filter seeing the end. An informational (1xx)
/// answer is not the end: the final one is still to come.
fn has_no_body(req: &RequestHeader, resp: &ResponseHeader) -> bool {
    req.method == Method::HEAD
        || matches!(resp.status.as_u16(), 204 | 304)
        || resp
            .headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() == b"0")
}

mod answer;
mod retry;

pub use retry::is_idempotent;

#[cfg(test)]
mod tests;
