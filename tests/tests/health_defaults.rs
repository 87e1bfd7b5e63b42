//! Health checks default to HAProxy's `rise 2, fall 3`: a target leaves after three failed
//! checks in a row and comes back after two good ones, so an endpoint that fails a check
//! now and then is not ejected (with 1/1 an endpoint alternating 200/500 each second turned
//! most requests into 503).

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use serde_json::json;
use tests::{http_client, send, EchoServer, Gateway};

#[test]
fn defaults_are_rise_2_fall_3_and_two_failed_checks_eject_nothing() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let server = EchoServer::start("h")?;
    let admin = gateway.admin();
    admin.create_upstream(&json!({
        "id": "h",
        "targets": [{"addr": server.addr().to_string()}],
        // `refuse`: an ejected target shows as 503 (else panic mode would keep serving).
        "health_check": {"kind": "http", "path": "/healthz", "interval_ms": 300, "timeout_ms": 250,
                         "when_all_unhealthy": "refuse"},
    }))?;
    admin.create_route(&json!({"id": "h", "paths": ["/"], "upstream": "h"}))?;
    let shown = admin
        .get("/api/v1/upstreams/h")?
        .expect_status(200, "upstream")?;
    assert_eq!(
        shown.body["health_check"]["healthy_threshold"], 2,
        "{}",
        shown.text
    );
    assert_eq!(
        shown.body["health_check"]["unhealthy_threshold"], 3,
        "{}",
        shown.text
    );

    let client = http_client();
    let status = || -> Result<u16> { Ok(send(&client, "GET", &gateway.url("/x"), &[])?.status) };
    // Requests until `done` says stop, at most 20 s; every status seen.
    let serve_until = |done: &dyn Fn() -> bool| -> Result<Vec<u16>> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        while !done() {
            ensure!(
                Instant::now() < deadline,
                "timed out; statuses so far {seen:?}"
            );
            seen.push(status()?);
        }
        Ok(seen)
    };
    let start = server.health_hits();
    serve_until(&|| server.health_hits() > start)?;

    // Two failed checks in a row: the target stays in.
    let before = server.health_hits();
    server.set_health_status(500);
    let mut seen = serve_until(&|| server.health_hits() >= before + 2)?;
    server.set_health_status(200);
    let after = server.health_hits();
    seen.extend(serve_until(&|| server.health_hits() >= after + 2)?);
    assert!(
        seen.iter().all(|s| *s == 200),
        "two failed checks ejected the target: {seen:?}"
    );

    // Three in a row: out, after the third.
    let before = server.health_hits();
    server.set_health_status(500);
    serve_until(&|| status().is_ok_and(|s| s == 503))?;
    let failed = server.health_hits() - before;
    assert!(failed >= 3, "ejected after {failed} failed checks");

    // Back after two good ones.
    let before = server.health_hits();
    server.set_health_status(200);
    serve_until(&|| status().is_ok_and(|s| s == 200))?;
    let good = server.health_hits() - before;
    assert!(good >= 2, "back after {good} good checks");
    Ok(())
}
