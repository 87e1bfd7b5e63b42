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
/// `Host` that is not a plain host and port ([`is_plain_host`]; nginx refuses one with
/// `/`), an
/// HTTP/1.1 request without `Host` (RFC 9112 3.2), a `Content-Length` that is not one
/// plain number (two lines, or a list such as `5, 5`, which Pingora accepts when the
/// values agree), a header section over [`MAX_HEADER_BYTES`]. nginx refuses each of these
/// with 400 (431 for the size: nginx says 400 too). One pass over the header fields.
pub fn hostile(req: &RequestHeader, smuggled_length: bool) -> Option<Rejection> {
    let h: &HeaderMap = &req.headers;
    let uri = &req.uri;
    let uri_len = uri.scheme_str().map_or(0, |s| s.len() + 3)
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(1, |pq| pq.as_str().len());
    let mut size = uri_len + req.method.as_str().len() + 12;
    let (mut hosts, mut lengths, mut length_ok, mut host_ok) = (0usize, 0usize, true, true);
    for (name, value) in h.iter() {
        size += name.as_str().len() + value.len() + 4;
        if name == http::header::HOST {
            hosts += 1;
            host_ok &= is_plain_host(value.as_bytes());
        } else if name == http::header::CONTENT_LENGTH {
            lengths += 1;
            length_ok &= is_decimal(value.as_bytes());
        }
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
    if hosts > 1 {
        return Some(Rejection::bad_request("more than one host header"));
    }
    if !host_ok {
        return Some(Rejection::bad_request("invalid host header"));
    }
    // HTTP/2's `:authority` is the request's host as `Host` is HTTP/1.1's: the same rule,
    // and a `Host` beside it must name the same (RFC 9113 8.3.1).
    if let Some(authority) = uri.authority() {
        if !is_plain_host(authority.as_str().as_bytes()) {
            return Some(Rejection::bad_request("invalid host header"));
        }
        if let Some(host) = h.get(http::header::HOST) {
            if !host
                .as_bytes()
                .eq_ignore_ascii_case(authority.as_str().as_bytes())
            {
                return Some(Rejection::bad_request("host header and :authority differ"));
            }
        }
    }
    if hosts == 0 && req.version == http::Version::HTTP_11 {
        return Some(Rejection::bad_request(
            "http/1.1 request without host header",
        ));
    }
    if lengths > 1 || !length_ok {
        return Some(Rejection::bad_request("invalid content-length"));
    }
    None
}

/// The most header bytes a request to an HTTP/2 upstream may carry, counted as HTTP/2
/// counts them (RFC 9113 6.5.2: name, value and 32 per field, pseudo-headers included):
/// gRPC's default limit (grpc-go, grpcio). An upstream that gets more tears down the whole
/// connection, and with it every other client's calls on it, since Pingora shares one
/// connection among clients: such a request is refused here instead (431, gRPC
/// `RESOURCE_EXHAUSTED`).
pub const H2_UPSTREAM_MAX_HEADER_LIST: usize = 8192;

/// Room kept for the fields the gateway adds (`X-Forwarded-*`, `X-Request-Id`, `Via`).
const ADDED_FIELDS_ALLOWANCE: usize = 512;

/// Whether `req` may go to an HTTP/2 upstream ([`H2_UPSTREAM_MAX_HEADER_LIST`]).
pub fn fits_http2_upstream(req: &RequestHeader) -> bool {
    let uri = &req.uri;
    let pseudo = (":method".len() + req.method.as_str().len())
        + (":scheme".len() + uri.scheme_str().map_or(4, str::len))
        + (":authority".len() + uri.authority().map_or(0, |a| a.as_str().len()))
        + (":path".len() + uri.path_and_query().map_or(1, |pq| pq.as_str().len()))
        + 4 * 32;
    let fields: usize = req
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 32)
        .sum();
    pseudo + fields + ADDED_FIELDS_ALLOWANCE <= H2_UPSTREAM_MAX_HEADER_LIST
}

/// 431 for a request whose header is too big for an upstream speaking `protocol`
/// ([`H2_UPSTREAM_MAX_HEADER_LIST`]; HTTP/1.1 upstreams take what the client may send).
pub fn too_big_for_upstream(req: &RequestHeader, protocol: storage::Protocol) -> Option<Rejection> {
    (protocol != storage::Protocol::Http1 && !fits_http2_upstream(req))
        .then(Rejection::header_too_large)
}

