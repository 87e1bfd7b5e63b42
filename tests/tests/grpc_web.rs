//! Policy `grpc_web` end to end: gRPC-Web calls framed by hand over HTTP/1.1 (reqwest)
//! through the real binary to the real gRPC server (`tests/grpc/server.py`, grpcio) on an
//! `h2c` upstream: messages and the trailer frame (`0x80`) of unary and streaming calls,
//! an error status with its message, the `-text` (base64) flavour, the gateway's own
//! refusals as gRPC-Web statuses, and no bridging on a route without the policy.

use std::collections::BTreeMap;

use anyhow::{bail, ensure, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;
use tests::admin::{route_spec, upstream_spec};
use tests::grpc::{gateway_for, GrpcServer, FAIL, STREAM, UNARY};
use tests::{http_client, Gateway};

/// One length-prefixed message frame.
fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    out.extend_from_slice(&u32::try_from(message.len()).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// A gRPC-Web answer taken apart.
#[derive(Debug)]
struct WebAnswer {
    http_status: u16,
    content_type: String,
    headers: reqwest::header::HeaderMap,
    messages: Vec<Vec<u8>>,
    /// From the trailer frame; empty when there was none.
    trailers: BTreeMap<String, String>,
    has_trailer_frame: bool,
}

impl WebAnswer {
    /// `grpc-status`: from the trailer frame, else from the header (trailers-only).
    fn status(&self) -> Option<&str> {
        self.trailers
            .get("grpc-status")
            .map(String::as_str)
            .or_else(|| self.headers.get("grpc-status")?.to_str().ok())
    }

    fn field(&self, name: &str) -> Option<&str> {
        self.trailers
            .get(name)
            .map(String::as_str)
            .or_else(|| self.headers.get(name)?.to_str().ok())
    }
}

/// Trailer frame fields, by lower-case name.
type Trailers = BTreeMap<String, String>;

/// Splits a gRPC-Web body into its message frames and trailer frame.
fn parse(body: &[u8]) -> Result<(Vec<Vec<u8>>, Option<Trailers>)> {
    let mut messages = Vec::new();
    let mut trailers = None;
    let mut rest = body;
    while !rest.is_empty() {
        ensure!(rest.len() >= 5, "a frame header cut short: {rest:?}");
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        ensure!(rest.len() >= 5 + len, "a frame cut short");
        let payload = &rest[5..5 + len];
        match rest[0] {
            0x00 => messages.push(payload.to_vec()),
            0x80 => {
                ensure!(trailers.is_none(), "two trailer frames");
                let text = std::str::from_utf8(payload)?;
                let mut map = BTreeMap::new();
                for line in text.split("\r\n").filter(|l| !l.is_empty()) {
                    let (name, value) = line.split_once(':').context("a trailer line")?;
                    map.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
                }
                trailers = Some(map);
            }
            other => bail!("unknown frame type {other:#x}"),
        }
        rest = &rest[5 + len..];
        if trailers.is_some() {
            ensure!(rest.is_empty(), "bytes after the trailer frame");
        }
    }
    Ok((messages, trailers))
}

/// Calls `method` with one message, as a browser's gRPC-Web client does.
fn web_call(
    gateway: &Gateway,
    method: &str,
    message: &[u8],
    text: bool,
    metadata: &[(&str, &str)],
) -> Result<WebAnswer> {
    let framed = frame(message);
    let (content_type, body) = if text {
        (
            "application/grpc-web-text",
            STANDARD.encode(&framed).into_bytes(),
        )
    } else {
        ("application/grpc-web+proto", framed)
    };
    let mut request = http_client()
        .post(gateway.url(method))
        .header("content-type", content_type)
        .header("x-grpc-web", "1")
        .header("accept", content_type)
        .body(body);
    for (name, value) in metadata {
        request = request.header(*name, *value);
    }
    let response = request.send()?;
    ensure!(
        response.version() == reqwest::Version::HTTP_11,
        "not HTTP/1.1"
    );
    let http_status = response.status().as_u16();
    let headers = response.headers().clone();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let raw = response.bytes()?.to_vec();
    let body = if text && content_type.starts_with("application/grpc-web-text") {
        STANDARD
            .decode(&raw)
            .with_context(|| format!("base64 answer: {:?}", String::from_utf8_lossy(&raw)))?
    } else {
        raw
    };
    let (messages, trailers) = parse(&body)?;
    Ok(WebAnswer {
        http_status,
        content_type,
        headers,
        messages,
        has_trailer_frame: trailers.is_some(),
        trailers: trailers.unwrap_or_default(),
    })
}

#[test]
fn unary_and_streaming_calls_come_back_with_messages_and_a_trailer_frame() -> Result<()> {
    let server = GrpcServer::start()?;
    let gateway = gateway_for(&server, json!([{"type": "grpc_web"}]))?;
    for text in [false, true] {
        let unary = web_call(&gateway, UNARY, b"hello", text, &[("x-api-key", "k9")])?;
        assert_eq!(unary.http_status, 200, "{unary:?}");
        let expected_type = if text {
            "application/grpc-web-text"
        } else {
            "application/grpc-web"
        };
        ensure!(
            unary.content_type.starts_with(expected_type),
            "text {text}: {unary:?}"
        );
        assert_eq!(unary.messages, [b"echo:hello".to_vec()], "text {text}");
        ensure!(unary.has_trailer_frame, "text {text}: {unary:?}");
        assert_eq!(unary.status(), Some("0"), "text {text}");
        assert_eq!(unary.field("x-trailer"), Some("t1"), "text {text}");
        assert_eq!(
            unary.field("x-seen-key"),
            Some("k9"),
            "metadata reaches the server"
        );
        assert_eq!(
            unary.headers.get("x-initial").and_then(|v| v.to_str().ok()),
            Some("i1"),
            "initial metadata is in the header"
        );

        let stream = web_call(&gateway, STREAM, b"4", text, &[])?;
        assert_eq!(
            stream.messages,
            [&b"msg 0"[..], b"msg 1", b"msg 2", b"msg 3"],
            "text {text}"
        );
        assert_eq!(stream.status(), Some("0"));
        assert_eq!(stream.field("x-trailer"), Some("done"));
    }
    Ok(())
}

#[test]
fn an_error_status_comes_back_with_its_message() -> Result<()> {
    let server = GrpcServer::start()?;
    let gateway = gateway_for(&server, json!([{"type": "grpc_web"}]))?;
    for text in [false, true] {
        let failed = web_call(&gateway, FAIL, b"x", text, &[])?;
        assert_eq!(failed.http_status, 200, "{failed:?}");
        assert!(failed.messages.is_empty());
        assert_eq!(
            failed.status(),
            Some("9"),
            "FAILED_PRECONDITION: {failed:?}"
        );
        assert_eq!(failed.field("grpc-message"), Some("bad thing"));
        assert_eq!(failed.field("x-why"), Some("because"));
    }
    // The access log has the call's gRPC status.
    tests::wait_until(
        "the access log line",
        std::time::Duration::from_secs(10),
        || Ok(gateway.stdout().contains("\"grpc_status\":9").then_some(())),
    )?;
    Ok(())
}

#[test]
fn the_gateways_refusals_are_grpc_web_statuses() -> Result<()> {
    let server = GrpcServer::start()?;
    let gateway = gateway_for(&server, json!([{"type": "key_auth"}, {"type": "grpc_web"}]))?;
    for text in [false, true] {
        let refused = web_call(&gateway, UNARY, b"x", text, &[])?;
        assert_eq!(refused.http_status, 200, "{refused:?}");
        assert_eq!(refused.status(), Some("16"), "UNAUTHENTICATED: {refused:?}");
        ensure!(
            refused.field("grpc-message").is_some_and(|m| !m.is_empty()),
            "{refused:?}"
        );
        let expected_type = if text {
            "application/grpc-web-text"
        } else {
            "application/grpc-web"
        };
        assert_eq!(refused.content_type, expected_type);
        assert!(refused.messages.is_empty());
    }
    let no_route = web_call(&gateway, "/other.Svc/Call", b"x", false, &[])?;
    assert_eq!(no_route.status(), Some("12"), "UNIMPLEMENTED: {no_route:?}");

    // The upstream down: UNAVAILABLE, as a gRPC-Web status too.
    let closed = tests::free_port()?;
    let admin = gateway.admin();
    let mut dead = upstream_spec("dead", &[([127, 0, 0, 1], closed).into()]);
    dead["protocol"] = json!("h2c");
    admin.create_upstream(&dead)?;
    let mut route = route_spec("dead", &["/dead.Svc/"], "dead");
    route["policies"] = json!([{"type": "grpc_web"}]);
    admin.create_route(&route)?;
    for text in [false, true] {
        let down = web_call(&gateway, "/dead.Svc/Call", b"x", text, &[])?;
        assert_eq!(down.http_status, 200, "{down:?}");
        assert_eq!(down.status(), Some("14"), "UNAVAILABLE: {down:?}");
    }
    Ok(())
}

#[test]
fn a_route_without_grpc_web_does_not_bridge() -> Result<()> {
    let server = GrpcServer::start()?;
    let gateway = gateway_for(&server, json!([]))?;
    let answer = http_client()
        .post(gateway.url(UNARY))
        .header("content-type", "application/grpc-web+proto")
        .body(frame(b"hello"))
        .send()?;
    let content_type = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = answer.bytes()?;
    ensure!(
        !content_type.starts_with("application/grpc-web"),
        "bridged: {content_type}"
    );
    ensure!(
        !body.windows(10).any(|w| w == b"echo:hello"),
        "the call went through: {body:?}"
    );
    Ok(())
}

#[test]
fn a_text_body_that_is_not_base64_is_refused_as_a_grpc_status() -> Result<()> {
    let server = GrpcServer::start()?;
    let gateway = gateway_for(&server, json!([{"type": "grpc_web"}]))?;
    let answer = http_client()
        .post(gateway.url(UNARY))
        .header("content-type", "application/grpc-web-text")
        .body("!!!! not base64 ****")
        .send()?;
    let status = answer
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let content_type = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = answer.bytes()?;
    // 400 from the gateway, as a gRPC status: INTERNAL.
    assert_eq!(status.as_deref(), Some("13"), "body {body:?}");
    assert_eq!(content_type.as_deref(), Some("application/grpc-web-text"));
    Ok(())
}

#[test]
fn an_http2_client_is_bridged_too() -> Result<()> {
    let server = GrpcServer::start()?;
    let gateway = gateway_for(&server, json!([{"type": "grpc_web"}]))?;
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .timeout(std::time::Duration::from_secs(20))
        .build()?;
    let response = client
        .post(gateway.url(UNARY))
        .header("content-type", "application/grpc-web+proto")
        .body(frame(b"over h2"))
        .send()?;
    ensure!(response.version() == reqwest::Version::HTTP_2, "not HTTP/2");
    assert_eq!(response.status().as_u16(), 200);
    let body = response.bytes()?;
    let (messages, trailers) = parse(&body)?;
    assert_eq!(messages, [b"echo:over h2".to_vec()]);
    let trailers = trailers.context("a trailer frame")?;
    assert_eq!(trailers.get("grpc-status").map(String::as_str), Some("0"));
    Ok(())
}

/// Browsers never see HTTP/2 trailers: a refusal of the gateway to a gRPC-Web call over
/// HTTP/2 has its status in the header block (trailers-only), as over HTTP/1.1, where it
/// says `content-length: 0` (its end is not the connection's).
#[test]
fn a_refusal_has_its_status_in_the_header_over_http2_and_a_length_over_http1() -> Result<()> {
    let server = GrpcServer::start()?;
    let gateway = gateway_for(&server, json!([{"type": "key_auth"}, {"type": "grpc_web"}]))?;
    let h2 = reqwest::blocking::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .timeout(std::time::Duration::from_secs(20))
        .build()?;
    for content_type in ["application/grpc-web+proto", "application/grpc-web-text"] {
        let response = h2
            .post(gateway.url(UNARY))
            .header("content-type", content_type)
            .body(frame(b"x"))
            .send()?;
        ensure!(response.version() == reqwest::Version::HTTP_2, "not HTTP/2");
        let status = response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        assert_eq!(
            status.as_deref(),
            Some("16"),
            "{content_type}: {:?}",
            response.headers()
        );
        assert!(response.bytes()?.is_empty(), "{content_type}");
    }

    // HTTP/1.1: the trailers-only answer says it has no body.
    let refused = web_call(&gateway, UNARY, b"x", false, &[])?;
    assert_eq!(refused.status(), Some("16"), "{refused:?}");
    assert_eq!(
        refused
            .headers
            .get("content-length")
            .and_then(|v| v.to_str().ok()),
        Some("0"),
        "{refused:?}"
    );
    Ok(())
}

/// An HTTP/1.0 client cannot read chunked coding (RFC 9112 6.1): its answer from an
/// HTTP/2 upstream (here a gRPC-Web call) ends with the connection, messages and trailer
/// frame whole.
#[test]
fn an_http10_client_gets_its_answer_unchunked() -> Result<()> {
    use std::io::{Read, Write};
    let server = GrpcServer::start()?;
    let gateway = gateway_for(&server, json!([{"type": "grpc_web"}]))?;
    for keep_alive in [false, true] {
        let mut stream = std::net::TcpStream::connect(gateway.proxy_addr())?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(20)))?;
        let body = frame(b"old");
        let connection = if keep_alive {
            "connection: keep-alive\r\n"
        } else {
            ""
        };
        let head = format!(
            "POST {UNARY} HTTP/1.0\r\nhost: a\r\ncontent-type: application/grpc-web\r\n\
             {connection}content-length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes())?;
        stream.write_all(&body)?;
        // Read to the end: the answer must end with the connection.
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        let split = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .context("a header")?;
        let header = String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase();
        ensure!(header.starts_with("http/1.1 200"), "{header}");
        ensure!(!header.contains("transfer-encoding"), "{header}");
        let (messages, trailers) = parse(&answer[split + 4..])?;
        assert_eq!(messages, [b"echo:old".to_vec()]);
        let trailers = trailers.context("a trailer frame")?;
        assert_eq!(trailers.get("grpc-status").map(String::as_str), Some("0"));
    }
    Ok(())
}
