use super::*;
use crate::framing::{has_header_line, MAX_HEADER_BYTES};

/// An HTTP/1.1 request with `headers` (and `Host: a` unless they name a host).
fn req(headers: &[(&str, &str)]) -> RequestHeader {
    let mut r = RequestHeader::build("POST", b"/x", None).expect("req");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        r.append_header("host", "a").expect("hdr");
    }
    for (n, v) in headers {
        r.append_header(n.to_string(), *v).expect("hdr");
    }
    r
}

#[test]
fn refuses_content_length_with_transfer_encoding() {
    let r = hostile(
        &req(&[("content-length", "3"), ("transfer-encoding", "chunked")]),
        false,
    );
    assert_eq!(r.map(|r| r.status.as_u16()), Some(400));
}

#[test]
fn refuses_transfer_codings_other_than_chunked() {
    for te in ["gzip, chunked", "chunked, identity", "xchunked"] {
        let r = hostile(&req(&[("transfer-encoding", te)]), false);
        assert_eq!(r.map(|r| r.status.as_u16()), Some(400), "{te}");
    }
    assert!(hostile(&req(&[("transfer-encoding", "Chunked")]), false).is_none());
    let r = hostile(&req(&[("transfer-encoding", "chunked")]), true);
    assert_eq!(r.map(|r| r.status.as_u16()), Some(400));
}

#[test]
fn refuses_two_host_headers() {
    let r = hostile(&req(&[("host", "a"), ("host", "b")]), false);
    assert_eq!(r.map(|r| r.status.as_u16()), Some(400));
}

#[test]
fn refuses_oversized_headers_with_431() {
    let big = "a".repeat(MAX_HEADER_BYTES);
    let r = hostile(&req(&[("x-big", big.as_str())]), false);
    assert_eq!(r.map(|r| r.status.as_u16()), Some(431));
}

#[test]
fn finds_content_length_lines_in_raw_headers() {
    let raw =
        b"POST / HTTP/1.1\r\nHost: a\r\ncontent-LENGTH : 3\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert!(has_header_line(raw, b"content-length"));
    assert!(!has_header_line(
        b"POST / HTTP/1.1\r\nX-Content-Length: 3\r\n\r\n",
        b"content-length"
    ));
    assert!(!has_header_line(
        b"GET /content-length: HTTP/1.1\r\n\r\n",
        b"content-length"
    ));
}

#[test]
fn only_safe_methods_are_idempotent() {
    assert!(is_idempotent(&Method::GET) && is_idempotent(&Method::PUT));
    assert!(!is_idempotent(&Method::POST) && !is_idempotent(&Method::PATCH));
}

#[test]
fn answers_end_at_their_header_only_when_http_says_so() {
    let get = RequestHeader::build("GET", b"/", None).expect("request");
    let head = RequestHeader::build("HEAD", b"/", None).expect("request");
    let answer = |status: u16, length: Option<&str>| {
        let mut resp = ResponseHeader::build(status, None).expect("response");
        if let Some(length) = length {
            resp.insert_header("content-length", length)
                .expect("header");
        }
        resp
    };
    assert!(has_no_body(&head, &answer(200, Some("5"))));
    assert!(has_no_body(&get, &answer(204, None)));
    assert!(has_no_body(&get, &answer(304, None)));
    assert!(has_no_body(&get, &answer(200, Some("0"))));
    assert!(!has_no_body(&get, &answer(200, Some("5"))));
    assert!(!has_no_body(&get, &answer(200, None)), "read until close");
    assert!(
        !has_no_body(&get, &answer(100, None)),
        "the final answer is to come"
    );
}
