//! The admin listener over HTTPS (`--admin-tls-cert/--admin-tls-key`): the REST API and the
//! console answer only over TLS with the given certificate, the console's cookies are
//! `Secure`, and a certificate that cannot be loaded is a failed start.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;
use tests::admin::upstream_spec;
use tests::certs::TestCert;
use tests::{EchoServer, Gateway, GatewayOptions};

fn gateway_with_admin_tls() -> Result<(Gateway, TestCert)> {
    let dir = tempfile::tempdir()?;
    let cert = TestCert::loopback(dir.path(), "admin")?;
    // Read once at start: the files may go with `dir`.
    let gateway = Gateway::start(GatewayOptions {
        admin_tls: Some(cert.clone()),
        ..GatewayOptions::default()
    })?;
    Ok((gateway, cert))
}

#[test]
fn the_rest_api_and_console_answer_over_https_only() -> Result<()> {
    let (gateway, cert) = gateway_with_admin_tls()?;
    let admin = gateway.admin();
    let server = EchoServer::start("svc")?;
    admin.create_upstream(&upstream_spec("svc", &[server.addr()]))?;
    admin.create_route(&json!({"id": "svc", "paths": ["/svc"], "upstream": "svc"}))?;
    let answer = tests::send(&tests::http_client(), "GET", &gateway.url("/svc"), &[])?;
    assert_eq!(
        answer.status, 200,
        "the route made over HTTPS serves: {answer:?}"
    );

    // Plain HTTP on the admin port gets no HTTP answer.
    let mut stream = TcpStream::connect(gateway.admin_addr())?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    assert!(
        !got.starts_with(b"HTTP/1.1 200"),
        "plain HTTP answered: {:?}",
        String::from_utf8_lossy(&got)
    );

    // A client that does not trust the certificate refuses it.
    let untrusting = reqwest::blocking::Client::builder()
        .no_proxy()
        .tls_built_in_root_certs(false)
        .timeout(Duration::from_secs(10))
        .build()?;
    let refused = untrusting
        .get(format!("{}/healthz", gateway.admin_url()))
        .send();
    assert!(refused.is_err(), "an unknown certificate was accepted");

    // The console's cookies are Secure over the admin's own TLS, whatever the client says.
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .tls_built_in_root_certs(false)
        .add_root_certificate(cert.root()?)
        .timeout(Duration::from_secs(10))
        .build()?;
    let login = client
        .get(format!("{}/login", gateway.admin_url()))
        .header("x-forwarded-proto", "http")
        .send()
        .context("GET /login over HTTPS")?;
    assert_eq!(login.status(), 200);
    let cookies: Vec<String> = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    assert!(!cookies.is_empty(), "the login page sets its CSRF cookie");
    for cookie in &cookies {
        assert!(
            cookie.contains("; Secure"),
            "not Secure over HTTPS: {cookie}"
        );
    }
    Ok(())
}

#[test]
fn a_certificate_that_cannot_be_loaded_is_a_failed_start() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cert = TestCert::loopback(dir.path(), "admin")?;
    let other = TestCert::loopback(dir.path(), "other")?;
    let missing = dir.path().join("missing.crt");
    for (what, cert_file, key_file, expect) in [
        (
            "a missing certificate",
            missing,
            cert.key_file.clone(),
            "missing.crt",
        ),
        (
            "a key of another certificate",
            cert.cert_file.clone(),
            other.key_file,
            "admin.crt",
        ),
    ] {
        let bad = TestCert {
            cert_file,
            key_file,
            ..cert.clone()
        };
        let started = Gateway::start(GatewayOptions {
            admin_tls: Some(bad),
            ..GatewayOptions::default()
        });
        let err = match started {
            Ok(_) => anyhow::bail!("{what}: the gateway started"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("exited during start-up"), "{what}: {err}");
        assert!(
            err.contains("loading the admin listener's certificate") && err.contains(expect),
            "{what}: the reason names the files: {err}"
        );
    }
    Ok(())
}
