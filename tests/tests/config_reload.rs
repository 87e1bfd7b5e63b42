//! Config changes take effect on the next request without dropping any request in flight.

use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};
use tests::admin::upstream_spec;
use tests::{http_client, send, wait_until, EchoServer, Gateway, Load};

#[test]
fn thousand_route_updates_under_load_fail_no_request() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let blue = EchoServer::start("blue")?;
    let green = EchoServer::start("green")?;
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("blue", &[blue.addr()]))?;
    admin.create_upstream(&upstream_spec("green", &[green.addr()]))?;
    let route = |i: usize| {
        let upstream = if i % 2 == 0 { "blue" } else { "green" };
        json!({"id": "live", "paths": ["/live"], "priority": (i % 7) as i32, "upstream": upstream})
    };
    admin.create_route(&route(0))?;

    let load = Load::start(&gateway.url("/live"), None, 3, Duration::from_secs(300));
    wait_until("the load to start", Duration::from_secs(20), || {
        Ok((load.ok() >= 20).then_some(()))
    })?;
    for i in 1..=1000 {
        admin.update_route("live", &route(i))?;
    }
    // The last update (i = 1000) points at blue: the very next request must go there.
    let echoed = send(&http_client(), "GET", &gateway.url("/live"), &[])?.echo()?;
    assert_eq!(
        echoed.server, "blue",
        "the proxy uses a change from its next request"
    );
    let report = load.stop();

    assert!(report.ok >= 100, "the load ran: {report:?}");
    assert_eq!(
        report.failed, 0,
        "failures during 1,000 route updates: {:?}",
        report.failures
    );
    assert!(
        blue.hits() > 0 && green.hits() > 0,
        "traffic followed the updates: {:?}",
        report.by_server
    );
    Ok(())
}

fn big_config(upstream: &EchoServer, routes: usize) -> Value {
    let mut all: Vec<Value> = (0..routes)
        .map(|i| json!({"id": format!("r{i}"), "paths": [format!("/svc/{i}")], "strip_prefix": format!("/svc/{i}"), "upstream": "main"}))
        .collect();
    all.push(json!({"id": "live", "paths": ["/live"], "upstream": "main"}));
    json!({"upstreams": [{"id": "main", "targets": [{"addr": upstream.addr().to_string()}]}], "routes": all})
}

#[test]
fn ten_thousand_route_config_applies_under_load_without_failures() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let server = EchoServer::start("main")?;
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("main", &[server.addr()]))?;
    admin.create_route(&json!({"id": "live", "paths": ["/live"], "upstream": "main"}))?;

    let load = Load::start(&gateway.url("/live"), None, 3, Duration::from_secs(300));
    wait_until("the load to start", Duration::from_secs(20), || {
        Ok((load.ok() >= 20).then_some(()))
    })?;
    let before = load.ok();
    admin.replace_config(&big_config(&server, 10_000))?;
    let during = load.ok() - before;

    let client = http_client();
    for i in [0usize, 4_999, 9_999] {
        let answer = send(&client, "GET", &gateway.url(&format!("/svc/{i}/x")), &[])?;
        assert_eq!(
            answer.status, 200,
            "route r{i} serves at once: {}",
            answer.text
        );
        assert_eq!(answer.echo()?.path, "/x");
    }
    let answer = send(&client, "GET", &gateway.url("/svc/10000/x"), &[])?;
    assert_eq!(answer.status, 404, "no route r10000 exists");

    let report = load.stop();
    assert_eq!(
        report.failed, 0,
        "failures while applying 10,000 routes: {:?}",
        report.failures
    );
    assert!(
        during > 0,
        "requests were served while the config was applied"
    );

    let routes = admin
        .get("/api/v1/routes")?
        .expect_status(200, "listing routes")?;
    let count = routes
        .body
        .as_array()
        .map(Vec::len)
        .or_else(|| routes.body["routes"].as_array().map(Vec::len));
    assert_eq!(count, Some(10_001), "GET /api/v1/routes lists every route");
    Ok(())
}
