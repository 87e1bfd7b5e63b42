//! Ambiguous or oversized requests are refused by the gateway itself; the upstream's hit
//! counter proves that none of them was forwarded.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use tests::admin::upstream_spec;
use tests::raw::{send_raw, RawResponse};
use tests::{EchoServer, Gateway};

const QUIET: Duration = Duration::from_secs(2);

/// A gateway routing everything to one echo server, checked with a valid raw request.
fn setup() -> Result<(Gateway, EchoServer)> {
    let gateway = Gateway::start_default()?;
    let server = EchoServer::start("victim")?;
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("victim", &[server.addr()]))?;
    admin.create_route(&json!({"id": "all", "paths": ["/"], "upstream": "victim"}))?;
    let control = send_raw(
        gateway.proxy_addr(),
        b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        QUIET,
    )?;
    assert_eq!(
        control.status,
        Some(200),
        "a valid raw request is forwarded: {}",
        control.text
    );
    assert_eq!(server.hits(), 1, "the control request reached the upstream");
    Ok((gateway, server))
}

fn assert_refused(answer: &RawResponse, allowed: &[u16], server: &EchoServer, what: &str) {
    assert!(
        answer.status.is_some_and(|s| allowed.contains(&s)),
        "{what}: expected one of {allowed:?}, got {:?}: {}",
        answer.status,
        answer.text.chars().take(300).collect::<String>()
    );
    assert_eq!(
        server.hits(),
        1,
        "{what}: nothing may reach the upstream; it saw {:?}",
        server.seen()
    );
}

#[test]
fn content_length_with_transfer_encoding_is_refused_unforwarded() -> Result<()> {
    let (gateway, server) = setup()?;
    let request = b"POST /cl-te HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let answer = send_raw(gateway.proxy_addr(), request, QUIET)?;
    assert_refused(
        &answer,
        &[400],
        &server,
        "Content-Length and Transfer-Encoding together",
    );
    assert!(
        server.seen().iter().all(|e| e.path != "/smuggled"),
        "no smuggled request reached the upstream"
    );
    Ok(())
}

#[test]
fn duplicate_differing_content_length_is_refused_unforwarded() -> Result<()> {
    let (gateway, server) = setup()?;
    let request =
        b"POST /dup HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!";
    let answer = send_raw(gateway.proxy_addr(), request, QUIET)?;
    assert_refused(
        &answer,
        &[400],
        &server,
        "two different Content-Length values",
    );
    Ok(())
}

#[test]
fn invalid_content_length_is_refused_unforwarded() -> Result<()> {
    let (gateway, server) = setup()?;
    for value in ["abc", "-1", "5, 6", "0x10"] {
        let request =
            format!("POST /bad HTTP/1.1\r\nHost: x\r\nContent-Length: {value}\r\n\r\nhello");
        let answer = send_raw(gateway.proxy_addr(), request.as_bytes(), QUIET)?;
        assert_refused(
            &answer,
            &[400],
            &server,
            &format!("Content-Length: {value}"),
        );
    }
    Ok(())
}

#[test]
fn oversized_headers_are_refused_unforwarded() -> Result<()> {
    let (gateway, server) = setup()?;
    // 128 KiB in one header: beyond any sane limit of an edge proxy, and still within
    // what the echo upstream itself would accept (so a forward would be counted).
    let request = format!(
        "GET /big HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(128 * 1024)
    );
    let answer = send_raw(gateway.proxy_addr(), request.as_bytes(), QUIET)?;
    assert_refused(&answer, &[431, 400], &server, "128 KiB of headers");
    Ok(())
}
