//! The one place that turns a refusal, a policy's answer or a proxy failure into an HTTP
//! response. Every error body is JSON `{"error": "...", "request_id": "..."}` and carries
//! `x-request-id`; an answer below 400 (an allowed CORS preflight's 204) has no body.

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use pingora_core::{Error, ErrorSource, ErrorType};
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

use crate::{grpc, request_id};

/// A response the gateway writes itself instead of proxying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: StatusCode,
    pub message: Cow<'static, str>,
    /// Seconds, sent as `Retry-After`.
    pub retry_after: Option<u64>,
    /// Further headers, sent as they are (a policy's `Retry-After`, `RateLimit-*`, CORS).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Rejection {
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Rejection {
        Rejection {
            status,
            message: message.into(),
            retry_after: None,
            headers: Vec::new(),
        }
    }

    /// A policy's answer (its message and headers; no credential is ever in them).
    pub fn from_policy(r: policies::Rejection) -> Rejection {
        Rejection {
            status: r.status,
            message: r.message,
            retry_after: None,
            headers: r.headers,
        }
    }

    /// Whether the response has a JSON error body (status >= 400).
    pub fn has_body(&self) -> bool {
        self.status.as_u16() >= 400
    }
    /// 404: no route matches the request.
    pub fn no_route() -> Rejection {
        Rejection::new(StatusCode::NOT_FOUND, "no route matches the request")
    }
    /// 503: the route's upstream has no healthy target left to try.
    pub fn no_healthy_target() -> Rejection {
        Rejection::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no healthy upstream target",
        )
    }
    /// 502: the upstream refused, reset or answered garbage.
    pub fn bad_gateway() -> Rejection {
        Rejection::new(StatusCode::BAD_GATEWAY, "upstream connection failed")
    }
    /// 504: the upstream did not connect or answer in time.
    pub fn gateway_timeout() -> Rejection {
        Rejection::new(StatusCode::GATEWAY_TIMEOUT, "upstream timed out")
    }
    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Rejection {
        Rejection::new(StatusCode::BAD_REQUEST, message)
    }
    /// 431: the request header section is too large.
    pub fn header_too_large() -> Rejection {
        Rejection::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request header fields too large",
        )
    }
    /// 429 with `Retry-After`.
    pub fn too_many_requests(retry_after: u64) -> Rejection {
        Rejection {
            retry_after: Some(retry_after),
            ..Rejection::new(StatusCode::TOO_MANY_REQUESTS, "too many requests")
        }
    }
    /// 500: a fault of the gateway itself.
    pub fn internal() -> Rejection {
        Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }

    /// Maps a Pingora error to the response the client gets; `None` when the client is
    /// gone (nothing can be written).
    pub fn from_error(e: &Error) -> Option<Rejection> {
        use ErrorType::*;
        if let HTTPStatus(code) = e.etype() {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::BAD_GATEWAY);
            return Some(match status {
                StatusCode::SERVICE_UNAVAILABLE => Rejection::no_healthy_target(),
                StatusCode::NOT_FOUND => Rejection::no_route(),
                StatusCode::GATEWAY_TIMEOUT => Rejection::gateway_timeout(),
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => Rejection::header_too_large(),
                s => Rejection::new(s, s.canonical_reason().unwrap_or("error")),
            });
        }
        match e.esource() {
            ErrorSource::Upstream => Some(match e.etype() {
                ConnectTimedout | ReadTimedout | WriteTimedout | TLSHandshakeTimedout => {
                    Rejection::gateway_timeout()
                }
                _ => Rejection::bad_gateway(),
            }),
            ErrorSource::Downstream => match e.etype() {
                WriteError | ReadError | ConnectionClosed | ReadTimedout | WriteTimedout => None,
                _ => Some(Rejection::bad_request("malformed request")),
            },
            ErrorSource::Internal | ErrorSource::Unset => Some(Rejection::internal()),
        }
    }

    /// The JSON body.
    pub fn body(&self, request_id: &str) -> Bytes {
        let body = serde_json::json!({"error": self.message, "request_id": request_id});
        Bytes::from(body.to_string())
    }

    /// The response header for a body of `len` bytes (no body headers below 400).
    pub fn header(&self, request_id: &str, len: usize) -> pingora_core::Result<ResponseHeader> {
        let mut h = ResponseHeader::build(self.status, Some(4 + self.headers.len()))?;
        if self.has_body() {
            h.insert_header(http::header::CONTENT_TYPE, "application/json")?;
            h.insert_header(http::header::CONTENT_LENGTH, len.to_string())?;
        }
        self.common_headers(&mut h, request_id)?;
        Ok(h)
    }

    /// The header of the answer to a gRPC call (`grpc.rs`): HTTP 200, `x-request-id`, and
    /// this rejection's own headers (`Retry-After`, `RateLimit-*`); with the gRPC status
    /// and message when `with_status` (a trailers-only answer).
    pub fn grpc_header(
        &self,
        request_id: &str,
        flavour: grpc::Flavour,
        with_status: bool,
    ) -> pingora_core::Result<ResponseHeader> {
        let mut h = ResponseHeader::build(StatusCode::OK, Some(5 + self.headers.len()))?;
        h.insert_header(http::header::CONTENT_TYPE, flavour.content_type())?;
        if with_status {
            for (name, value) in self.grpc_status() {
                h.insert_header(name, value)?;
            }
            // Trailers-only: no body. Said, so that an HTTP/1.1 connection stays open for
            // the next call instead of ending the answer by closing.
            h.insert_header(http::header::CONTENT_LENGTH, "0")?;
        }
        self.common_headers(&mut h, request_id)?;
        Ok(h)
    }

    /// `x-request-id`, `Retry-After` and the rejection's own headers, on every answer.
    fn common_headers(&self, h: &mut ResponseHeader, request_id: &str) -> pingora_core::Result<()> {
        h.insert_header(request_id::HEADER, request_id)?;
        if let Some(secs) = self.retry_after {
            h.insert_header(http::header::RETRY_AFTER, secs.to_string())?;
        }
        for (name, value) in &self.headers {
            h.append_header(name, value.clone())?;
        }
        Ok(())
    }

    /// `grpc-status` and `grpc-message` of this refusal.
    fn grpc_status(&self) -> [(HeaderName, HeaderValue); 2] {
        let message = HeaderValue::from_str(&grpc::encode_message(&self.message))
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        [
            (
                grpc::GRPC_STATUS,
                HeaderValue::from(grpc::code(self.status)),
            ),
            (grpc::GRPC_MESSAGE, message),
        ]
    }

    /// Writes this rejection as the whole response: to a gRPC call a refusal (status >=
    /// 400) goes as a gRPC status, whose code is returned. `Err` means the client is gone.
    pub async fn send(
        &self,
        session: &mut Session,
        request_id: &str,
    ) -> pingora_core::Result<Option<u16>> {
        if !self.has_body() {
            let header = self.header(request_id, 0)?;
            session
                .write_response_header(Box::new(header), true)
                .await?;
            return Ok(None);
        }
        if let Some(flavour) = grpc::flavour(session.req_header()) {
            if session.as_http2().is_some() && flavour == grpc::Flavour::Grpc {
                // Pingora ends an HTTP/2 answer with a DATA frame after its HEADERS, which
                // gRPC clients read as a stream cut short: the status goes as trailers.
                // Not for gRPC-Web: browsers never see HTTP/2 trailers, so its status
                // stays in the header (trailers-only) over HTTP/2 too.
                let header = self.grpc_header(request_id, flavour, false)?;
                session
                    .write_response_header(Box::new(header), false)
                    .await?;
                session
                    .write_response_trailers(self.grpc_status().into_iter().collect())
                    .await?;
            } else {
                // gRPC-Web (or gRPC over HTTP/1.1): a trailers-only answer, all in the
                // header.
                let header = self.grpc_header(request_id, flavour, true)?;
                session
                    .write_response_header(Box::new(header), true)
                    .await?;
            }
            return Ok(Some(grpc::code(self.status)));
        }
        let body = self.body(request_id);
        let header = self.header(request_id, body.len())?;
        session
            .write_response_header(Box::new(header), false)
            .await?;
        session.write_response_body(Some(body), true).await?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(etype: ErrorType) -> Box<Error> {
        let mut e = Error::new(etype);
        e.as_up();
        e
    }

    #[test]
    fn maps_upstream_timeouts_to_504() {
        for t in [ErrorType::ConnectTimedout, ErrorType::ReadTimedout] {
            let r = Rejection::from_error(&upstream(t)).expect("a response");
            assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
        }
    }

    #[test]
    fn maps_refused_and_reset_to_502() {
        for t in [
            ErrorType::ConnectRefused,
            ErrorType::ConnectionClosed,
            ErrorType::ReadError,
        ] {
            let r = Rejection::from_error(&upstream(t)).expect("a response");
            assert_eq!(r.status, StatusCode::BAD_GATEWAY);
        }
    }

    #[test]
    fn maps_explicit_503_to_no_healthy_target() {
        let e = Error::new(ErrorType::HTTPStatus(503));
        assert_eq!(
            Rejection::from_error(&e),
            Some(Rejection::no_healthy_target())
        );
    }

    #[test]
    fn writes_nothing_when_the_client_is_gone() {
        let mut e = Error::new(ErrorType::ConnectionClosed);
        e.as_down();
        assert_eq!(Rejection::from_error(&e), None);
    }

    #[test]
    fn body_is_json_with_error_and_request_id() {
        let body = Rejection::no_route().body("r-1");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["error"], "no route matches the request");
        assert_eq!(v["request_id"], "r-1");
    }

    #[test]
    fn policy_answers_keep_their_headers_and_preflights_have_no_body_headers() {
        let status = policies::RateLimitStatus {
            limit: 5,
            remaining: 0,
            reset_secs: 3,
        };
        let r = Rejection::from_policy(policies::Rejection::too_many_requests("quota", status, 3));
        let h = r.header("r-3", 10).expect("header");
        assert_eq!(h.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            h.headers.get("retry-after").map(|v| v.as_bytes()),
            Some(&b"3"[..])
        );
        assert_eq!(
            h.headers.get("ratelimit-limit").map(|v| v.as_bytes()),
            Some(&b"5"[..])
        );
        assert!(h.headers.contains_key("content-length"));

        let mut preflight = policies::Rejection::new(StatusCode::NO_CONTENT, "cors", "");
        preflight.headers.push((
            http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("https://app.example"),
        ));
        let r = Rejection::from_policy(preflight);
        assert!(!r.has_body());
        let h = r.header("r-4", 0).expect("header");
        assert_eq!(h.status, StatusCode::NO_CONTENT);
        assert!(!h.headers.contains_key("content-length"));
        assert!(!h.headers.contains_key("content-type"));
        assert_eq!(
            h.headers
                .get("access-control-allow-origin")
                .map(|v| v.as_bytes()),
            Some(&b"https://app.example"[..])
        );
    }

    #[test]
    fn header_carries_retry_after_and_request_id() {
        let h = Rejection::too_many_requests(7)
            .header("r-2", 10)
            .expect("header");
        assert_eq!(h.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            h.headers.get("retry-after").map(|v| v.as_bytes()),
            Some(&b"7"[..])
        );
        assert_eq!(
            h.headers.get("x-request-id").map(|v| v.as_bytes()),
            Some(&b"r-2"[..])
        );
    }
}
