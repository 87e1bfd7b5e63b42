//! The request as policies see it ([`RequestView`], borrowed, cheap to build from a Pingora
//! request header) and what they remember about it ([`RequestState`], kept in the edge's
//! per-request ctx between phases).

use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::directory::Consumer;
use crate::verdict::RateLimitStatus;

/// A borrowed view of the incoming request. Building one copies nothing.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a Method,
    /// The path without the query string.
    pub path: &'a str,
    /// The raw query string (after `?`), if any.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// The address the edge attributes the request to (rate limits keyed by `ip` use it).
    pub client_ip: IpAddr,
    /// The address of the TCP peer (`ip_filter` starts from it and believes
    /// `X-Forwarded-For` only from its trusted proxies).
    pub peer_ip: IpAddr,
}

impl<'a> RequestView<'a> {
    /// The first value of header `name` as text, if present and visible ASCII.
    pub fn header_str(&self, name: &HeaderName) -> Option<&'a str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The raw value (not percent-decoded) of the first query parameter named `name` as
    /// an upstream reads names ([`is_param_named`]: `api%6Bey` and `APIKEY` are `apikey`),
    /// if present.
    pub fn query_param(&self, name: &str) -> Option<&'a str> {
        self.query?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            is_param_named(k, name).then_some(v)
        })
    }

    /// The one value of header `name`, if present (one lookup); `Err` when it comes more
    /// than once: which one is the credential would be a guess (the gateway may read the
    /// first, the upstream the last or both).
    pub fn single_header(&self, name: &HeaderName) -> Result<Option<&'a HeaderValue>, Repeated> {
        let mut values = self.headers.get_all(name).iter();
        let first = values.next();
        match values.next() {
            Some(_) => Err(Repeated),
            None => Ok(first),
        }
    }

    /// Whether query parameter `name` (as [`RequestView::query_param`] reads it) comes
    /// more than once, under any spelling of its name, counting `;` as a separator too
    /// ([`RequestView::query_param_values`]).
    pub fn is_query_param_repeated(&self, name: &str) -> bool {
        self.query_param_values(name).nth(1).is_some()
    }

    /// The raw values of every parameter named `name` ([`is_param_named`]), the query
    /// split at `;` as well as `&`: Rack 2 (Rails up to 7.0) and Python before 3.9.2 split
    /// so, and to them `x=1;apikey=K` holds an `apikey`. For finding every value an
    /// upstream may read, not for reading the one the gateway checks.
    pub fn query_param_values(&self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.query
            .into_iter()
            .flat_map(|q| q.split(['&', ';']))
            .filter_map(move |pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                is_param_named(k, name).then_some(v)
            })
    }
}

/// A header that must come once came more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("header repeated")]
pub struct Repeated;

/// The raw name of one `name=value` pair of a query string.
pub(crate) fn param_name(pair: &str) -> &str {
    pair.split_once('=').map_or(pair, |(name, _)| name)
}

/// Whether the raw parameter name `raw` is `name` as an upstream may read it:
/// percent-decoded (`api%6Bey`), `+` as a space, and ASCII case ignored (ASP.NET reads
/// names so). Comparing raw names only would let `apikey=K&api%6Bey=forged` pass as one
/// key (the gateway checks `K`, the upstream decodes both and may read the forged one),
/// and `hide_credentials` would let the encoded one through. A `%` not followed by two
/// hex digits is itself, as decoders take it.
pub(crate) fn is_param_named(raw: &str, name: &str) -> bool {
    if raw == name {
        return true;
    }
    let (raw, mut want) = (raw.as_bytes(), name.bytes());
    let mut i = 0;
    while i < raw.len() {
        let hex = |at: usize| raw.get(at).and_then(|b| (*b as char).to_digit(16));
        let byte = match (raw[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                i += 3;
                (high * 16 + low) as u8
            }
            (b'+', ..) => {
                i += 1;
                b' '
            }
            (b, ..) => {
                i += 1;
                b
            }
        };
        if !want.next().is_some_and(|w| w.eq_ignore_ascii_case(&byte)) {
            return false;
        }
    }
    want.next().is_none()
}

