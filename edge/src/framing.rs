//! Request framing checks the proxy makes before routing: what Pingora lets through but a
//! gateway must refuse (request smuggling shapes, oversized header sections), and whether a
//! request announces a body.

use http::HeaderMap;
use pingora_http::RequestHeader;
use pingora_proxy::Session;

use crate::respond::Rejection;

/// Largest request header section (request line and headers) accepted; larger is 431.
/// Pingora's own limit is 1 MiB.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Whether the request announces a body.
pub(crate) fn has_body(req: &RequestHeader) -> bool {
    req.headers.contains_key(http::header::TRANSFER_ENCODING)
        || req
            .headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// Pingora drops `Content-Length` when `Transfer-Encoding` is present (and closes the
/// connection afterwards); the raw header shows whether the client sent both.
pub(crate) fn raw_has_content_length(session: &Session) -> bool {
    match session.as_downstream() {
        pingora_core::protocols::http::ServerSession::H1(s) => {
            has_header_line(&s.get_headers_raw_bytes(), b"content-length")
        }
        _ => false,
    }
}

/// Whether a raw HTTP/1 header section has a line for header `name` (lower-case).
pub fn has_header_line(raw: &[u8], name: &[u8]) -> bool {
    raw.split(|b| *b == b'\n').skip(1).any(|line| {
        line.len() > name.len()
            && line[..name.len()].eq_ignore_ascii_case(name)
            && line[name.len()..]
                .iter()
                .find(|b| **b != b' ' && **b != b'\t')
                == Some(&b':')
    })
}

/// What Pingora lets through but a gateway must refuse: both `Content-Length` and
/// `Transfer-Encoding` (`smuggled_length`: the raw header had a `Content-Length` that
/// Pingora removed), a transfer coding other than `chunked`, several `Host` headers, a
/// header section over [`MAX_HEADER_BYTES`].
pub fn hostile(req: &RequestHeader, smuggled_length: bool) -> Option<Rejection> {
    let h: &HeaderMap = &req.headers;
    let uri = &req.uri;
    let uri_len = uri.scheme_str().map_or(0, |s| s.len() + 3)
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(1, |pq| pq.as_str().len());
    let mut size = uri_len + req.method.as_str().len() + 12;
    for (name, value) in h.iter() {
        size += name.as_str().len() + value.len() + 4;
    }
    if size > MAX_HEADER_BYTES {
        return Some(Rejection::header_too_large());
    }
    let te: Vec<_> = h.get_all(http::header::TRANSFER_ENCODING).iter().collect();
    if !te.is_empty() {
        if smuggled_length || h.contains_key(http::header::CONTENT_LENGTH) {
            return Some(Rejection::bad_request(
                "both content-length and transfer-encoding",
            ));
        }
        let only_chunked = te.len() == 1
            && te[0]
                .to_str()
                .is_ok_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
        if !only_chunked {
            return Some(Rejection::bad_request("unsupported transfer-encoding"));
        }
    }
    if h.get_all(http::header::HOST).iter().count() > 1 {
        return Some(Rejection::bad_request("more than one host header"));
    }
    None
}
