//! HTTP/2 and gRPC end to end: a real gRPC client (grpcio) calls a real gRPC server
//! (grpcio) through the gateway's plain listener (h2c) and an `h2c` upstream; unary and
//! server-streaming calls keep their messages, metadata and trailers; the gateway's own
//! refusals reach the client as gRPC statuses; plain HTTP/2 with prior knowledge is served
//! to curl and to a Rust h2 client.

use std::process::Command;

use anyhow::{ensure, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use serde_json::json;
use tests::admin::{route_spec, upstream_spec};
use tests::grpc::{call, gateway_for, GrpcServer, Kind, Outcome, FAIL, STREAM, UNARY};
use tests::{free_port, wait_until, EchoServer, Gateway};

fn expect_code(outcome: &Outcome, code: &str, what: &str) -> Result<()> {
    ensure!(
        outcome.code == code,
        "{what}: expected {code}, got {outcome:?}"
    );
    Ok(())
}

#[test]
fn unary_and_streaming_calls_keep_messages_metadata_and_trailers() -> Result<()> {
    let server = GrpcServer::start()?;
    let gateway = gateway_for(&server, json!([]))?;
    let proxy = gateway.proxy_addr();

    let unary = call(proxy, UNARY, Kind::Unary, "hello", &[("x-api-key", "k1")])?;
    expect_code(&unary, "OK", "unary")?;
    assert_eq!(unary.responses, ["echo:hello"]);
    assert_eq!(
        unary.initial.get("x-initial").map(String::as_str),
        Some("i1")
    );
    assert_eq!(
        unary.trailing.get("x-trailer").map(String::as_str),
        Some("t1")
    );
    assert_eq!(
        unary.trailing.get("x-seen-key").map(String::as_str),
        Some("k1"),
        "request metadata reaches the server"
    );

    let stream = call(proxy, STREAM, Kind::Stream, "5", &[])?;
    expect_code(&stream, "OK", "server stream")?;
    assert_eq!(
        stream.responses,
        ["msg 0", "msg 1", "msg 2", "msg 3", "msg 4"]
    );
    assert_eq!(
        stream.trailing.get("x-trailer").map(String::as_str),
        Some("done")
    );

    let failed = call(proxy, FAIL, Kind::Unary, "x", &[])?;
    expect_code(&failed, "FAILED_PRECONDITION", "the server's error")?;
    assert_eq!(failed.details.as_deref(), Some("bad thing"));
    assert_eq!(
        failed.trailing.get("x-why").map(String::as_str),
        Some("because")
    );

    // The access log names each call's gRPC status.
    wait_until(
        "the access log lines",
        std::time::Duration::from_secs(10),
        || {
            let log = gateway.stdout();
            Ok(
                (log.contains("\"grpc_status\":0") && log.contains("\"grpc_status\":9"))
                    .then_some(()),
            )
        },
    )?;
    Ok(())
}

#[test]
fn the_gateways_own_refusals_are_grpc_statuses() -> Result<()> {
    let server = GrpcServer::start()?;
    let gateway = gateway_for(
        &server,
        json!([
            {"type": "key_auth"},
            {"type": "rate_limit", "requests": 1, "per": "minute"}
        ]),
    )?;
    let admin = gateway.admin();
    admin
        .post("/api/v1/consumers", &json!({"id": "acme"}))?
        .expect_status(201, "creating a consumer")?;
    let key = admin
        .post("/api/v1/consumers/acme/keys", &json!({}))?
        .expect_status(201, "creating a key")?
        .body["key"]
        .as_str()
        .context("the new key")?
        .to_owned();
    let proxy = gateway.proxy_addr();

    let no_key = call(proxy, UNARY, Kind::Unary, "x", &[])?;
    expect_code(&no_key, "UNAUTHENTICATED", "no key")?;
    ensure!(
        no_key.details.as_deref().is_some_and(|d| !d.is_empty()),
        "the refusal says why: {no_key:?}"
    );
    let keyed = call(proxy, UNARY, Kind::Unary, "x", &[("x-api-key", &key)])?;
    expect_code(&keyed, "OK", "the key in metadata")?;
    let limited = call(proxy, UNARY, Kind::Unary, "x", &[("x-api-key", &key)])?;
    expect_code(&limited, "RESOURCE_EXHAUSTED", "over the rate limit")?;
    let no_route = call(proxy, "/other.Svc/Call", Kind::Unary, "x", &[])?;
    expect_code(&no_route, "UNIMPLEMENTED", "no route")?;

    // Counted under the refusal's HTTP status, with the gRPC status in the access log.
    wait_until(
        "the access log lines",
        std::time::Duration::from_secs(10),
        || {
            let log = gateway.stdout();
            Ok(
                (log.contains("\"status\":401") && log.contains("\"grpc_status\":16"))
                    .then_some(()),
            )
        },
    )?;
    let metrics = gateway.metrics_text()?;
    assert!(
        metrics.contains(
            "tollgate_http_requests_total{method=\"POST\",route=\"grpc\",status=\"401\"}"
        ),
        "{metrics}"
    );
    Ok(())
}

#[test]
fn a_rewritten_path_keeps_the_http2_authority() -> Result<()> {
    // An HTTP/2 client's host is its `:authority`; a path rewrite used to drop it, and the
    // HTTP/2 upstream then refused the request (500 to the client).
    let server = GrpcServer::start()?;
    let gateway = Gateway::start_default()?;
    let admin = gateway.admin();
    let mut upstream = upstream_spec("grpc", &[server.addr()]);
    upstream["protocol"] = json!("h2c");
    admin.create_upstream(&upstream)?;
    admin.create_route(
        &json!({"id": "sp", "paths": ["/sp"], "strip_prefix": "/sp", "upstream": "grpc"}),
    )?;
    let stripped = call(
        gateway.proxy_addr(),
        &format!("/sp{UNARY}"),
        Kind::Unary,
        "x",
        &[],
    )?;
    expect_code(&stripped, "OK", "through strip_prefix")?;
    assert_eq!(stripped.responses, ["echo:x"]);
    Ok(())
}

/// Sends one HTTP/2 request with `authority` (and `host`, if given) to `proxy` with the h2
/// crate, which writes the pseudo-headers as told; returns the status.
fn h2_status(proxy: std::net::SocketAddr, authority: &str, host: Option<&str>) -> Result<u16> {
    tests::runtime::handle().block_on(async move {
        let tcp = tokio::net::TcpStream::connect(proxy).await?;
        let (client, conn) = h2::client::handshake(tcp).await?;
        tokio::spawn(conn);
        let mut client = client.ready().await?;
        let mut request = hyper::Request::get(format!("http://{authority}/svc/x"));
        if let Some(host) = host {
            request = request.header("host", host);
        }
        let (response, _) = client.send_request(request.body(())?, true)?;
        anyhow::Ok(response.await?.status().as_u16())
    })
}

#[test]
fn http2_authority_follows_the_host_rules() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let server = EchoServer::start("svc")?;
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("svc", &[server.addr()]))?;
    admin.create_route(&route_spec("svc", &["/svc"], "svc"))?;
    let proxy = gateway.proxy_addr();
    assert_eq!(h2_status(proxy, "a.example", None)?, 200);
    for bad in ["a.example,evil.example", "a.example;b", "u@a.example"] {
        assert_eq!(h2_status(proxy, bad, None)?, 400, "{bad}");
    }
    assert_eq!(h2_status(proxy, "a.example", Some("b.example"))?, 400);
    assert_eq!(h2_status(proxy, "a.example", Some("a.example"))?, 200);
    assert_eq!(server.hits(), 2, "only the plain hosts reach the upstream");
    Ok(())
}

