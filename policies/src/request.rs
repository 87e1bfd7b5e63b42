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

    /// The raw value of query parameter `name` (not percent-decoded), if present.
    pub fn query_param(&self, name: &str) -> Option<&'a str> {
        self.query?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
    }
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

    pub(crate) fn record_limit(&mut self, status: RateLimitStatus) {
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
    }
}
