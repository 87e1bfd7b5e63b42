//! Header edits on the way through, without Pingora's case-preserving name map.
//!
//! Pingora keeps, beside each `http::HeaderMap`, a second map with every header name as
//! received; each insert through `RequestHeader::insert_header` parses the name again,
//! allocates it (twice for a name `http` does not know) and inserts into both maps, and the
//! first insert into a map cloned at capacity rehashes both. That was most of what the
//! gateway's own headers (`X-Forwarded-*`, `x-request-id`, policy headers) cost per
//! request. The gateway edits the plain map instead, with names parsed once (constants and
//! names compiled into the route's policies), and forwards header names in canonical form:
//! lower case, except the well-known names Pingora writes in title case (`Host`,
//! `Content-Type`, ...). Header names are case-insensitive (RFC 9110 5.1); HTTP/2 sends
//! them in lower case, and Envoy forwards HTTP/1 that way too.

use http::{HeaderMap, Version};
use pingora_http::{RequestHeader, ResponseHeader};

/// Runs `edit` on the headers of `req` with room for `additional` more. The request target
/// (absolute-form or not UTF-8 included) and HTTP/2's end-of-stream flag are kept.
pub fn edit_request<R>(
    req: &mut RequestHeader,
    additional: usize,
    edit: impl FnOnce(&mut HeaderMap) -> R,
) -> R {
    let from_uri = req
        .uri
        .path_and_query()
        .is_some_and(|pq| pq.as_str().as_bytes() == req.raw_path());
    // Only a target the URI does not reproduce is copied (rare: absolute-form, non-UTF-8).
    let raw = (!from_uri).then(|| req.raw_path().to_vec());
    let end_stream = req.send_end_stream();
    let empty = RequestHeader::from(http::Request::new(()).into_parts().0);
    let mut parts = http::request::Parts::from(std::mem::replace(req, empty));
    parts.headers.reserve(additional);
    let out = edit(&mut parts.headers);
    *req = RequestHeader::from(parts);
    if let Some(raw) = raw {
        // The bytes were accepted as this request's target already.
        let _ = req.set_raw_path(&raw);
    }
    if req.version == Version::HTTP_2 {
        if let Some(end) = end_stream {
            req.set_send_end_stream(end);
        }
    }
    out
}

/// Runs `edit` on the headers of `resp` with room for `additional` more; a reason phrase
/// other than the status's standard one is kept.
pub fn edit_response<R>(
    resp: &mut ResponseHeader,
    additional: usize,
    edit: impl FnOnce(&mut HeaderMap) -> R,
) -> R {
    let reason = resp
        .get_reason_phrase()
        .filter(|r| Some(*r) != resp.status.canonical_reason())
        .map(str::to_owned);
    let empty = ResponseHeader::from(http::Response::new(()).into_parts().0);
    let mut parts = http::response::Parts::from(std::mem::replace(resp, empty));
    parts.headers.reserve(additional);
    let out = edit(&mut parts.headers);
    *resp = ResponseHeader::from(parts);
    if let Some(reason) = reason {
        // It was accepted from the upstream already.
        let _ = resp.set_reason_phrase(Some(&reason));
    }
    out
}

#[cfg(test)]
mod tests {
    use http::{HeaderName, HeaderValue};

    use super::*;

    const X_ONE: HeaderName = HeaderName::from_static("x-one");

    fn wire(req: &RequestHeader) -> String {
        let mut buf = Vec::new();
        req.header_to_h1_wire(&mut buf);
        String::from_utf8(buf).expect("utf8")
    }

    #[test]
    fn edits_keep_every_header_and_write_names_canonical() {
        let mut req = RequestHeader::build("GET", b"/a?b=1", None).expect("req");
        req.insert_header("X-Custom-Thing", "1").expect("hdr");
        req.insert_header("Host", "example.com").expect("hdr");
        req.append_header("Accept", "a").expect("hdr");
        req.append_header("Accept", "b").expect("hdr");
        edit_request(&mut req, 1, |h| {
            h.insert(X_ONE, HeaderValue::from_static("v"));
        });
        let wire = wire(&req);
        assert!(wire.contains("x-custom-thing: 1\r\n"), "{wire}");
        assert!(wire.contains("Host: example.com\r\n"), "{wire}");
        assert!(wire.contains("accept: a\r\naccept: b\r\n"), "{wire}");
        assert!(wire.contains("x-one: v\r\n"), "{wire}");
        assert_eq!(req.raw_path(), b"/a?b=1");
        // Pingora's own inserts still work on the result.
        req.insert_header("X-Two", "2").expect("insert after edit");
        assert_eq!(req.headers.get("x-two").expect("x-two"), "2");
    }

    #[test]
    fn a_target_the_uri_does_not_reproduce_is_kept() {
        let mut req = RequestHeader::build("GET", b"http://example.com/a?b", None).expect("req");
        let before = req.raw_path().to_vec();
        edit_request(&mut req, 0, |_| ());
        assert_eq!(req.raw_path(), &before[..]);
        let mut req = RequestHeader::build("GET", b"/caf\xe9", None).expect("req");
        edit_request(&mut req, 0, |_| ());
        assert_eq!(req.raw_path(), b"/caf\xe9");
        assert!(!req.raw_path_is_utf8());
    }

    #[test]
    fn http2_end_of_stream_flag_is_kept() {
        let mut req = RequestHeader::build("POST", b"/", None).expect("req");
        req.set_version(Version::HTTP_2);
        req.set_send_end_stream(false);
        edit_request(&mut req, 0, |_| ());
        assert_eq!(req.send_end_stream(), Some(false));
    }

    #[test]
    fn response_edits_keep_status_headers_and_a_custom_reason() {
        let mut resp = ResponseHeader::build(299, None).expect("resp");
        resp.insert_header("X-Upstream", "u").expect("hdr");
        resp.set_reason_phrase(Some("Fine Indeed")).expect("reason");
        edit_response(&mut resp, 1, |h| {
            h.insert(X_ONE, HeaderValue::from_static("v"));
        });
        assert_eq!(resp.status.as_u16(), 299);
        assert_eq!(resp.get_reason_phrase(), Some("Fine Indeed"));
        assert_eq!(resp.headers.get("x-upstream").expect("kept"), "u");
        assert_eq!(resp.headers.get("x-one").expect("added"), "v");

        let mut ok = ResponseHeader::build(200, None).expect("resp");
        edit_response(&mut ok, 0, |_| ());
        assert_eq!(ok.get_reason_phrase(), Some("OK"));
    }
}
