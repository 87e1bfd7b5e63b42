use http::HeaderValue;

use super::*;

fn headers(fields: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in fields {
        h.append(*n, HeaderValue::from_static(v));
    }
    h
}

/// The field names, sorted (removal does not keep the map's order).
fn names(h: &HeaderMap) -> Vec<&str> {
    let mut names: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
    names.sort_unstable();
    names
}

#[test]
fn removes_hop_by_hop_fields_and_the_names_connection_lists() {
    let mut h = headers(&[
        ("content-length", "2"),
        ("connection", "x-private, keep-alive"),
        ("connection", "content-length"),
        ("x-private", "secret"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("te", "trailers"),
        ("trailer", "x-sum"),
        ("upgrade", "h2c"),
        ("x-kept", "yes"),
    ]);
    let close = clean(&mut h, StatusCode::OK, Version::HTTP_11).expect("clean");
    assert!(!close);
    assert_eq!(names(&h), ["content-length", "x-kept"]);
}

#[test]
fn a_101_keeps_connection_and_upgrade() {
    let mut h = headers(&[
        ("connection", "upgrade"),
        ("upgrade", "websocket"),
        ("keep-alive", "timeout=5"),
    ]);
    clean(&mut h, StatusCode::SWITCHING_PROTOCOLS, Version::HTTP_11).expect("clean");
    assert_eq!(names(&h), ["connection", "upgrade"]);
}

#[test]
fn an_http10_client_gets_no_chunked_coding() {
    let fields = [("transfer-encoding", "chunked"), ("x-kept", "yes")];
    let mut h = headers(&fields);
    assert_eq!(clean(&mut h, StatusCode::OK, Version::HTTP_10), Ok(true));
    assert_eq!(names(&h), ["x-kept"]);
    let mut h = headers(&fields);
    assert_eq!(clean(&mut h, StatusCode::OK, Version::HTTP_11), Ok(false));
    assert_eq!(names(&h), ["transfer-encoding", "x-kept"]);
    let mut h = headers(&[("content-length", "5")]);
    assert_eq!(clean(&mut h, StatusCode::OK, Version::HTTP_10), Ok(false));
    assert_eq!(names(&h), ["content-length"]);
}

#[test]
fn refuses_content_length_lists_and_repeats() {
    for fields in [
        &[("content-length", "2, 2")][..],
        &[("content-length", "2"), ("content-length", "2")],
        &[("content-length", "-1")],
    ] {
        let mut h = headers(fields);
        let r = clean(&mut h, StatusCode::OK, Version::HTTP_11);
        assert!(
            matches!(r, Err(ResponseHeaderError::InvalidContentLength { .. })),
            "{fields:?}: {r:?}"
        );
    }
}

#[test]
fn refuses_a_header_over_the_limit() {
    let mut h = HeaderMap::new();
    let value = HeaderValue::from_str(&"v".repeat(MAX_HEADER_BYTES)).expect("value");
    h.insert("x-big", value);
    let r = clean(&mut h, StatusCode::OK, Version::HTTP_11);
    assert!(
        matches!(r, Err(ResponseHeaderError::TooLarge { .. })),
        "{r:?}"
    );
    let mut h = headers(&[("x-small", "v")]);
    assert_eq!(clean(&mut h, StatusCode::OK, Version::HTTP_11), Ok(false));
}

#[test]
fn refuses_a_transfer_coding_that_does_not_end_in_chunked() {
    for te in ["identity", "gzip", "chunked, gzip"] {
        let mut h = headers(&[("transfer-encoding", te), ("content-length", "5")]);
        let err = clean(&mut h, StatusCode::OK, Version::HTTP_11).expect_err(te);
        assert_eq!(
            err,
            ResponseHeaderError::UnsupportedTransferEncoding {
                value: te.to_owned()
            }
        );
        assert_eq!(names(&h), ["content-length", "transfer-encoding"], "{te}");
    }
    for te in ["chunked", "gzip, chunked", "Chunked"] {
        let mut h = headers(&[("transfer-encoding", te)]);
        assert_eq!(
            clean(&mut h, StatusCode::OK, Version::HTTP_11),
            Ok(false),
            "{te}"
        );
    }
}

#[test]
fn a_204_or_1xx_loses_a_content_length() {
    for status in [
        StatusCode::NO_CONTENT,
        StatusCode::from_u16(103).expect("103"),
    ] {
        let mut h = headers(&[("content-length", "5"), ("x-a", "1")]);
        assert_eq!(clean(&mut h, status, Version::HTTP_11), Ok(false));
        assert_eq!(names(&h), ["x-a"], "{status}");
    }
    let mut h = headers(&[("content-length", "5")]);
    assert_eq!(clean(&mut h, StatusCode::OK, Version::HTTP_11), Ok(false));
    assert_eq!(names(&h), ["content-length"]);
}