/// `query` without the parameters `is_removed` names (raw names); every other byte is
/// kept, `&` separators included. `None` when no parameter is removed (nothing to do, no
/// allocation); `Some("")` when none is left.
pub(crate) fn strip_query_params(query: &str, is_removed: impl Fn(&str) -> bool) -> Option<String> {
    if !query.split('&').any(|pair| is_removed(param_name(pair))) {
        return None;
    }
    let mut out = String::with_capacity(query.len());
    let mut first = true;
    for pair in query
        .split('&')
        .filter(|pair| !is_removed(param_name(pair)))
    {
        if !first {
            out.push('&');
        }
        first = false;
        out.push_str(pair);
    }
    Some(out)
}

/// What the chain learned about a request: who the consumer is, the rate-limit figures for
/// the response headers, the CORS origin to echo. Starts as `default()`; lives in the edge ctx.
#[derive(Debug, Default, Clone)]
pub struct RequestState {
    pub(crate) consumer: Option<Arc<Consumer>>,
    pub(crate) rate_limit: Option<RateLimitStatus>,
    pub(crate) cors_origin: Option<HeaderValue>,
}

impl RequestState {
    /// The consumer an auth policy identified, if any.
    pub fn consumer(&self) -> Option<&Consumer> {
        self.consumer.as_deref()
    }

    /// The identified consumer's id (for access logs and usage accounting).
    pub fn consumer_id(&self) -> Option<&str> {
        self.consumer.as_deref().map(Consumer::id)
    }

    /// The tightest limit counted for this request, for the `RateLimit-*` headers.
    pub fn rate_limit(&self) -> Option<RateLimitStatus> {
        self.rate_limit
    }

    /// Records a limit counted for this request (the tightest one makes the headers).
    pub fn record_limit(&mut self, status: RateLimitStatus) {
        self.rate_limit = Some(RateLimitStatus::tighter(self.rate_limit, status));
    }
}

/// Somewhere headers can be edited: `http::HeaderMap` here; the edge implements it for
/// Pingora's request and response headers (which keep their own case map).
pub trait HeaderSink {
    /// Replaces every value of `name` with `value`.
    fn set_header(&mut self, name: HeaderName, value: HeaderValue);
    /// Adds `value` after any existing values of `name`.
    fn append_header(&mut self, name: HeaderName, value: HeaderValue);
    /// Removes every value of `name`.
    fn remove_header(&mut self, name: &HeaderName);
    /// Removes every header whose name `matches` (each name is asked once).
    fn remove_matching(&mut self, matches: &dyn Fn(&HeaderName) -> bool);
}

/// A refusal's own headers (`Rejection::headers`).
impl HeaderSink for Vec<(HeaderName, HeaderValue)> {
    fn set_header(&mut self, name: HeaderName, value: HeaderValue) {
        self.retain(|(n, _)| *n != name);
        self.push((name, value));
    }

    fn append_header(&mut self, name: HeaderName, value: HeaderValue) {
        self.push((name, value));
    }

    fn remove_header(&mut self, name: &HeaderName) {
        self.retain(|(n, _)| n != name);
    }

    fn remove_matching(&mut self, matches: &dyn Fn(&HeaderName) -> bool) {
        self.retain(|(n, _)| !matches(n));
    }
}

impl HeaderSink for HeaderMap {
    fn set_header(&mut self, name: HeaderName, value: HeaderValue) {
        self.insert(name, value);
    }

    fn append_header(&mut self, name: HeaderName, value: HeaderValue) {
        self.append(name, value);
    }

    fn remove_header(&mut self, name: &HeaderName) {
        self.remove(name);
    }

