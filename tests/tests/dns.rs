//! Upstream targets given by host name (issue 11): a name that does not resolve takes only
//! its own routes down (503), never the config; the name is looked up again in the
//! background and serves once it resolves, without a config change; a name serves on
//! every address it resolves to.
//!
//! Each test gives the gateway its own `/etc/hosts` (`tests::hosts`: a mount namespace,
//! needs root; CI runs as root) and rewrites it while the gateway runs. nginx's model: with
//! `resolver` and `server ... resolve`, an upstream name is re-resolved at run time and
//! an unresolvable one does not stop the other upstreams from serving.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use tests::admin::{route_spec, upstream_spec};
use tests::hosts::PrivateHosts;
use tests::metrics::{parse, samples};
use tests::{http_client, send, wait_until, EchoServer, Gateway, GatewayOptions};

const NAME: &str = "svc.tollgate.test";

fn start_with(hosts: &PrivateHosts) -> Result<Gateway> {
    Gateway::start(GatewayOptions {
        wrapper: hosts.wrapper(),
        ..GatewayOptions::default()
    })
}

/// `tollgate_upstream_target_healthy{upstream, target}`, if exported.
fn target_gauge(gateway: &Gateway, upstream: &str, target: &str) -> Result<Option<f64>> {
    let text = gateway.metrics_text()?;
    let all = parse(&text);
    Ok(samples(&all, "tollgate_upstream_target_healthy")
        .into_iter()
        .find(|s| s.label("upstream") == Some(upstream) && s.label("target") == Some(target))
        .map(|s| s.value))
}

#[test]
fn an_unresolvable_name_after_a_restart_takes_down_only_its_routes_until_it_resolves() -> Result<()>
{
    let Some(hosts) = PrivateHosts::new()? else {
        return Ok(());
    };
    hosts.set(&[("127.0.0.1", NAME)])?;
    let named = EchoServer::start("named")?;
    let plain = EchoServer::start("plain")?;
    let mut gateway = start_with(&hosts)?;
    let admin = gateway.admin();
    let target = format!("{NAME}:{}", named.addr().port());
    admin.create_upstream(&json!({
        "id": "named", "targets": [{"addr": target}], "dns_refresh_secs": 1
    }))?;
    admin.create_upstream(&upstream_spec("plain", &[plain.addr()]))?;
    admin.create_route(&route_spec("named", &["/named"], "named"))?;
    admin.create_route(&route_spec("plain", &["/plain"], "plain"))?;
    let client = http_client();
    assert_eq!(
        send(&client, "GET", &gateway.url("/named"), &[])?
            .echo()?
            .server,
        "named"
    );

    // The name stops resolving; the stored config is restarted from.
    hosts.set(&[])?;
    gateway.restart()?;
    let plain_answer = send(&client, "GET", &gateway.url("/plain"), &[])?;
    assert_eq!(
        plain_answer.status, 200,
        "an IP-only route serves: {}",
        plain_answer.text
    );
    assert_eq!(plain_answer.echo()?.server, "plain");
    let down = send(&client, "GET", &gateway.url("/named"), &[])?;
    assert_eq!(down.status, 503, "{}", down.text);
    assert_eq!(down.json()?["error"], "no healthy upstream target");
    let status = admin
        .get("/api/v1/status")?
        .expect_status(200, "status")?
        .body;
    assert_eq!(status["last_reload_error"], json!(null), "{status}");
    let revision = status["revision"].clone();
    let named_status = status["upstreams"]
        .as_array()
        .and_then(|ups| ups.iter().find(|u| u["id"] == "named"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        named_status["targets"][0]["healthy"],
        json!(false),
        "{status}"
    );
    assert_eq!(target_gauge(&gateway, "named", &target)?, Some(0.0));

    // The name resolves again: the route serves without any config change.
    hosts.set(&[("127.0.0.1", NAME)])?;
    let echoed = wait_until("the named route to serve", Duration::from_secs(15), || {
        let answer = send(&client, "GET", &gateway.url("/named"), &[])?;
        (answer.status == 200).then(|| answer.echo()).transpose()
    })?;
    assert_eq!(echoed.server, "named");
    let status = admin
        .get("/api/v1/status")?
        .expect_status(200, "status")?
        .body;
    assert_eq!(status["revision"], revision, "no config change was made");
    assert_eq!(target_gauge(&gateway, "named", &target)?, Some(1.0));
    Ok(())
}

/// `localhost` used to become `[::1]` only; a server listening on 127.0.0.1 alone was then
/// unreachable. Every address is a target: the refused one is skipped.
#[test]
fn a_name_serves_on_every_address_it_resolves_to() -> Result<()> {
    let Some(hosts) = PrivateHosts::new()? else {
        return Ok(());
    };
    // The v6 address comes first in the file and nobody listens on it.
    hosts.set(&[("::1", NAME), ("127.0.0.1", NAME)])?;
    let server = EchoServer::start("v4")?;
    let gateway = start_with(&hosts)?;
    let admin = gateway.admin();
    let target = format!("{NAME}:{}", server.addr().port());
    admin.create_upstream(&json!({"id": "both", "targets": [{"addr": target}], "retries": 1}))?;
    admin.create_route(&route_spec("both", &["/both"], "both"))?;
    let client = http_client();
    for i in 0..6 {
        let answer = send(&client, "GET", &gateway.url("/both"), &[])?;
        assert_eq!(answer.status, 200, "request {i}: {}", answer.text);
        assert_eq!(answer.echo()?.server, "v4");
    }
    // One health series per configured target, not per address.
    let text = gateway.metrics_text()?;
    let all = parse(&text);
    let series: Vec<_> = samples(&all, "tollgate_upstream_target_healthy")
        .into_iter()
        .filter(|s| s.label("upstream") == Some("both"))
        .map(|s| s.label("target").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(series, [target]);
    Ok(())
}