/// Whether `value` is a host (with an optional `:port`) that the router and every
/// upstream read alike: empty, a name of `A-Z a-z 0-9 - . _ ~`, or an IP literal in
/// brackets (RFC 3986 3.2.2 without escapes and sub-delims). URL parsers end a host at
/// `/ ? # \`, and some at `,` or `@`, where the router would read on.
pub(crate) fn is_plain_host(value: &[u8]) -> bool {
    let (name, port) = if value.first() == Some(&b'[') {
        let Some(end) = value.iter().position(|b| *b == b']') else {
            return false;
        };
        let literal = &value[1..end];
        if literal.is_empty()
            || !literal
                .iter()
                .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'))
        {
            return false;
        }
        (&value[..0], &value[end + 1..])
    } else {
        let colon = value.iter().position(|b| *b == b':').unwrap_or(value.len());
        value.split_at(colon)
    };
    name.iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        && port
            .split_first()
            .is_none_or(|(colon, digits)| *colon == b':' && digits.iter().all(u8::is_ascii_digit))
}

/// Whether `value` is a `Content-Length` of one number: 1*DIGIT (RFC 9110 8.6).
pub(crate) fn is_decimal(value: &[u8]) -> bool {
    !value.is_empty() && value.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use http::Version;

    use super::*;

    fn req(version: Version, headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("POST", b"/x", None).expect("req");
        r.set_version(version);
        for (n, v) in headers {
            r.append_header(n.to_string(), *v).expect("hdr");
        }
        r
    }

    fn status(r: Option<Rejection>) -> Option<u16> {
        r.map(|r| r.status.as_u16())
    }

    #[test]
    fn refuses_http11_without_host_but_not_http10() {
        assert_eq!(
            status(hostile(&req(Version::HTTP_11, &[]), false)),
            Some(400)
        );
        assert_eq!(status(hostile(&req(Version::HTTP_10, &[]), false)), None);
        assert_eq!(status(hostile(&req(Version::HTTP_2, &[]), false)), None);
        let with_host = req(Version::HTTP_11, &[("host", "a")]);
        assert_eq!(status(hostile(&with_host, false)), None);
    }

    /// An HTTP/2 request as Pingora builds it: the `:authority` in the URI.
    fn h2(authority: &str, headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = req(Version::HTTP_2, headers);
        r.set_uri(
            http::Uri::builder()
                .scheme("http")
                .authority(authority)
                .path_and_query("/x")
                .build()
                .expect("uri"),
        );
        r
    }

    #[test]
    fn counts_header_bytes_as_http2_does() {
        assert!(fits_http2_upstream(&req(
            Version::HTTP_2,
            &[("x-small", "1")]
        )));
        let big = "v".repeat(H2_UPSTREAM_MAX_HEADER_LIST);
        assert!(!fits_http2_upstream(&req(
            Version::HTTP_2,
            &[("x-big", &big)]
        )));
        // Many small fields count their 32 bytes each.
        let many: Vec<(String, String)> =
            (0..250).map(|i| (format!("x-{i}"), "1".into())).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert!(!fits_http2_upstream(&req(Version::HTTP_2, &many)));
    }

    #[test]
    fn holds_http2_authority_to_the_host_rules() {
        assert_eq!(status(hostile(&h2("a.example:8080", &[]), false)), None);
        for bad in ["u@a.example", "a.example:abc", "a_b!c"] {
            assert_eq!(status(hostile(&h2(bad, &[]), false)), Some(400), "{bad}");
        }
        let same = h2("a.example", &[("host", "A.example")]);
        assert_eq!(status(hostile(&same, false)), None);
        let other = h2("a.example", &[("host", "b.example")]);
        assert_eq!(status(hostile(&other, false)), Some(400));
    }

    #[test]
    fn refuses_a_host_that_is_not_a_plain_host_and_port() {
        for host in [
            "a.example/x",
            "a.example?",
            "a.example#",
            "a.example\\x",
            "a.example, b",
            "u@a.example",
            "a.example:80:80",
            "a.example:8x",
            "[::1",
            "[]",
            "[::1]x",
            "[v1.x]",
            "a%2eexample",
        ] {
            let r = hostile(&req(Version::HTTP_11, &[("host", host)]), false);
            assert_eq!(status(r), Some(400), "{host}");
        }
        for host in [
            "a.example",
            "A_b-c~d.example.",
            "a:8080",
            "a:",
            "[::1]:80",
            "[::1]",
            "",
        ] {
            let r = hostile(&req(Version::HTTP_11, &[("host", host)]), false);
            assert_eq!(status(r), None, "{host}");
        }
    }

    #[test]
    fn refuses_content_length_lists_and_repeats() {
        for headers in [
            &[("host", "a"), ("content-length", "5, 5")][..],
            &[
                ("host", "a"),
                ("content-length", "5"),
                ("content-length", "5"),
            ],
            &[("host", "a"), ("content-length", "+5")],
            &[("host", "a"), ("content-length", "")],
        ] {
            let r = hostile(&req(Version::HTTP_11, headers), false);
            assert_eq!(status(r), Some(400), "{headers:?}");
        }
        let one = req(Version::HTTP_11, &[("host", "a"), ("content-length", "05")]);
        assert_eq!(status(hostile(&one, false)), None);
    }
}
