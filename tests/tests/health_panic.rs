//! Panic mode: while every target of an upstream fails its health check, requests are
//! balanced over all of them (Envoy's panic mode) instead of answered 503, unless the
//! upstream's check says `when_all_unhealthy: refuse` (tests/tests/errors.rs has the 503).
//! `tollgate_upstream_panic{upstream}` shows it.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use tests::metrics::{parse, samples};
use tests::{http_client, send, wait_until, EchoServer, Gateway};

/// The value of `tollgate_upstream_panic{upstream=id}`, if the series exists.
fn panic_gauge(gateway: &Gateway, id: &str) -> Result<Option<f64>> {
    let all = parse(&gateway.metrics_text()?);
    Ok(samples(&all, "tollgate_upstream_panic")
        .into_iter()
        .find(|s| s.label("upstream") == Some(id))
        .map(|s| s.value))
}

/// How many `tollgate_upstream_target_healthy` series of `id` read 1.
fn healthy_targets(gateway: &Gateway, id: &str) -> Result<usize> {
    let all = parse(&gateway.metrics_text()?);
    Ok(samples(&all, "tollgate_upstream_target_healthy")
        .into_iter()
        .filter(|s| s.label("upstream") == Some(id) && s.value == 1.0)
        .count())
}

#[test]
fn sends_to_all_targets_while_every_health_check_fails() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let a = EchoServer::start("a")?;
    let b = EchoServer::start("b")?;
    let admin = gateway.admin();
    admin.create_upstream(&json!({
        "id": "p",
        "targets": [{"addr": a.addr().to_string()}, {"addr": b.addr().to_string()}],
        "health_check": {"kind": "http", "path": "/healthz", "interval_ms": 200, "timeout_ms": 200,
                         "healthy_threshold": 1, "unhealthy_threshold": 1},
    }))?;
    admin.create_route(&json!({"id": "p", "paths": ["/"], "upstream": "p"}))?;
    let shown = admin
        .get("/api/v1/upstreams/p")?
        .expect_status(200, "upstream")?;
    assert!(
        shown.body["health_check"]
            .get("when_all_unhealthy")
            .is_none(),
        "the default is not written out: {}",
        shown.text
    );
    let client = http_client();
    wait_until("200 while healthy", Duration::from_secs(20), || {
        Ok((send(&client, "GET", &gateway.url("/x"), &[])?.status == 200).then_some(()))
    })?;
    assert_eq!(panic_gauge(&gateway, "p")?, Some(0.0), "not in panic yet");

    // Both targets still answer requests, but their checks fail.
    a.set_health_status(500);
    b.set_health_status(500);
    wait_until(
        "both targets unhealthy and the upstream in panic",
        Duration::from_secs(20),
        || {
            Ok(
                (healthy_targets(&gateway, "p")? == 0 && panic_gauge(&gateway, "p")? == Some(1.0))
                    .then_some(()),
            )
        },
    )?;
    let (hits_a, hits_b) = (a.hits(), b.hits());
    for i in 0..10 {
        let answer = send(&client, "GET", &gateway.url("/x"), &[])?;
        assert_eq!(answer.status, 200, "request {i} in panic: {}", answer.text);
    }
    assert!(
        a.hits() > hits_a && b.hits() > hits_b,
        "panic still balances over all targets: a {} -> {}, b {} -> {}",
        hits_a,
        a.hits(),
        hits_b,
        b.hits()
    );
    assert!(
        gateway.logs().contains("panic mode"),
        "entering panic is logged: {}",
        gateway.logs()
    );

    // One target healthy again: panic over, only it gets traffic.
    a.set_health_status(200);
    wait_until("panic over", Duration::from_secs(20), || {
        Ok(
            (panic_gauge(&gateway, "p")? == Some(0.0) && healthy_targets(&gateway, "p")? == 1)
                .then_some(()),
        )
    })?;
    let hits_b = b.hits();
    for _ in 0..6 {
        assert_eq!(send(&client, "GET", &gateway.url("/x"), &[])?.status, 200);
    }
    assert_eq!(b.hits(), hits_b, "the unhealthy target gets no traffic");
    Ok(())
}

#[test]
fn refuse_answers_503_and_a_bad_value_names_the_field() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let a = EchoServer::start("a")?;
    let admin = gateway.admin();
    let bad = admin.post(
        "/api/v1/upstreams",
        &json!({
            "id": "r",
            "targets": [{"addr": a.addr().to_string()}],
            "health_check": {"when_all_unhealthy": "sometimes"},
        }),
    )?;
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert!(
        bad.text.contains("when_all_unhealthy") || bad.text.contains("send_to_all"),
        "the error names the field or its values: {}",
        bad.text
    );

    admin.create_upstream(&json!({
        "id": "r",
        "targets": [{"addr": a.addr().to_string()}],
        "health_check": {"kind": "http", "path": "/healthz", "interval_ms": 200, "timeout_ms": 200,
                         "healthy_threshold": 1, "unhealthy_threshold": 1,
                         "when_all_unhealthy": "refuse"},
    }))?;
    admin.create_route(&json!({"id": "r", "paths": ["/"], "upstream": "r"}))?;
    let client = http_client();
    wait_until("200 while healthy", Duration::from_secs(20), || {
        Ok((send(&client, "GET", &gateway.url("/x"), &[])?.status == 200).then_some(()))
    })?;
    a.set_health_status(500);
    wait_until("503 once the check fails", Duration::from_secs(20), || {
        Ok((send(&client, "GET", &gateway.url("/x"), &[])?.status == 503).then_some(()))
    })?;
    let hits = a.hits();
    assert_eq!(send(&client, "GET", &gateway.url("/x"), &[])?.status, 503);
    assert_eq!(
        a.hits(),
        hits,
        "refuse sends nothing to the unhealthy target"
    );
    assert_eq!(
        panic_gauge(&gateway, "r")?,
        Some(0.0),
        "refuse is not panic"
    );
    Ok(())
}
