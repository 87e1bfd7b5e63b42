//! What the gateway answers itself: 404 without a route, 502 when the upstream refuses,
//! 503 when no target is healthy, 504 when the upstream is too slow. Each is JSON with a
//! request id matching the `x-request-id` header.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;
use tests::admin::upstream_spec;
use tests::{free_port, http_client, send, wait_until, Answer, EchoServer, Gateway};

/// Checks the contract's error body: `{"error": "...", "request_id": "..."}`, the id also
/// in the `x-request-id` header.
fn assert_error_body(answer: &Answer) -> Result<()> {
    let body = answer.json()?;
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "an error message: {body}"
    );
    let id = body["request_id"].as_str().unwrap_or_default();
    assert!(!id.is_empty(), "a request_id: {body}");
    assert_eq!(
        answer.header("x-request-id"),
        Some(id),
        "the body's request_id is the header's"
    );
    Ok(())
}

#[test]
fn unknown_host_or_path_answers_404_json_with_request_id() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let server = EchoServer::start("svc")?;
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("svc", &[server.addr()]))?;
    admin.create_route(
        &json!({"id": "api", "hosts": ["api.example.com"], "paths": ["/v1"], "upstream": "svc"}),
    )?;
    let client = http_client();

    let unknown_host = send(
        &client,
        "GET",
        &gateway.url("/v1/x"),
        &[("host", "other.example.com")],
    )?;
    assert_eq!(unknown_host.status, 404);
    assert_error_body(&unknown_host)?;
    let unknown_path = send(
        &client,
        "GET",
        &gateway.url("/v2/x"),
        &[("host", "api.example.com")],
    )?;
    assert_eq!(unknown_path.status, 404);
    assert_error_body(&unknown_path)?;
    assert_ne!(
        unknown_host.header("x-request-id"),
        unknown_path.header("x-request-id"),
        "each request gets its own id"
    );
    assert_eq!(server.hits(), 0, "nothing reached the upstream");
    Ok(())
}

#[test]
fn refused_upstream_answers_502() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let dead = format!("127.0.0.1:{}", free_port()?);
    let admin = gateway.admin();
    admin.create_upstream(&json!({"id": "dead", "targets": [{"addr": dead}], "retries": 0}))?;
    admin.create_route(&json!({"id": "dead", "paths": ["/"], "upstream": "dead"}))?;

    let answer = send(&http_client(), "GET", &gateway.url("/x"), &[])?;
    assert_eq!(answer.status, 502, "{}", answer.text);
    assert_error_body(&answer)?;
    Ok(())
}

#[test]
fn no_healthy_target_answers_503_after_health_checks_fail() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let server = EchoServer::start("sick")?;
    let admin = gateway.admin();
    admin.create_upstream(&json!({
        "id": "sick",
        "targets": [{"addr": server.addr().to_string()}],
        // Without it the upstream would keep sending to its sick targets (panic mode:
        // tests/tests/health_panic.rs).
        "health_check": {"kind": "http", "path": "/healthz", "interval_ms": 200, "timeout_ms": 200,
                         "healthy_threshold": 1, "unhealthy_threshold": 1,
                         "when_all_unhealthy": "refuse"},
    }))?;
    admin.create_route(&json!({"id": "sick", "paths": ["/"], "upstream": "sick"}))?;
    let client = http_client();
    wait_until(
        "200 while the target is healthy",
        Duration::from_secs(20),
        || Ok((send(&client, "GET", &gateway.url("/x"), &[])?.status == 200).then_some(())),
    )?;

    // The target stays up but its health check fails: only the checks can tell.
    server.set_health_status(500);
    let answer = wait_until(
        "a 503 once the health checks fail",
        Duration::from_secs(20),
        || {
            let answer = send(&client, "GET", &gateway.url("/x"), &[])?;
            Ok((answer.status == 503).then_some(answer))
        },
    )?;
    assert_error_body(&answer)?;
    let hits = server.hits();
    for _ in 0..5 {
        assert_eq!(send(&client, "GET", &gateway.url("/x"), &[])?.status, 503);
    }
    assert_eq!(server.hits(), hits, "an unhealthy target gets no traffic");

    server.set_health_status(200);
    wait_until(
        "200 again once the health checks pass",
        Duration::from_secs(20),
        || Ok((send(&client, "GET", &gateway.url("/x"), &[])?.status == 200).then_some(())),
    )?;
    Ok(())
}

#[test]
fn slow_upstream_answers_504_after_read_timeout() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let server = EchoServer::start("slow")?;
    server.set_delay(Duration::from_secs(5));
    let admin = gateway.admin();
    admin.create_upstream(&json!({
        "id": "slow", "targets": [{"addr": server.addr().to_string()}], "read_timeout_ms": 300, "retries": 0,
    }))?;
    admin.create_route(&json!({"id": "slow", "paths": ["/"], "upstream": "slow"}))?;

    let started = Instant::now();
    let answer = send(&http_client(), "GET", &gateway.url("/x"), &[])?;
    let elapsed = started.elapsed();
    assert_eq!(answer.status, 504, "{}", answer.text);
    assert_error_body(&answer)?;
    assert!(
        elapsed < Duration::from_secs(4),
        "answered after the read timeout, not the upstream's delay: {elapsed:?}"
    );
    Ok(())
}

#[test]
fn a_slow_target_is_retried_on_another_after_the_read_timeout() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let slow = EchoServer::start("slow")?;
    slow.set_delay(Duration::from_secs(5));
    let fast = EchoServer::start("fast")?;
    let admin = gateway.admin();
    admin.create_upstream(&json!({
        "id": "mixed", "balancing": "round_robin", "read_timeout_ms": 300, "retries": 1,
        "targets": [{"addr": slow.addr().to_string()}, {"addr": fast.addr().to_string()}],
    }))?;
    admin.create_route(&json!({"id": "mixed", "paths": ["/"], "upstream": "mixed"}))?;

    // Round robin sends every other request to the slow target first: each of those times
    // out there and is answered by the fast one, well before the slow one would answer.
    let client = http_client();
    for i in 0..4 {
        let started = Instant::now();
        let answer = send(&client, "GET", &gateway.url(&format!("/r{i}")), &[])?;
        assert_eq!(answer.status, 200, "request {i}: {}", answer.text);
        assert_eq!(answer.echo()?.server, "fast", "request {i}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "request {i} waited for the slow target: {:?}",
            started.elapsed()
        );
    }
    assert!(slow.hits() >= 1, "the slow target was tried");
    // A POST is not retried: it times out as a 504.
    let answer = (0..2)
        .map(|i| send(&client, "POST", &gateway.url(&format!("/p{i}")), &[]))
        .collect::<Result<Vec<_>>>()?;
    assert!(
        answer.iter().any(|a| a.status == 504),
        "one of two POSTs met the slow target: {:?}",
        answer.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    Ok(())
}
