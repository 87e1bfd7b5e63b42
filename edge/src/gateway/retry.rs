//! Which target a request goes to, and when it goes again: the balancer's pick among the
//! targets not tried yet, a connect failure (the target ejected, another tried), an error
//! after connecting (idempotent requests only), and a pooled connection the upstream had
//! closed (sent again on a new one).

use std::net::IpAddr;
use std::time::Instant;

use http::Method;
use pingora_core::{Error, ErrorType};
use pingora_http::RequestHeader;
use pingora_proxy::Session;

use super::{Gateway, RequestCtx};
use crate::downstream;
use crate::upstream::{ms_at, now_ms, HashOn};

impl Gateway {
    /// Picks the target: a healthy one not tried yet by this request.
    pub fn upstream_peer(
        &self,
        session: &Session,
        ctx: &mut RequestCtx,
    ) -> pingora_core::Result<Box<pingora_core::upstreams::peer::HttpPeer>> {
        let Some(route) = ctx.compiled_route() else {
            return Err(Error::explain(ErrorType::HTTPStatus(404), "no route"));
        };
        let pool = route.pool.clone();
        let now = Instant::now();
        if ctx.tried.is_empty() {
            ctx.retries_left = pool.spec.retries;
            ctx.upstream_started = Some(now);
        }
        let key = if pool.needs_key() {
            hash_key(pool.hash_on(), session.req_header(), ctx.client_ip)
        } else {
            Vec::new()
        };
        let Some(pick) = pool.select(&key, &ctx.tried, ms_at(now)) else {
            return Err(Error::explain(
                ErrorType::HTTPStatus(503),
                "no healthy target",
            ));
        };
        let peer = pool.peer(pick.target(), !downstream::times_upstream());
        ctx.tried.push(pick.id());
        // Replacing the guard releases the previous try's in-flight count.
        ctx.in_flight = Some(pick);
        Ok(Box::new(peer))
    }

    /// A connect failure: eject the target and retry on another one while retries last.
    pub fn fail_to_connect(&self, ctx: &mut RequestCtx, mut e: Box<Error>) -> Box<Error> {
        let now = now_ms();
        let retry = match &ctx.in_flight {
            Some(f) => {
                f.mark_failed(now);
                ctx.retries_left > 0 && f.pool().has_candidate(&ctx.tried, now)
            }
            None => false,
        };
        if retry {
            ctx.retries_left -= 1;
        }
        e.set_retry(retry);
        e
    }

    /// An error after connecting: retry on another target only for idempotent methods when
    /// nothing of the response reached the client and the body can be replayed.
    ///
    /// One more case: the upstream closed a pooled connection just as the request went out
    /// on it (its keep-alive timeout raced ours; Pingora marks such errors "reused only").
    /// RFC 9112 9.3.1 lets an idempotent request go again on a new connection, and nginx
    /// does so: once per request, to any target (the same one included), not counted as a
    /// try and not held against the target.
    pub fn error_while_proxy(
        &self,
        session: &Session,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
        reused: bool,
    ) -> Box<Error> {
        downstream::upstream_done();
        if downstream::take_upstream_timeout() {
            // The connection's deadline cut the upstream socket (`downstream.rs`): what
            // Pingora saw as a closed connection is the upstream's read timeout.
            e = Error::because(
                ErrorType::ReadTimedout,
                "no answer within the upstream's read_timeout_ms",
                e,
            );
            e.as_up();
        }
        let replayable = is_idempotent(&session.req_header().method)
            && ctx.refusal.is_none()
            && session.response_written().is_none()
            && !session.as_ref().retry_buffer_truncated();
        if reused
            && matches!(e.retry, pingora_error::RetryType::ReusedOnly)
            && replayable
            && !ctx.replayed_on_new_connection
        {
            ctx.replayed_on_new_connection = true;
            ctx.tried.pop();
            e.set_retry(true);
            return e;
        }
        let retry = replayable
            && ctx.retries_left > 0
            && ctx
                .in_flight
                .as_ref()
                .is_some_and(|f| f.pool().has_candidate(&ctx.tried, now_ms()));
        if retry {
            ctx.retries_left -= 1;
        }
        e.set_retry(retry);
        e
    }
}

/// Methods that may be sent twice (RFC 9110 9.2.2), hence retried on another target.
pub fn is_idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

/// The consistent-hash key of a request.
fn hash_key(on: &HashOn, req: &RequestHeader, client_ip: Option<IpAddr>) -> Vec<u8> {
    match on {
        HashOn::ClientIp => match client_ip {
            Some(IpAddr::V4(ip)) => ip.octets().to_vec(),
            Some(IpAddr::V6(ip)) => ip.octets().to_vec(),
            None => Vec::new(),
        },
        HashOn::Path => req.uri.path().as_bytes().to_vec(),
        HashOn::Header(name) => req
            .headers
            .get(name.as_str())
            .map(|v| v.as_bytes().to_vec())
            .unwrap_or_default(),
    }
}
