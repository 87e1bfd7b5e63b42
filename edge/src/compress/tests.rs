use super::*;

fn settings(min_bytes: u64) -> Compression {
    let spec: policies::CompressionSpec =
        serde_json::from_value(serde_json::json!({"min_bytes": min_bytes})).expect("spec");
    Compression::compile(&spec).expect("compiles")
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.append(
            http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            value.parse().expect("value"),
        );
    }
    h
}

fn run(
    method: &Method,
    accept: &[(&str, &str)],
    status: u16,
    resp: &mut HeaderMap,
) -> Option<Coding> {
    let req_headers = headers(accept);
    let req = Request {
        method,
        version: Version::HTTP_11,
        headers: &req_headers,
        is_grpc_or_upgrade: false,
    };
    // The coding whose encoder is made: none for a HEAD (its headers are edited only).
    apply(
        &settings(100),
        &req,
        StatusCode::from_u16(status).expect("status"),
        resp,
    )
    .and_then(|(coding, reserved)| reserved.map(|_| coding))
}

#[test]
fn encodes_and_fixes_the_headers() {
    let mut h = headers(&[
        ("content-type", "application/json; charset=utf-8"),
        ("content-length", "5000"),
        ("etag", "\"abc\""),
        ("vary", "Origin"),
        ("accept-ranges", "bytes"),
    ]);
    let coding = run(&Method::GET, &[("accept-encoding", "gzip")], 200, &mut h);
    assert_eq!(coding, Some(Coding::Gzip));
    assert_eq!(h["content-encoding"], "gzip");
    assert!(!h.contains_key("content-length"));
    assert!(!h.contains_key("accept-ranges"));
    assert_eq!(h["etag"], "W/\"abc\"");
    assert_eq!(h.get_all("vary").iter().count(), 1);
    assert_eq!(h["vary"], "Origin, Accept-Encoding");
    assert_eq!(h["transfer-encoding"], "chunked");
}

#[test]
fn head_gets_the_headers_of_get_but_no_encoder() {
    let mut h = headers(&[("content-type", "text/html"), ("content-length", "5000")]);
    assert_eq!(
        run(&Method::HEAD, &[("accept-encoding", "br")], 200, &mut h),
        None
    );
    assert_eq!(h["content-encoding"], "br");
    assert_eq!(h["vary"], "Accept-Encoding");
}

#[test]
fn identity_answers_that_depended_on_accept_encoding_still_vary() {
    let mut h = headers(&[("content-type", "text/plain"), ("vary", "accept-encoding")]);
    assert_eq!(
        run(
            &Method::GET,
            &[("accept-encoding", "identity")],
            200,
            &mut h
        ),
        None
    );
    assert_eq!(h["vary"], "accept-encoding");
    assert!(!h.contains_key("content-encoding"));
    let mut h = headers(&[("content-type", "text/plain")]);
    assert_eq!(run(&Method::GET, &[], 200, &mut h), None);
    assert_eq!(h["vary"], "Accept-Encoding");
}

#[test]
fn leaves_alone_what_must_not_or_need_not_be_encoded() {
    let accept = [("accept-encoding", "gzip, br, zstd")];
    for (status, pairs) in [
        (
            200,
            vec![("content-type", "text/plain"), ("content-encoding", "gzip")],
        ),
        (
            200,
            vec![
                ("content-type", "text/plain"),
                ("cache-control", "public, No-Transform"),
            ],
        ),
        (200, vec![("content-type", "image/png")]),
        (200, vec![("content-type", "application/octet-stream")]),
        (200, vec![]),
        (
            200,
            vec![("content-type", "text/plain"), ("content-length", "99")],
        ),
        (206, vec![("content-type", "text/plain")]),
        (204, vec![("content-type", "text/plain")]),
        (101, vec![]),
    ] {
        let mut h = headers(&pairs);
        let before = h.clone();
        assert_eq!(
            run(&Method::GET, &accept, status, &mut h),
            None,
            "{pairs:?}"
        );
        assert_eq!(h, before, "{status} {pairs:?}");
    }
}

#[test]
fn not_modified_gets_the_vary_and_etag_of_its_200_when_that_was_encoded() {
    // The client's copy came from an encoded 200: it sends the weak validator back.
    let mut h = headers(&[("etag", "\"v1\"")]);
    let asked = [
        ("accept-encoding", "gzip"),
        ("if-none-match", "\"other\", W/\"v1\""),
    ];
    assert_eq!(run(&Method::GET, &asked, 304, &mut h), None);
    assert_eq!(h["etag"], "W/\"v1\"");
    assert_eq!(h["vary"], "Accept-Encoding");
    assert!(!h.contains_key("content-encoding"));
    // Its copy came from an identity 200 (a type not compressed, say): left alone.
    let mut h = headers(&[("etag", "\"p1\"")]);
    let asked = [("accept-encoding", "gzip"), ("if-none-match", "\"p1\"")];
    assert_eq!(run(&Method::GET, &asked, 304, &mut h), None);
    assert_eq!(h["etag"], "\"p1\"");
    assert!(!h.contains_key("vary"));
}

#[test]
fn knows_types_worth_compressing() {
    for t in [
        "text/html",
        "TEXT/CSS; charset=utf-8",
        "application/json",
        "application/problem+json",
        "application/atom+xml",
        "image/svg+xml",
        "application/wasm",
    ] {
        assert!(is_compressible(&HeaderValue::from_static(t)), "{t}");
    }
    for t in [
        "image/jpeg",
        "application/zip",
        "video/mp4",
        "application/grpc",
        "json",
        "",
    ] {
        assert!(!is_compressible(&HeaderValue::from_static(t)), "{t}");
    }
}

#[test]
fn a_vary_that_is_not_text_is_kept() {
    let mut h = headers(&[("content-type", "text/plain")]);
    h.append(VARY, HeaderValue::from_bytes(b"X-\xff").expect("obs-text"));
    assert_eq!(
        run(&Method::GET, &[("accept-encoding", "gzip")], 200, &mut h),
        Some(Coding::Gzip)
    );
    let values: Vec<&[u8]> = h.get_all(VARY).iter().map(HeaderValue::as_bytes).collect();
    assert_eq!(values, [&b"X-\xff"[..], b"Accept-Encoding"]);
}