#[test]
fn a_header_too_big_for_the_upstream_is_refused_at_the_gateway() -> Result<()> {
    // grpcio allows 8 KiB of metadata and tears down the whole connection past it, with
    // every other client's calls on it: the gateway refuses that one call instead.
    let server = GrpcServer::start()?;
    let gateway = gateway_for(&server, json!([]))?;
    let proxy = gateway.proxy_addr();
    let big = "v".repeat(9 * 1024);
    let refused = call(proxy, UNARY, Kind::Unary, "x", &[("x-big", &big)])?;
    expect_code(&refused, "RESOURCE_EXHAUSTED", "9 KiB of metadata")?;
    ensure!(
        refused
            .details
            .as_deref()
            .is_some_and(|d| d.contains("too large")),
        "{refused:?}"
    );
    let fine = call(proxy, UNARY, Kind::Unary, "x", &[("x-small", &big[..1024])])?;
    expect_code(&fine, "OK", "1 KiB of metadata")?;
    Ok(())
}

#[test]
fn an_upstream_that_is_down_is_unavailable() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let admin = gateway.admin();
    let closed = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let mut upstream = upstream_spec("grpc", &[closed]);
    upstream["protocol"] = json!("h2c");
    admin.create_upstream(&upstream)?;
    admin.create_route(&route_spec("grpc", &["/tollgate.test.Echo/"], "grpc"))?;
    let down = call(gateway.proxy_addr(), UNARY, Kind::Unary, "x", &[])?;
    expect_code(&down, "UNAVAILABLE", "upstream down")?;
    Ok(())
}

