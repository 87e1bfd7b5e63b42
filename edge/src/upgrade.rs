//! HTTP/1.1 Upgrade (WebSocket) tunnels, run by the gateway instead of Pingora's proxy loop.
//!
//! Why: Pingora 0.9.1's own upgrade path drops about one tunnel in ten right after the
//! `101` (cloudflare/pingora#946). Its downstream half queues the upgrade request's empty
//! end-of-body at once; when the upstream half reads the `101` first and takes that stale
//! end-of-body afterwards, it counts the tunnel as finished. No `ProxyHttp` hook reaches
//! that loop, so `request_filter` hands every bodiless HTTP/1.1 upgrade request to
//! [`Gateway::tunnel`], which answers it in full.
//!
//! The tunnel follows the normal path step by step: the target comes from
//! [`Gateway::upstream_peer`] (pool, retries, in-flight count, `ctx.tried`), a connect
//! failure goes through [`Gateway::fail_to_connect`] and a failure before the answer through
//! [`Gateway::error_while_proxy`]; the request header is cleaned as Pingora's default
//! request policy does ([`sanitize`]) and then passes [`Gateway::upstream_request_filter`];
//! the answer passes [`Gateway::response_filter`]. A failure before anything reached the
//! client is returned, and Pingora answers it through `fail_to_proxy` (502/503/504 JSON).
//! After a `101`, bytes are relayed both ways until either side closes; a refused upgrade
//! (any other status) is relayed with its body. The client connection is closed afterwards.
//!
//! Limits, both as on Pingora's own path: a tunnel with no traffic either way for the
//! upstream's `read_timeout_ms` is closed; an upgrade request that announces a body is left
//! to Pingora (a WebSocket handshake is a GET without one).

use std::sync::OnceLock;
use std::time::Duration;

use http::{header, HeaderName, Version};
use pingora_core::connectors::TransportConnector;
use pingora_core::protocols::http::v1::client::HttpSession as ClientSession;
use pingora_core::upstreams::peer::{H1UpgradePolicy, HttpPeer, HttpUpstreamRequestPolicy};
use pingora_core::{Error, ErrorSource, ErrorType};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;

use crate::framing::has_body;
use crate::gateway::{Gateway, RequestCtx};

/// How long closing the upstream side of a finished tunnel may take.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

/// Hop-by-hop fields never forwarded (RFC 9110 7.6.1), as Pingora strips them.
const HOP_BY_HOP: [&str; 10] = [
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "connection",
    "upgrade",
    "http2-settings",
];

/// Fields a `Connection` header may not nominate for removal.
const PROTECTED: [&str; 4] = [
    "host",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
];

/// At most this many `Connection` tokens (Pingora's bound).
const MAX_NOMINATIONS: usize = 10;

/// Whether the gateway runs this request as a tunnel: an HTTP/1.1 upgrade request without a
/// body (HTTP/2 has no Upgrade). An `Upgrade` header that `Connection` does not list
/// (`Connection: upgrade`, RFC 9110 7.8) asks for no upgrade: it is removed from the
/// request, so that neither the gateway nor Pingora (which looks at `Upgrade` alone)
/// treats the request as one, and it is proxied as a normal request. nginx forwards such
/// a request as a normal one too (it sends `Upgrade` on only when told to).
pub fn is_tunnel(session: &mut Session) -> bool {
    if !session.as_downstream().is_upgrade_req() {
        return false;
    }
    if !lists_upgrade(session.req_header()) {
        session.req_header_mut().remove_header(&header::UPGRADE);
        return false;
    }
    !has_body(session.req_header())
}

/// Whether the request's `Connection` header lists the `upgrade` option.
fn lists_upgrade(req: &RequestHeader) -> bool {
    req.headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
}

/// Fresh connections only: a tunnel's connection is never pooled.
fn connector() -> &'static TransportConnector {
    static CONNECTOR: OnceLock<TransportConnector> = OnceLock::new();
    CONNECTOR.get_or_init(|| TransportConnector::new(None))
}

