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

/// Statuses the route's `ttl_secs` applies to. Errors are stored only when the origin
/// gives them a lifetime: with `ttl_secs` for them too, one request making the origin
/// answer 414 (a long query the key leaves out) or 405 (a method-override header) had that
/// error served to everyone for the TTL. nginx's `proxy_cache_valid TIME` is 200, 301 and
/// 302 alike.
const TTL_STATUSES: [u16; 6] = [200, 203, 204, 300, 301, 308];

/// Why an answer to a request with `Authorization` was not stored.
pub const AUTHORIZATION_REASON: &str = "authorization";

/// The route's cache settings, if the request's route has a `cache` policy.
fn settings(ctx: &RequestCtx) -> Option<&Cache> {
    ctx.compiled_route()?.policies.as_deref()?.cache.as_ref()
}

/// Turns the cache on for a GET or HEAD of a route with a `cache` policy (after its
/// policies let the request through). Other requests of such a route are `BYPASS`.
pub fn request_cache_filter(session: &mut Session, ctx: &mut RequestCtx) {
    let Some(cache) = super::get() else {
        return;
    };
    let Some((max_body, keys_query)) = settings(ctx).map(|c| {
        (
            c.max_body_bytes,
            c.key.contains(&policies::CacheKeyPart::Query),
        )
    }) else {
        return;
    };
    ctx.cache = Some(CacheResult::Bypass);
    if !matches!(session.req_header().method, Method::GET | Method::HEAD) {
        return;
    }
    // A query the key leaves out must not pick the answer stored for everyone (`?x` that
    // makes the origin answer differently, or fail): such a request goes to the origin
    // uncached. A route whose answers depend on the query keys on it (`key: [query]`).
    if !keys_query && session.req_header().uri.query().is_some() {
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
            session.digest().is_some_and(|d| d.ssl_digest.is_some()),
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
    // A lifetime given twice (`max-age=0, max-age=60`) or not as a number (`max-age=-1`)
    // is no lifetime to trust: stale (RFC 9111 4.2.1, 1.2.2), so not stored, and never
    // given the route's `ttl_secs` instead.
    if ["max-age", "s-maxage"]
        .iter()
        .any(|d| !lifetime_is_well_formed(resp, d))
    {
        return Uncacheable(NoCacheReason::Custom("malformed lifetime"));
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
    let ttl_applies = !c.ttl.is_zero() && TTL_STATUSES.contains(&resp.status.as_u16());
    // The answer's own `Age` (a cache upstream of this one held it that long) counts
    // toward its age here too (RFC 9111 4.2.3): it was made that long before now.
    let age = std::time::Duration::from_secs(upstream_age(resp));
    let made = now.checked_sub(age).unwrap_or(now);
    let fresh_until = calculate_fresh_until(made, cc.as_ref(), resp, authorized, &defaults)
        .or_else(|| ttl_applies.then(|| made + c.ttl));
    let Some(fresh_until) = fresh_until else {
        return Uncacheable(NoCacheReason::OriginNotCache);
    };
    // `no-cache` (every use validated first), `must-revalidate` and `proxy-revalidate`
    // (never served stale, RFC 9111 5.2.2.2, 5.2.2.8, 4.2.4): no stale window, whatever
    // the route's defaults.
    let (swr, sie) = if cc.as_ref().is_some_and(|cc| {
        (cc.no_cache() && cc.no_cache_field_names().is_none())
            || cc.must_revalidate()
            || cc.proxy_revalidate()
    }) {
        (0, 0)
    } else {
        calculate_serve_stale_durations(cc.as_ref(), &defaults)
    };
    let mut stored = resp.clone();
    if let Some(cc) = &cc {
        cc.strip_private_headers(&mut stored);
    }
    RespCacheable::Cacheable(CacheMeta::new(fresh_until, made, swr, sie, stored))
}

/// The answer's `Age` in seconds (0 when absent or not a number).
fn upstream_age(resp: &ResponseHeader) -> u64 {
    resp.headers
        .get(header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Whether `directive` of the answer's `Cache-Control` is absent, or present once with a
/// whole number of seconds.
fn lifetime_is_well_formed(resp: &ResponseHeader, directive: &str) -> bool {
    let mut seen = 0;
    for d in resp
        .headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let (name, value) = d.split_once('=').unwrap_or((d, ""));
        if !name.trim().eq_ignore_ascii_case(directive) {
            continue;
        }
        seen += 1;
        let value = value.trim().trim_matches('"');
        if seen > 1 || value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    true
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
