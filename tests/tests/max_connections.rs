//! `--max-connections N`: with N client connections open, the next one is closed at
//! once; the open ones keep their answers, the admin listener keeps serving, and a closed
//! connection frees a place. `tollgate_connections_open` and
//! `tollgate_connections_refused_total` count them.

use std::time::Duration;

use anyhow::Result;
use tests::admin::upstream_spec;
use tests::metrics::{parse, samples};
use tests::raw::KeepAlive;
use tests::{wait_until, EchoServer, Gateway, GatewayOptions};

const CAP: usize = 3;

/// The value of the unlabelled metric `name`.
fn metric(gateway: &Gateway, name: &str) -> Result<f64> {
    let all = parse(&gateway.metrics_text()?);
    Ok(samples(&all, name).first().map_or(f64::NAN, |s| s.value))
}

#[test]
fn refuses_connections_over_the_cap_and_keeps_serving_the_open_ones_and_the_admin() -> Result<()> {
    let gateway = Gateway::start(GatewayOptions {
        args: vec!["--max-connections".into(), CAP.to_string()],
        ..GatewayOptions::default()
    })?;
    let server = EchoServer::start("svc")?;
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("svc", &[server.addr()]))?;
    admin.create_route(&tests::admin::route_spec("svc", &["/"], "svc"))?;

    // The readiness probe's connection may still be open: wait until it is not.
    wait_until("no connection open", Duration::from_secs(10), || {
        Ok((metric(&gateway, "tollgate_connections_open")? == 0.0).then_some(()))
    })?;
    let mut open = Vec::new();
    for _ in 0..CAP {
        let mut c = KeepAlive::connect(gateway.proxy_addr())?;
        assert_eq!(c.get("/x")?, 200);
        open.push(c);
    }
    assert_eq!(metric(&gateway, "tollgate_connections_open")?, CAP as f64);
    assert_eq!(metric(&gateway, "tollgate_connections_refused_total")?, 0.0);

    // The next one is closed without an answer.
    let mut extra = KeepAlive::connect(gateway.proxy_addr())?;
    let refused = extra.get("/x");
    assert!(refused.is_err(), "over the cap: {refused:?}");
    assert_eq!(metric(&gateway, "tollgate_connections_refused_total")?, 1.0);

    // The open ones still answer; so do the admin listener and its REST API.
    for c in &mut open {
        assert_eq!(c.get("/y")?, 200);
    }
    let health = reqwest::blocking::get(format!("http://{}/healthz", gateway.admin_addr()))?;
    assert_eq!(health.status().as_u16(), 200);
    admin
        .get("/api/v1/upstreams")?
        .expect_status(200, "upstreams while the proxy is full")?;
    assert!(
        gateway.logs().contains("--max-connections reached"),
        "the refusal is logged: {}",
        gateway.logs()
    );

    // Closing one lets a new one in.
    drop(open.pop());
    wait_until("a place frees", Duration::from_secs(10), || {
        Ok((metric(&gateway, "tollgate_connections_open")? == (CAP - 1) as f64).then_some(()))
    })?;
    let mut again = KeepAlive::connect(gateway.proxy_addr())?;
    assert_eq!(again.get("/z")?, 200);
    assert_eq!(metric(&gateway, "tollgate_connections_open")?, CAP as f64);
    Ok(())
}

#[test]
fn the_environment_sets_the_cap_too() -> Result<()> {
    let gateway = Gateway::start(GatewayOptions {
        env: vec![("TOLLGATE_MAX_CONNECTIONS".into(), "1".into())],
        ..GatewayOptions::default()
    })?;
    let server = EchoServer::start("svc")?;
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("svc", &[server.addr()]))?;
    admin.create_route(&tests::admin::route_spec("svc", &["/"], "svc"))?;
    wait_until("no connection open", Duration::from_secs(10), || {
        Ok((metric(&gateway, "tollgate_connections_open")? == 0.0).then_some(()))
    })?;
    let mut first = KeepAlive::connect(gateway.proxy_addr())?;
    assert_eq!(first.get("/x")?, 200);
    let mut second = KeepAlive::connect(gateway.proxy_addr())?;
    assert!(
        second.get("/x").is_err(),
        "a second connection over a cap of 1"
    );
    assert_eq!(first.get("/x")?, 200);
    Ok(())
}
