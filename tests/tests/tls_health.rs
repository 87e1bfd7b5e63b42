//! An upstream with `tls` and an `http` health check is checked over TLS, with the SNI
//! and certificate verification its requests get: a check path answering 500 takes the
//! target out, 200 brings it back, and a certificate the gateway does not trust fails the
//! check even though the path answers 200.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use tests::metrics::{parse, samples};
use tests::tls_upstream::TlsServer;
use tests::{http_client, send, wait_until, Gateway, GatewayOptions};

const NAME: &str = "upstream.test";

/// `tollgate_upstream_target_healthy{upstream=id}` of its only target.
fn healthy(gateway: &Gateway, id: &str) -> Result<Option<f64>> {
    let all = parse(&gateway.metrics_text()?);
    Ok(samples(&all, "tollgate_upstream_target_healthy")
        .into_iter()
        .find(|s| s.label("upstream") == Some(id))
        .map(|s| s.value))
}

fn tls_upstream(server: &TlsServer) -> serde_json::Value {
    json!({
        "id": "secure",
        "targets": [{"addr": server.addr().to_string()}],
        "tls": true,
        "sni": NAME,
        "health_check": {"kind": "http", "path": "/healthz", "interval_ms": 200, "timeout_ms": 200,
                         "healthy_threshold": 1, "unhealthy_threshold": 1,
                         "when_all_unhealthy": "refuse"},
    })
}

#[test]
fn checks_a_tls_upstream_over_tls_and_follows_its_check_path() -> Result<()> {
    let server = TlsServer::start(NAME)?;
    // The gateway trusts the upstream's certificate (OpenSSL's default verify paths).
    let cert = server.cert_path().to_string_lossy().into_owned();
    let gateway = Gateway::start(GatewayOptions {
        env: vec![("SSL_CERT_FILE".into(), cert)],
        ..GatewayOptions::default()
    })?;
    let admin = gateway.admin();
    admin.create_upstream(&tls_upstream(&server))?;
    admin.create_route(&json!({"id": "secure", "paths": ["/"], "upstream": "secure"}))?;
    let client = http_client();

    let checks = server.health_hits();
    wait_until("checks over TLS", Duration::from_secs(20), || {
        Ok((server.health_hits() >= checks + 2).then_some(()))
    })?;
    assert_eq!(healthy(&gateway, "secure")?, Some(1.0));
    let answer = send(&client, "GET", &gateway.url("/x"), &[])?;
    assert_eq!((answer.status, answer.text.as_str()), (200, "tls-ok"));

    server.set_health_status(500);
    wait_until("unhealthy after a 500", Duration::from_secs(20), || {
        Ok((healthy(&gateway, "secure")? == Some(0.0)).then_some(()))
    })?;
    assert_eq!(send(&client, "GET", &gateway.url("/x"), &[])?.status, 503);

    server.set_health_status(200);
    wait_until("healthy again after a 200", Duration::from_secs(20), || {
        Ok((healthy(&gateway, "secure")? == Some(1.0)).then_some(()))
    })?;
    assert_eq!(send(&client, "GET", &gateway.url("/x"), &[])?.status, 200);
    Ok(())
}

#[test]
fn an_untrusted_certificate_fails_the_check() -> Result<()> {
    let server = TlsServer::start(NAME)?;
    // An empty trust store: the upstream's self-signed certificate cannot verify.
    let empty = tempfile::NamedTempFile::new()?;
    let gateway = Gateway::start(GatewayOptions {
        env: vec![
            (
                "SSL_CERT_FILE".into(),
                empty.path().to_string_lossy().into_owned(),
            ),
            (
                "SSL_CERT_DIR".into(),
                empty.path().to_string_lossy().into_owned(),
            ),
        ],
        ..GatewayOptions::default()
    })?;
    let admin = gateway.admin();
    admin.create_upstream(&tls_upstream(&server))?;
    wait_until(
        "unhealthy: the certificate does not verify",
        Duration::from_secs(20),
        || Ok((healthy(&gateway, "secure")? == Some(0.0)).then_some(())),
    )?;
    assert_eq!(
        server.health_hits(),
        0,
        "no request goes out over a connection that did not verify"
    );
    Ok(())
}
