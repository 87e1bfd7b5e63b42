//! What a policy hook answers: go on, or answer the client now.

use std::borrow::Cow;

use http::{HeaderName, HeaderValue, StatusCode};

/// `RateLimit-Limit`: the requests the client may make at once (burst capacity or quota).
pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`: requests left before the limit is hit.
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`: seconds until the limit is fully available again.
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// The outcome of a policy hook.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Go on to the next policy (and finally to the upstream).
    Continue,
    /// Answer the client with this, and do not reach the upstream.
    Respond(Rejection),
}

impl Verdict {
    pub fn is_continue(&self) -> bool {
        matches!(self, Self::Continue)
    }
}

/// An answer the gateway gives itself. The edge renders it: for a status >= 400 the body is
/// `{"error": message, "request_id": ...}`; below 400 (a CORS preflight's 204) no body.
/// `headers` go on the response as they are (Retry-After, RateLimit-*, CORS headers).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub status: StatusCode,
    /// Short, lowercase, safe to show the client; never holds a credential.
    pub message: Cow<'static, str>,
    /// The policy `type` that answered (`key_auth`, `rate_limit`, …), for metrics labels.
    pub policy: &'static str,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Rejection {
    pub fn new(status: StatusCode, policy: &'static str, message: &'static str) -> Self {
        Self {
            status,
            message: Cow::Borrowed(message),
            policy,
            headers: Vec::new(),
        }
    }

    /// 400: the request is ambiguous or malformed for this policy (a repeated credential).
    pub fn bad_request(policy: &'static str, message: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, policy, message)
    }

    /// 401: no credential, or one that is not valid.
    pub fn unauthorized(policy: &'static str, message: &'static str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, policy, message)
    }

    /// 403: the caller is known (or its address is) and may not do this.
    pub fn forbidden(policy: &'static str, message: &'static str) -> Self {
        Self::new(StatusCode::FORBIDDEN, policy, message)
    }

    /// 413: the body is larger than the route accepts.
    pub fn payload_too_large(policy: &'static str) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            policy,
            "request body too large",
        )
    }

    /// 429 with `Retry-After` (whole seconds, at least 1) and the `RateLimit-*` headers.
    pub fn too_many_requests(
        policy: &'static str,
        status: RateLimitStatus,
        retry_after_secs: u64,
    ) -> Self {
        let mut r = Self::new(StatusCode::TOO_MANY_REQUESTS, policy, "rate limit exceeded");
        if policy == "quota" {
            r.message = Cow::Borrowed("quota exceeded");
        }
        r.headers.reserve(4);
        r.headers.push((
            http::header::RETRY_AFTER,
            HeaderValue::from(retry_after_secs.max(1)),
        ));
        r.headers.extend(status.headers());
        r
    }

    /// Whether the edge renders a JSON error body for this answer.
    pub fn has_body(&self) -> bool {
        self.status.as_u16() >= 400
    }

    /// The value of header `name` in this answer, if set.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|(n, _)| n.as_str().eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// The state of a limit after a request was counted, for the `RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitStatus {
    pub limit: u64,
    pub remaining: u64,
    /// Whole seconds (rounded up) until the limit is fully available again.
    pub reset_secs: u64,
}

impl RateLimitStatus {
    /// The three `RateLimit-*` headers.
    pub fn headers(self) -> [(HeaderName, HeaderValue); 3] {
        [
            (RATELIMIT_LIMIT, HeaderValue::from(self.limit)),
            (RATELIMIT_REMAINING, HeaderValue::from(self.remaining)),
            (RATELIMIT_RESET, HeaderValue::from(self.reset_secs)),
        ]
    }

    /// The tighter of two statuses: the one with fewer requests remaining.
    pub fn tighter(a: Option<Self>, b: Self) -> Self {
        match a {
            Some(a) if a.remaining <= b.remaining => a,
            _ => b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_many_requests_carries_retry_after_and_ratelimit_headers() {
        let status = RateLimitStatus {
            limit: 10,
            remaining: 0,
            reset_secs: 7,
        };
        let r = Rejection::too_many_requests("rate_limit", status, 0);
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.header("retry-after"), Some(&HeaderValue::from(1u64)));
        assert_eq!(r.header("RateLimit-Limit"), Some(&HeaderValue::from(10u64)));
        assert_eq!(
            r.header("ratelimit-remaining"),
            Some(&HeaderValue::from(0u64))
        );
        assert_eq!(r.header("ratelimit-reset"), Some(&HeaderValue::from(7u64)));
        assert!(r.has_body());
    }

    #[test]
    fn tighter_prefers_fewer_remaining() {
        let a = RateLimitStatus {
            limit: 10,
            remaining: 3,
            reset_secs: 1,
        };
        let b = RateLimitStatus {
            limit: 100,
            remaining: 50,
            reset_secs: 9,
        };
        assert_eq!(RateLimitStatus::tighter(Some(a), b), a);
        assert_eq!(RateLimitStatus::tighter(Some(b), a), a);
        assert_eq!(RateLimitStatus::tighter(None, b), b);
    }
}