    fn remove_matching(&mut self, matches: &dyn Fn(&HeaderName) -> bool) {
        // Usually nothing matches: look first, allocate only to remove.
        if !self.keys().any(matches) {
            return;
        }
        let names: Vec<HeaderName> = self.keys().filter(|n| matches(n)).cloned().collect();
        for name in names {
            self.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn finds_query_params_by_exact_name() {
        let headers = HeaderMap::new();
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let view = RequestView {
            method: &Method::GET,
            path: "/",
            query: Some("apikey2=x&apikey=abc&flag"),
            headers: &headers,
            client_ip: ip,
            peer_ip: ip,
        };
        assert_eq!(view.query_param("apikey"), Some("abc"));
        assert_eq!(view.query_param("flag"), Some(""));
        assert_eq!(view.query_param("missing"), None);
        assert!(!view.is_query_param_repeated("apikey"));
    }

    #[test]
    fn a_parameter_name_matches_however_an_upstream_decodes_it() {
        assert!(is_param_named("apikey", "apikey"));
        assert!(is_param_named("api%6Bey", "apikey"));
        assert!(is_param_named("%61%70%69%6b%65%79", "apikey"));
        assert!(is_param_named("APIKEY", "apikey"));
        assert!(is_param_named("api+key", "api key"));
        assert!(is_param_named("a%ZZ", "a%zz"));
        assert!(!is_param_named("apikey2", "apikey"));
        assert!(!is_param_named("api%6B", "apikey"));
        assert!(!is_param_named("api%6Beyy", "apikey"));
        assert!(!is_param_named("", "apikey"));
    }

    #[test]
    fn finds_repeated_query_params_and_headers() {
        let mut headers = HeaderMap::new();
        headers.append("x-api-key", HeaderValue::from_static("a"));
        headers.append("x-api-key", HeaderValue::from_static("b"));
        headers.append("x-one", HeaderValue::from_static("a"));
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let view = RequestView {
            method: &Method::GET,
            path: "/",
            query: Some("apikey=a&apikey2=b&apikey"),
            headers: &headers,
            client_ip: ip,
            peer_ip: ip,
        };
        assert!(view.is_query_param_repeated("apikey"));
        assert!(!view.is_query_param_repeated("apikey2"));
        let view = RequestView {
            query: Some("apikey=a&api%6Bey=b"),
            ..view
        };
        assert!(view.is_query_param_repeated("apikey"));
        let view = RequestView {
            query: Some("apikey=a&x=1;apikey=b"),
            ..view
        };
        assert!(view.is_query_param_repeated("apikey"));
        let view = RequestView {
            query: Some("apikey=a;b&x=1"),
            ..view
        };
        assert!(!view.is_query_param_repeated("apikey"));
        assert_eq!(
            view.single_header(&HeaderName::from_static("x-api-key")),
            Err(Repeated)
        );
        assert_eq!(
            view.single_header(&HeaderName::from_static("x-one")),
            Ok(Some(&HeaderValue::from_static("a")))
        );
        assert_eq!(
            view.single_header(&HeaderName::from_static("x-none")),
            Ok(None)
        );
    }

    #[test]
    fn strips_only_the_named_query_params_and_keeps_the_rest_byte_for_byte() {
        let key = |n: &str| n == "apikey";
        assert_eq!(strip_query_params("a=1&b=%2F+x", key), None);
        assert_eq!(
            strip_query_params("a=1&apikey=k&b=%2F+x&&c", key).as_deref(),
            Some("a=1&b=%2F+x&&c")
        );
        assert_eq!(
            strip_query_params("apikey=k&apikey2=z", key).as_deref(),
            Some("apikey2=z")
        );
        assert_eq!(strip_query_params("apikey", key).as_deref(), Some(""));
        assert_eq!(
            strip_query_params("&apikey=k&x", key).as_deref(),
            Some("&x")
        );
    }

    #[test]
    fn removes_headers_by_predicate() {
        let mut map = HeaderMap::new();
        map.append("x_user_id", HeaderValue::from_static("1"));
        map.append("x_user_id", HeaderValue::from_static("2"));
        map.append("x-user-id", HeaderValue::from_static("3"));
        map.remove_matching(&|n: &HeaderName| n.as_str().contains('_'));
        assert!(map.get("x_user_id").is_none());
        assert_eq!(map.get("x-user-id"), Some(&HeaderValue::from_static("3")));
    }
}
