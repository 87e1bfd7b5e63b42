//! HTTP/1.1 semantics (RFC 9110, RFC 9112) on raw sockets against the real binary, each
//! compared with what nginx (as a reverse proxy with `proxy_pass`) does.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::Result;
use tests::admin::{route_spec, upstream_spec};
use tests::raw::{send_raw, RawResponse};
use tests::{wait_until, EchoServer, Gateway, ScriptedServer};

const QUIET: Duration = Duration::from_secs(2);

/// A gateway routing every path to `target`.
fn gateway_to(target: SocketAddr) -> Result<Gateway> {
    let gateway = Gateway::start_default()?;
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("up", &[target]))?;
    admin.create_route(&route_spec("all", &["/"], "up"))?;
    Ok(gateway)
}

/// A gateway in front of a scripted upstream answering `response`, and what a plain
/// HTTP/1.1 GET through it gets.
fn through_scripted(response: &[u8]) -> Result<(RawResponse, ScriptedServer, Gateway)> {
    let server = ScriptedServer::start(response)?;
    let gateway = gateway_to(server.addr())?;
    let answer = send_raw(
        gateway.proxy_addr(),
        b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        QUIET,
    )?;
    Ok((answer, server, gateway))
}

fn excerpt(answer: &RawResponse) -> String {
    answer.text.chars().take(600).collect()
}

// nginx answers pipelined requests one after the other, in order, on the same connection.
#[test]
fn pipelined_requests_are_all_answered_in_order() -> Result<()> {
    let server = EchoServer::start("echo")?;
    let gateway = gateway_to(server.addr())?;
    let requests = b"POST /one HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
GET /two HTTP/1.1\r\nHost: x\r\n\r\n\
GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let answer = send_raw(gateway.proxy_addr(), requests, QUIET)?;
    assert_eq!(
        answer.status_lines(),
        3,
        "three answers: {}",
        excerpt(&answer)
    );
    let at = |path: &str| answer.text.find(&format!("\"path\":\"{path}\""));
    let (one, two, three) = (at("/one"), at("/two"), at("/three"));
    assert!(
        one.is_some() && one < two && two < three,
        "answers in request order: {one:?} {two:?} {three:?}: {}",
        answer.text
    );
    assert_eq!(server.hits(), 3, "each request went upstream once");
    assert!(answer.closed, "closed after the request that asked for it");
    Ok(())
}

// The same when the next request comes while the one before is still with the upstream
// (nginx reads it once the first answer is out).
#[test]
fn a_request_sent_while_the_previous_is_served_is_answered_after_it() -> Result<()> {
    let server = EchoServer::start("echo")?;
    server.set_delay(Duration::from_millis(500));
    let gateway = gateway_to(server.addr())?;
    let mut stream = TcpStream::connect(gateway.proxy_addr())?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")?;
    wait_until("the first request upstream", Duration::from_secs(5), || {
        Ok((server.hits() == 1).then_some(()))
    })?;
    stream.write_all(b"GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(
        text.matches("HTTP/1.1 200 ").count(),
        2,
        "two answers: {text}"
    );
    let (first, second) = (text.find("\"/first\""), text.find("\"/second\""));
    assert!(
        first.is_some() && first < second,
        "in order: {first:?} {second:?}: {text}"
    );
    Ok(())
}

// nginx never sends chunked coding to an HTTP/1.0 client: it closes the connection after
// the body instead (and says `Connection: close`).
#[test]
fn http10_client_gets_a_close_delimited_body() -> Result<()> {
    let server = ScriptedServer::start(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )?;
    let gateway = gateway_to(server.addr())?;
    let answer = send_raw(
        gateway.proxy_addr(),
        b"GET /x HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
        QUIET,
    )?;
    assert_eq!(answer.status, Some(200), "{}", excerpt(&answer));
    assert!(
        answer.header_values("transfer-encoding").is_empty(),
        "no transfer coding for HTTP/1.0: {}",
        answer.head()
    );
    assert_eq!(answer.body(), "hello", "the body as it is, not chunked");
    assert_eq!(answer.header_values("connection"), ["close"]);
    assert!(answer.closed, "the body ends with the connection");
    Ok(())
}

// nginx drops `Connection` and `Keep-Alive` from an upstream's answer; it passes the names
// `Connection` lists, `Proxy-Connection`, `TE`, `Trailer` and `Upgrade` on, which RFC 9110
// 7.6.1 says a proxy must not do.
#[test]
fn hop_by_hop_response_fields_do_not_reach_the_client() -> Result<()> {
    let (answer, _server, _gateway) = through_scripted(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Private, keep-alive\r\n\
X-Private: secret\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n\
Trailer: X-Sum\r\nUpgrade: h2c\r\nX-Kept: yes\r\n\r\nok",
    )?;
    assert_eq!(answer.status, Some(200), "{}", excerpt(&answer));
    for name in [
        "x-private",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    ] {
        assert!(
            answer.header_values(name).is_empty(),
            "{name} reached the client: {}",
            answer.head()
        );
    }
    assert_eq!(
        answer.header_values("x-kept"),
        ["yes"],
        "end-to-end fields stay"
    );
    assert_eq!(
        answer.header_values("connection"),
        ["close"],
        "only the gateway's own Connection"
    );
    assert_eq!(answer.body(), "ok");
    Ok(())
}

