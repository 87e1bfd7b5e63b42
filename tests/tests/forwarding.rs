//! Request ids and X-Forwarded-* headers, both ways.

use anyhow::Result;
use serde_json::json;
use tests::admin::upstream_spec;
use tests::{http_client, send, EchoServer, Gateway};

fn setup() -> Result<(Gateway, EchoServer)> {
    let gateway = Gateway::start_default()?;
    let server = EchoServer::start("svc")?;
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("svc", &[server.addr()]))?;
    admin.create_route(&json!({"id": "svc", "paths": ["/"], "upstream": "svc"}))?;
    Ok((gateway, server))
}

#[test]
fn request_id_is_generated_and_sent_both_ways() -> Result<()> {
    let (gateway, _server) = setup()?;
    let client = http_client();
    let first = send(&client, "GET", &gateway.url("/a"), &[])?;
    let second = send(&client, "GET", &gateway.url("/a"), &[])?;
    let id = first.header("x-request-id").unwrap_or_default().to_owned();
    assert!(
        !id.is_empty(),
        "the response carries a generated x-request-id"
    );
    assert_eq!(
        first.echo()?.header("x-request-id"),
        Some(id.as_str()),
        "the upstream got the same id"
    );
    assert_ne!(
        second.header("x-request-id"),
        Some(id.as_str()),
        "ids are per request"
    );
    Ok(())
}

#[test]
fn client_request_id_is_kept_both_ways() -> Result<()> {
    let (gateway, _server) = setup()?;
    let answer = send(
        &http_client(),
        "GET",
        &gateway.url("/a"),
        &[("x-request-id", "client-chosen-42")],
    )?;
    assert_eq!(answer.header("x-request-id"), Some("client-chosen-42"));
    let echoed = answer.echo()?;
    assert_eq!(
        echoed.header("x-request-id"),
        Some("client-chosen-42"),
        "the upstream saw exactly one, the client's"
    );
    Ok(())
}

#[test]
fn forwarded_headers_reach_the_upstream() -> Result<()> {
    let (gateway, _server) = setup()?;
    let echoed = send(
        &http_client(),
        "GET",
        &gateway.url("/a"),
        &[("host", "shop.example.com")],
    )?
    .echo()?;
    assert_eq!(echoed.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(echoed.header("x-forwarded-proto"), Some("http"));
    assert_eq!(echoed.header("x-forwarded-host"), Some("shop.example.com"));
    Ok(())
}

#[test]
fn request_body_and_method_are_forwarded() -> Result<()> {
    let (gateway, server) = setup()?;
    let response = http_client()
        .post(gateway.url("/upload"))
        .body(vec![7u8; 100_000])
        .send()?;
    assert_eq!(response.status(), 200);
    let echoed: tests::Echoed = serde_json::from_str(&response.text()?)?;
    assert_eq!((echoed.method.as_str(), echoed.body_len), ("POST", 100_000));
    assert_eq!(server.hits(), 1);
    Ok(())
}

#[test]
fn underscore_spellings_of_forwarding_headers_never_reach_the_upstream() -> Result<()> {
    // PHP and WSGI read `x_forwarded_for` as HTTP_X_FORWARDED_FOR, the same variable as the
    // gateway's own header: a client could spoof its address or scheme beside it. nginx
    // drops headers with underscores by default.
    let (gateway, _server) = setup()?;
    let answer = send(
        &http_client(),
        "GET",
        &gateway.url("/a"),
        &[
            ("x_forwarded_for", "6.6.6.6"),
            ("x_forwarded_proto", "https"),
            ("x_real_ip", "6.6.6.6"),
            ("x_custom_header", "kept"),
        ],
    )?;
    let echoed = answer.echo()?;
    for spoof in ["x_forwarded_for", "x_forwarded_proto", "x_real_ip"] {
        assert_eq!(echoed.header(spoof), None, "{spoof}: {:?}", echoed.headers);
    }
    assert_eq!(echoed.header("x_custom_header"), Some("kept"));
    assert_eq!(echoed.header("x-forwarded-for"), Some("127.0.0.1"));
    Ok(())
}