impl Gateway {
    /// Forwards an upgrade request (see [`is_tunnel`]) and writes the whole answer: the
    /// upstream's response, then the tunnel or the response body. `Err`: nothing was
    /// written yet, or a refused upgrade's body broke off; the caller answers it as the
    /// normal path does (`fail_to_proxy`). A tunnel ending, by either side, is `Ok`.
    pub async fn tunnel(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora_core::Result<()> {
        let (mut upstream, mut resp) = self.open_upstream(session, ctx).await?;
        // The client connection is not reused after a tunnel (nor after a refused upgrade).
        session.set_keepalive(None);
        self.response_filter(session, &mut resp, ctx)?;
        let upgraded = upstream.was_upgraded();
        let done = !upgraded && upstream.is_body_done();
        session.write_response_header(resp, done).await?;
        if upgraded {
            relay(session, &mut upstream).await;
            return Ok(());
        }
        while let Some(chunk) = upstream.read_body_bytes().await.map_err(|e| e.into_up())? {
            session.write_response_body(Some(chunk), false).await?;
        }
        session.write_response_body(None, true).await
    }

    /// Connects to a target and sends the request, retrying on another target while the
    /// route's retries allow. Returns the connection and the upstream's final response
    /// header (informational ones other than `101` are skipped).
    async fn open_upstream(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora_core::Result<(ClientSession, Box<ResponseHeader>)> {
        loop {
            let peer = self.upstream_peer(session, ctx)?;
            let mut upstream = match connector().new_stream(&*peer).await {
                Ok(stream) => ClientSession::new_with_options(stream, &*peer),
                Err(mut e) => {
                    e.as_up();
                    let e = self.fail_to_connect(ctx, e);
                    if e.retry() {
                        continue;
                    }
                    return Err(e.into_up());
                }
            };
            // A tunnel is timed by Pingora, not by the client connection's deadline.
            let read_timeout = ctx.in_flight.as_ref().map(|f| f.pool().read_timeout());
            upstream.read_timeout = read_timeout;
            upstream.write_timeout = read_timeout;
            match self.handshake(session, ctx, &mut upstream, &peer).await {
                Ok(resp) => return Ok((upstream, resp)),
                // A request the gateway cannot build is not the target's fault.
                Err(e) if *e.esource() != ErrorSource::Upstream => return Err(e),
                Err(e) => {
                    // A new stream every time: never a pooled connection to replay after.
                    let e = self.error_while_proxy(session, ctx, e, false);
                    if !e.retry() {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Writes the upstream request header and reads the response header.
    async fn handshake(
        &self,
        session: &Session,
        ctx: &RequestCtx,
        upstream: &mut ClientSession,
        peer: &HttpPeer,
    ) -> pingora_core::Result<Box<ResponseHeader>> {
        let mut req = session.req_header().clone();
        req.set_version(Version::HTTP_11);
        sanitize(&mut req, peer.options.http_upstream_request_policy).map_err(|e| e.into_down())?;
        self.upstream_request_filter(session, &mut req, ctx)?;
        upstream
            .write_request_header(Box::new(req))
            .await
            .map_err(|e| e.into_up())?;
        loop {
            upstream.read_response().await.map_err(|e| e.into_up())?;
            let Some(resp) = upstream.resp_header() else {
                return Err(
                    Error::explain(ErrorType::InvalidHTTPHeader, "no response header").into_up(),
                );
            };
            if resp.status == 101 && !upstream.was_upgraded() {
                // Only a WebSocket upgrade is forwarded as one (see `sanitize`).
                return Err(Error::explain(
                    ErrorType::InvalidHTTPHeader,
                    "upstream switched protocols without an upgrade request",
                )
                .into_up());
            }
            if !resp.status.is_informational() || resp.status == 101 {
                return Ok(Box::new(resp.clone()));
            }
        }
    }
}

/// Relays bytes both ways until either side closes or fails. The client closing (or
/// failing) closes the upstream connection; the upstream closing finishes the response to
/// the client. The caller's session is closed by Pingora afterwards (no keep-alive).
async fn relay(session: &mut Session, upstream: &mut ClientSession) {
    // The request body writer becomes pass-through, as the client side became at the 101.
    upstream.maybe_upgrade_body_writer();
    loop {
        // Both reads are cancel-safe: the one not chosen is dropped before it took bytes.
        tokio::select! {
            from_client = session.as_downstream_mut().read_request_body() => match from_client {
                Ok(Some(bytes)) => {
                    if upstream.write_body(&bytes).await.is_err() {
                        break;
                    }
                }
                Ok(None) | Err(_) => {
                    let _ = upstream.finish_body().await;
                    let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, upstream.shutdown()).await;
                    return;
                }
            },
            from_upstream = upstream.read_body_bytes() => match from_upstream {
                Ok(Some(bytes)) => {
                    if session.write_response_body(Some(bytes), false).await.is_err() {
                        let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, upstream.shutdown()).await;
                        return;
                    }
                }
                Ok(None) | Err(_) => break,
            },
        }
    }
    // The upstream is gone: end the response (the client connection closes after it).
    let _ = session.write_response_body(None, true).await;
}

/// What Pingora's default request policy (`HttpUpstreamRequestPolicy::standard`) does to a
/// request for an HTTP/1 upstream before `upstream_request_filter`: drop the fields the
/// `Connection` header nominates (refusing nominations of protected fields) and the
/// hop-by-hop fields, then restore `Connection: Upgrade` / `Upgrade: websocket` for a
/// WebSocket upgrade only, so no other protocol is switched through the gateway.
/// `Err`: a malformed or forbidden `Connection` header (the client's fault).
pub fn sanitize(
    req: &mut RequestHeader,
    policy: HttpUpstreamRequestPolicy,
) -> pingora_core::Result<()> {
    if policy == HttpUpstreamRequestPolicy::preserve()
        || (policy.h1_upgrade == H1UpgradePolicy::Preserve
            && req.headers.contains_key(header::UPGRADE))
    {
        return Ok(());
    }
    let websocket = policy.h1_upgrade == H1UpgradePolicy::WebSocketOnly
        && req.version == Version::HTTP_11
        && req
            .headers
            .get(header::UPGRADE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if policy.strip_connection_nominated {
        for name in nominations(req, policy.reject_malformed_connection_nominations)? {
            req.remove_header(&name);
        }
    }
    if policy.strip_hop_by_hop {
        for name in HOP_BY_HOP {
            req.remove_header(name);
        }
    }
    if policy.h1_upgrade != H1UpgradePolicy::Preserve {
        for name in ["connection", "upgrade", "http2-settings"] {
            req.remove_header(name);
        }
    }
    if websocket {
        req.insert_header(header::CONNECTION, "Upgrade")?;
        req.insert_header(header::UPGRADE, "websocket")?;
    }
    Ok(())
}

/// The field names the `Connection` header nominates.
fn nominations(
    req: &RequestHeader,
    reject_malformed: bool,
) -> pingora_core::Result<Vec<HeaderName>> {
    let mut names = Vec::new();
    let tokens = req
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty());
    for (count, token) in tokens.enumerate() {
        if count + 1 >= MAX_NOMINATIONS {
            return Error::e_explain(ErrorType::InvalidHTTPHeader, "too many connection options");
        }
        let is_token = token
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b));
        if token.starts_with(b":") || (reject_malformed && !is_token) {
            return Error::e_explain(ErrorType::InvalidHTTPHeader, "invalid connection option");
        }
        let Ok(name) = HeaderName::from_bytes(token) else {
            if reject_malformed {
                return Error::e_explain(ErrorType::InvalidHTTPHeader, "invalid connection option");
            }
            continue;
        };
        if PROTECTED.contains(&name.as_str()) {
            return Error::e_explain(
                ErrorType::InvalidHTTPHeader,
                "connection option names a protected header",
            );
        }
        names.push(name);
    }
    Ok(names)
}

#[cfg(test)]
mod tests;
