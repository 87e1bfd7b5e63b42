//! The cache's steps in the request phases (called from `proxy.rs`): whether a request
//! uses the cache, its key, whether an answer may be stored and for how long (RFC 9111),
//! which variant a request gets (`Vary`), when a stale answer may be served, and what
//! `x-cache` says.

use std::time::SystemTime;

use http::{header, Method};
use pingora_cache::cache_control::{CacheControl, Cacheable, InterpretCacheControl};
use pingora_cache::filters::{calculate_fresh_until, calculate_serve_stale_durations};
use pingora_cache::key::HashBinary;
use pingora_cache::{CacheKey, CacheMeta, CacheMetaDefaults, CachePhase, NoCacheReason};
use pingora_cache::{RespCacheable, VarianceBuilder};
use pingora_core::{Error, ErrorSource, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;
use policies::Cache;

use super::CacheResult;
use crate::gateway::RequestCtx;

/// Statuses stored (RFC 9110 15.1 "heuristically cacheable", plus none that need a range
/// or a condition to make sense: no 206, no 304).
const CACHEABLE_STATUSES: [u16; 11] = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501];

/// Why an answer to a request with `Authorization` was not stored.
pub const AUTHORIZATION_REASON: &str = "authorization";

/// The route's cache settings, if the request's route has a `cache` policy.
fn settings(ctx: &RequestCtx) -> Option<&Cache> {
    ctx.compiled_route()?.policies.as_deref()?.chain.cache()
}

/// Turns the cache on for a GET or HEAD of a route with a `cache` policy (after its
/// policies let the request through). Other requests of such a route are `BYPASS`.
pub fn request_cache_filter(session: &mut Session, ctx: &mut RequestCtx) {
    let Some(cache) = super::get() else {
        return;
    };
    let Some(max_body) = settings(ctx).map(|c| c.max_body_bytes) else {
        return;
    };
    ctx.cache = Some(CacheResult::Bypass);
    if !matches!(session.req_header().method, Method::GET | Method::HEAD) {
        return;
    }
    session.cache.enable(
        cache.store,
        None,
        Some(cache.predictor),
        Some(cache.lock),
        None,
    );
    session.cache.set_max_file_size_bytes(max_body);
}

/// The request's key (see `key.rs`).
pub fn cache_key(session: &Session, ctx: &RequestCtx) -> Result<CacheKey> {
    let route = ctx.compiled_route();
    match (route, settings(ctx)) {
        (Some(route), Some(c)) => Ok(super::key::build(
            &route.id,
            route.pool.id(),
            c,
            session.req_header(),
            &ctx.policy_state,
        )),
        _ => Err(Error::explain(
            ErrorType::InternalError,
            "cache key asked for a route without a cache",
        )),
    }
}

/// Whether `resp` may be stored, and until when it is fresh: never a `Set-Cookie`,
/// `no-store`, `private` or `Vary: *` answer, nor one to a request with `Authorization`
/// unless it says `public`, `s-maxage` or `must-revalidate` (RFC 9111 3.5); freshness from
/// `s-maxage`/`max-age`, then `Expires`, then the route's `ttl_secs` (0: not stored).
pub fn response_cache_filter(
    req: &RequestHeader,
    resp: &ResponseHeader,
    ctx: &RequestCtx,
) -> RespCacheable {
    let Some(c) = settings(ctx) else {
        return RespCacheable::Uncacheable(NoCacheReason::NeverEnabled);
    };
    decide(c, req, resp, SystemTime::now())
}