#[test]
fn protocol_is_validated_against_tls() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let admin = gateway.admin();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
    let mut h2 = upstream_spec("a", &[addr]);
    h2["protocol"] = json!("h2");
    let refused = admin.post("/api/v1/upstreams", &h2)?;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(refused.body["problems"][0]["path"], "protocol");
    h2["protocol"] = json!("http3");
    let refused = admin.post("/api/v1/upstreams", &h2)?;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(refused.text.contains("protocol"), "{}", refused.text);
    Ok(())
}

#[test]
fn plain_listener_serves_http2_with_prior_knowledge() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let server = EchoServer::start("svc")?;
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("svc", &[server.addr()]))?;
    admin.create_route(&route_spec("svc", &["/svc"], "svc"))?;

    // curl, as users try it.
    let out = Command::new("curl")
        .args([
            "-sS",
            "--http2-prior-knowledge",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
        ])
        .arg(gateway.url("/svc/x"))
        .output()
        .context("running curl")?;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 200", "{out:?}");

    // A Rust h2 client: several streams on one connection, answered in HTTP/2.
    let proxy = gateway.proxy_addr();
    let statuses = tests::runtime::handle().block_on(async move {
        let io = hyper_util::rt::TokioIo::new(tokio::net::TcpStream::connect(proxy).await?);
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await?;
        tokio::spawn(conn);
        let mut statuses = Vec::new();
        for path in ["/svc/a", "/svc/b", "/nothing"] {
            let request =
                hyper::Request::get(format!("http://{proxy}{path}")).body(Empty::<Bytes>::new())?;
            let response = sender.send_request(request).await?;
            assert_eq!(response.version(), hyper::Version::HTTP_2);
            let status = response.status().as_u16();
            response.into_body().collect().await?;
            statuses.push(status);
        }
        anyhow::Ok(statuses)
    })?;
    assert_eq!(statuses, [200, 200, 404]);
    assert_eq!(server.hits(), 3, "curl's request and the two streams");

    // HTTP/1.1 on the same port, a request shorter than the HTTP/2 preface included.
    let answer = tests::send(&tests::http_client(), "GET", &gateway.url("/svc/y"), &[])?;
    assert_eq!(answer.status, 200);
    Ok(())
}

#[test]
fn a_call_over_request_size_is_resource_exhausted_at_once() -> Result<()> {
    // A gRPC message has no Content-Length: the gateway counts it as it streams. Its
    // refusal was taken for an upstream error, and the gateway then waited for an answer
    // the upstream (waiting for the rest of the call) never sent: the call hung until
    // the client's deadline (DEADLINE_EXCEEDED after 20 s).
    let server = GrpcServer::start()?;
    let gateway = gateway_for(&server, json!([{"type": "request_size", "max_bytes": 100}]))?;
    let proxy = gateway.proxy_addr();
    let started = std::time::Instant::now();
    let big = call(proxy, UNARY, Kind::Unary, &"x".repeat(5000), &[])?;
    expect_code(&big, "RESOURCE_EXHAUSTED", "a message over request_size")?;
    ensure!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "answered after {:?}",
        started.elapsed()
    );
    let small = call(proxy, UNARY, Kind::Unary, "small", &[])?;
    expect_code(&small, "OK", "a message under request_size")?;
    Ok(())
}
