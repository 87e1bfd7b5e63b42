//! Load balancing across targets and active health checks.

use std::time::Duration;

use anyhow::{ensure, Result};
use serde_json::json;
use tests::metrics::{parse, samples};
use tests::{http_client, send, wait_until, EchoServer, Gateway, GatewayOptions, Load};

#[test]
fn weighted_round_robin_spreads_load_three_to_one() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let heavy = EchoServer::start("heavy")?;
    let light = EchoServer::start("light")?;
    let admin = gateway.admin();
    admin.create_upstream(&json!({
        "id": "pool",
        "balancing": "round_robin",
        "targets": [{"addr": heavy.addr().to_string(), "weight": 3}, {"addr": light.addr().to_string(), "weight": 1}],
    }))?;
    admin.create_route(&json!({"id": "all", "paths": ["/"], "upstream": "pool"}))?;

    let client = http_client();
    for _ in 0..400 {
        let answer = send(&client, "GET", &gateway.url("/w"), &[])?;
        ensure!(
            answer.status == 200,
            "request failed: {} {}",
            answer.status,
            answer.text
        );
    }
    let (h, l) = (heavy.hits(), light.hits());
    assert_eq!(h + l, 400, "every request reached exactly one target");
    // 3:1 of 400 is 300:100; allow 10% of the total either way.
    assert!(
        (260..=340).contains(&h),
        "weight 3 target got {h} of 400 (light got {l})"
    );
    Ok(())
}

/// The `tollgate_upstream_target_healthy` value for `target` of `upstream`, if exported.
fn target_health(gateway: &Gateway, upstream: &str, target: &str) -> Result<Option<f64>> {
    let text = gateway.metrics_text()?;
    let all = parse(&text);
    Ok(samples(&all, "tollgate_upstream_target_healthy")
        .into_iter()
        .find(|s| s.label("upstream") == Some(upstream) && s.label("target") == Some(target))
        .map(|s| s.value))
}

#[test]
fn killed_target_is_ejected_without_failed_requests_and_readmitted_when_back() -> Result<()> {
    let gateway = Gateway::start(GatewayOptions::default())?;
    let steady = EchoServer::start("steady")?;
    let flaky = EchoServer::start("flaky")?;
    let admin = gateway.admin();
    admin.create_upstream(&json!({
        "id": "pool",
        "targets": [{"addr": steady.addr().to_string()}, {"addr": flaky.addr().to_string()}],
        "health_check": {"kind": "http", "path": "/healthz", "interval_ms": 200, "timeout_ms": 200,
                         "healthy_threshold": 1, "unhealthy_threshold": 1},
        "connect_timeout_ms": 500,
        "retries": 2,
    }))?;
    admin.create_route(&json!({"id": "all", "paths": ["/"], "upstream": "pool"}))?;
    let flaky_target = flaky.addr().to_string();

    let load = Load::start(&gateway.url("/load"), None, 4, Duration::from_secs(120));
    wait_until(
        "both targets to serve traffic",
        Duration::from_secs(20),
        || Ok((steady.hits() >= 20 && flaky.hits() >= 20).then_some(())),
    )?;

    flaky.kill()?;
    wait_until(
        "the killed target to be marked unhealthy",
        Duration::from_secs(20),
        || Ok((target_health(&gateway, "pool", &flaky_target)? == Some(0.0)).then_some(())),
    )?;
    // With the target ejected, traffic flows only to the steady one.
    let steady_before = steady.hits();
    wait_until(
        "more traffic on the steady target",
        Duration::from_secs(20),
        || Ok((steady.hits() >= steady_before + 100).then_some(())),
    )?;

    let flaky_before = flaky.hits();
    flaky.restart()?;
    wait_until(
        "the restarted target to receive traffic again",
        Duration::from_secs(30),
        || Ok((flaky.hits() >= flaky_before + 20).then_some(())),
    )?;
    assert_eq!(target_health(&gateway, "pool", &flaky_target)?, Some(1.0));

    let report = load.stop();
    assert!(report.ok >= 100, "the load ran: {report:?}");
    assert_eq!(
        report.failed, 0,
        "no client request may fail while a target dies: {:?}",
        report.failures
    );
    Ok(())
}

/// An upstream that answers the first request of each connection and closes the
/// connection when a second one arrives on it, unanswered: what a keep-alive timeout
/// racing the gateway's reuse of the connection looks like. Counts its connections.
fn closes_on_second_request() -> Result<(
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
)> {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let connections = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            counted.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                for request in 0.. {
                    // Read one request head (these requests have no body).
                    let mut line = String::new();
                    loop {
                        line.clear();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => break,
                            Ok(_) => {}
                        }
                    }
                    if request > 0 {
                        return; // closed, unanswered
                    }
                    let _ = reader
                        .get_mut()
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
                }
            });
        }
    });
    Ok((addr, connections))
}

/// RFC 9112 9.3.1: an idempotent request whose pooled upstream connection turns out closed
/// goes again on a new connection, even to a single target with no retries configured; a
/// POST is not sent twice.
#[test]
fn a_request_on_a_pooled_connection_the_upstream_closed_goes_again_on_a_new_one() -> Result<()> {
    let (addr, connections) = closes_on_second_request()?;
    let gateway = Gateway::start_default()?;
    let admin = gateway.admin();
    let mut upstream = tests::admin::upstream_spec("one", &[addr]);
    upstream["retries"] = json!(0);
    admin.create_upstream(&upstream)?;
    admin.create_route(&tests::admin::route_spec("r", &["/"], "one"))?;
    let client = http_client();
    for i in 0..4 {
        let answer = send(&client, "GET", &gateway.url("/"), &[])?;
        ensure!(
            answer.status == 200,
            "GET {i}: {} {}",
            answer.status,
            answer.text
        );
    }
    // Each GET after the first went out on the pooled connection, met its close, and went
    // again on a new one.
    let seen = connections.load(std::sync::atomic::Ordering::SeqCst);
    ensure!(seen == 4, "{seen} connections for 4 requests");
    let post = send(&client, "POST", &gateway.url("/"), &[])?;
    ensure!(
        post.status == 502,
        "a POST is not replayed: {}",
        post.status
    );
    Ok(())
}