fn decide(c: &Cache, req: &RequestHeader, resp: &ResponseHeader, now: SystemTime) -> RespCacheable {
    use RespCacheable::Uncacheable;
    if !CACHEABLE_STATUSES.contains(&resp.status.as_u16()) {
        return Uncacheable(NoCacheReason::OriginNotCache);
    }
    if resp.headers.contains_key(header::SET_COOKIE) {
        return Uncacheable(NoCacheReason::Custom("set-cookie"));
    }
    if vary_names(resp).any(|n| n == "*") {
        return Uncacheable(NoCacheReason::Custom("vary: *"));
    }
    let cc = CacheControl::from_resp_headers(resp);
    if cc
        .as_ref()
        .is_some_and(|cc| cc.is_cacheable() == Cacheable::No)
    {
        return Uncacheable(NoCacheReason::OriginNotCache);
    }
    let authorized = req.headers.contains_key(header::AUTHORIZATION);
    if authorized
        && cc
            .as_ref()
            .is_none_or(|cc| !cc.allow_caching_authorized_req())
    {
        return Uncacheable(NoCacheReason::Custom(AUTHORIZATION_REASON));
    }
    let defaults = CacheMetaDefaults::new(|_| None, c.stale_while_revalidate, c.stale_if_error);
    let fresh_until = calculate_fresh_until(now, cc.as_ref(), resp, authorized, &defaults)
        .or_else(|| (!c.ttl.is_zero()).then(|| now + c.ttl));
    let Some(fresh_until) = fresh_until else {
        return Uncacheable(NoCacheReason::OriginNotCache);
    };
    let (swr, sie) = calculate_serve_stale_durations(cc.as_ref(), &defaults);
    let mut stored = resp.clone();
    if let Some(cc) = &cc {
        cc.strip_private_headers(&mut stored);
    }
    RespCacheable::Cacheable(CacheMeta::new(fresh_until, now, swr, sie, stored))
}

/// The lowercased field names of the answer's `Vary`.
fn vary_names(resp: &ResponseHeader) -> impl Iterator<Item = String> + '_ {
    resp.headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
}

/// The variant of a stored answer that `req` asks for: the request's values of the
/// fields the answer's `Vary` names (`None`: the answer does not vary).
pub fn cache_vary_filter(meta: &CacheMeta, req: &RequestHeader) -> Option<HashBinary> {
    let mut variance = VarianceBuilder::new();
    for name in vary_names(meta.response_header()) {
        let mut value = Vec::new();
        for (i, v) in req.headers.get_all(name.as_str()).iter().enumerate() {
            if i > 0 {
                value.extend_from_slice(b", ");
            }
            value.extend_from_slice(v.as_bytes());
        }
        variance.add_owned_name_value(name, value);
    }
    variance.finalize()
}

/// Whether a stale answer may be served: while it is fetched again (its window already
/// checked by Pingora), or when fetching failed for any reason but the client's own.
/// After a failed connection (not an error status) Pingora does not reuse the client's
/// connection: the stale answer then says `Connection: close`, or a client would send its
/// next request on a connection being closed (and get a reset).
pub fn should_serve_stale(session: &mut Session, error: Option<&Error>) -> bool {
    let Some(e) = error else {
        return true;
    };
    if e.esource() == &ErrorSource::Downstream {
        return false;
    }
    if !matches!(e.etype(), ErrorType::HTTPStatus(_)) {
        session.set_keepalive(None);
    }
    true
}

/// What the cache did for this answer; `None` for routes without a cache.
pub fn result(session: &Session, ctx: &RequestCtx) -> Option<CacheResult> {
    ctx.cache?;
    Some(match session.cache.phase() {
        CachePhase::Hit | CachePhase::Revalidated | CachePhase::RevalidatedNoCache(_) => {
            CacheResult::Hit
        }
        CachePhase::Stale | CachePhase::StaleUpdating => CacheResult::Stale,
        CachePhase::Miss | CachePhase::Expired => CacheResult::Miss,
        _ => CacheResult::Bypass,
    })
}

/// Adds `x-cache` to the answer of a route with a cache and notes the result for the
/// metrics (`logging`).
pub fn response_filter(session: &Session, resp: &mut ResponseHeader, ctx: &mut RequestCtx) {
    if let Some(r) = result(session, ctx) {
        ctx.cache = Some(r);
        // A static name and value: this cannot fail.
        let _ = resp.insert_header("x-cache", r.header());
    }
}

#[cfg(test)]
mod tests;