// nginx answers `HTTP/1.1` whatever version its upstream spoke.
#[test]
fn answers_in_its_own_version_not_the_upstreams() -> Result<()> {
    let (answer, _server, _gateway) =
        through_scripted(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello")?;
    assert!(
        answer.text.starts_with("HTTP/1.1 200 "),
        "status line: {}",
        excerpt(&answer)
    );
    assert_eq!(answer.body(), "hello");
    Ok(())
}

// nginx: 400 "client sent HTTP/1.1 request without Host header"; HTTP/1.0 needs none.
#[test]
fn http11_request_without_host_is_refused_unforwarded() -> Result<()> {
    let server = EchoServer::start("echo")?;
    let gateway = gateway_to(server.addr())?;
    let answer = send_raw(gateway.proxy_addr(), b"GET /x HTTP/1.1\r\n\r\n", QUIET)?;
    assert_eq!(answer.status, Some(400), "{}", excerpt(&answer));
    assert_eq!(server.hits(), 0, "nothing forwarded");
    let answer = send_raw(gateway.proxy_addr(), b"GET /x HTTP/1.0\r\n\r\n", QUIET)?;
    assert_eq!(answer.status, Some(200), "HTTP/1.0: {}", excerpt(&answer));
    assert_eq!(server.hits(), 1, "HTTP/1.0 without Host is forwarded");
    Ok(())
}

// nginx's `$proxy_add_x_forwarded_for` joins every `X-Forwarded-For` line and appends the
// client; nginx passes a client's `Forwarded` on as it is. Tollgate has no trusted-proxy
// notion for forwarding, so a client's `Forwarded` is not believed: it is dropped.
#[test]
fn every_forwarded_for_line_is_kept_and_a_clients_forwarded_is_dropped() -> Result<()> {
    let server = EchoServer::start("echo")?;
    let gateway = gateway_to(server.addr())?;
    let answer = send_raw(
        gateway.proxy_addr(),
        b"GET /x HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.1\r\nForwarded: for=10.9.9.9\r\n\
X-Forwarded-For: 10.0.0.2\r\nConnection: close\r\n\r\n",
        QUIET,
    )?;
    assert_eq!(answer.status, Some(200), "{}", excerpt(&answer));
    let seen = server.seen();
    let echoed = seen
        .first()
        .ok_or_else(|| anyhow::anyhow!("not forwarded"))?;
    assert_eq!(
        echoed.header("x-forwarded-for"),
        Some("10.0.0.1, 10.0.0.2, 127.0.0.1")
    );
    assert_eq!(echoed.header("forwarded"), None);
    Ok(())
}

// nginx: 400 for a repeated `Content-Length` ("client sent duplicate header line") and for
// one that is not a number, such as a list; 502 for either from an upstream.
#[test]
fn content_length_lists_are_refused_both_ways() -> Result<()> {
    let server = EchoServer::start("echo")?;
    let gateway = gateway_to(server.addr())?;
    for request in [
        &b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello"[..],
        b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    ] {
        let answer = send_raw(gateway.proxy_addr(), request, QUIET)?;
        assert_eq!(answer.status, Some(400), "{}", excerpt(&answer));
    }
    assert_eq!(server.hits(), 0, "nothing forwarded");

    let (answer, upstream, _gateway) =
        through_scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok")?;
    assert_eq!(answer.status, Some(502), "{}", excerpt(&answer));
    assert_eq!(upstream.hits(), 1, "the upstream was asked");
    Ok(())
}

// nginx forwards such a request as a normal one (it sends `Upgrade` on only when its
// configuration sets it, the usual `proxy_set_header Upgrade $http_upgrade`).
#[test]
fn upgrade_without_connection_upgrade_is_a_normal_request() -> Result<()> {
    let server = EchoServer::start("echo")?;
    let gateway = gateway_to(server.addr())?;
    let answer = send_raw(
        gateway.proxy_addr(),
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nConnection: close\r\n\r\n",
        QUIET,
    )?;
    assert_eq!(answer.status, Some(200), "{}", excerpt(&answer));
    let seen = server.seen();
    let echoed = seen
        .first()
        .ok_or_else(|| anyhow::anyhow!("not forwarded"))?;
    assert_eq!(echoed.header("upgrade"), None, "no upgrade asked upstream");
    assert!(
        !echoed
            .header("connection")
            .unwrap_or_default()
            .to_ascii_lowercase()
            .contains("upgrade"),
        "{:?}",
        echoed.header("connection")
    );
    Ok(())
}

/// An answer with `fields` header fields of 4000 bytes each and a body of `ok`.
fn with_big_fields(fields: usize) -> Vec<u8> {
    let mut response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n".to_vec();
    for n in 0..fields {
        response.extend_from_slice(format!("X-Big-{n}: {}\r\n", "v".repeat(4000)).as_bytes());
    }
    response.extend_from_slice(b"\r\nok");
    response
}

// nginx: 502 "upstream sent too big header" past `proxy_buffer_size` (4 or 8 KiB by
// default); Tollgate allows what it allows a request, 64 KiB.
#[test]
fn an_upstream_header_over_64_kib_is_a_502() -> Result<()> {
    let (answer, upstream, _gateway) = through_scripted(&with_big_fields(20))?;
    assert_eq!(answer.status, Some(502), "80 KiB: {}", excerpt(&answer));
    assert_eq!(upstream.hits(), 1, "the upstream was asked");
    let (answer, _upstream, _gateway) = through_scripted(&with_big_fields(10))?;
    assert_eq!(answer.status, Some(200), "40 KiB: {}", excerpt(&answer));
    Ok(())
}
