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

/// Whether the server at `addr` closes a connection on which the client sent `sent` and
/// then nothing, within `within`.
fn closes_idle(addr: std::net::SocketAddr, sent: &'static [u8], within: Duration) -> Result<bool> {
    let mut stream = TcpStream::connect(addr)?;
    stream.write_all(sent)?;
    stream.set_read_timeout(Some(within))?;
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(true),
            // A 408 or the like before the close is fine.
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(true),
            Err(_) => return Ok(false),
        }
    }
}

#[test]
fn admin_and_metrics_listeners_drop_idle_connections() -> Result<()> {
    // They share the descriptor table with the proxy: a connection that never finishes a
    // request header must not be held for good. The limit is 10 s; allow 30.
    let (tls_gateway, _cert) = gateway_with_admin_tls()?;
    let plain = Gateway::start_default()?;
    let within = Duration::from_secs(30);
    let cases: Vec<(&str, std::net::SocketAddr, &'static [u8])> = vec![
        ("admin, nothing sent", plain.admin_addr(), b""),
        (
            "admin, half a header",
            plain.admin_addr(),
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
        ),
        (
            "admin, HTTP/2 preface only",
            plain.admin_addr(),
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ),
        (
            "metrics, half a header",
            plain.metrics_addr(),
            b"GET /metrics HTTP/1.1\r\n",
        ),
        ("HTTPS admin, nothing sent", tls_gateway.admin_addr(), b""),
    ];
    let handles: Vec<_> = cases
        .into_iter()
        .map(|(what, addr, sent)| {
            std::thread::spawn(move || (what, closes_idle(addr, sent, within)))
        })
        .collect();
    for handle in handles {
        let (what, closed) = handle
            .join()
            .map_err(|_| anyhow::anyhow!("a probe panicked"))?;
        assert!(closed?, "{what}: still open after {within:?}");
    }
    Ok(())
}

#[test]
fn a_certificate_that_cannot_be_loaded_is_a_failed_start() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cert = TestCert::loopback(dir.path(), "admin")?;
    let other = TestCert::loopback(dir.path(), "other")?;
    let missing = dir.path().join("missing.crt");
    // An encrypted key fails the start with a reason; it never waits for a passphrase.
    let encrypted = dir.path().join("encrypted.key");
    let out = std::process::Command::new("openssl")
        .args(["pkey", "-aes256", "-passout", "pass:secret", "-in"])
        .arg(&cert.key_file)
        .arg("-out")
        .arg(&encrypted)
        .output()?;
    anyhow::ensure!(out.status.success(), "openssl pkey: {out:?}");
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
            "does not match",
        ),
        (
            "an encrypted key",
            cert.cert_file.clone(),
            encrypted,
            "not an unencrypted PEM private key",
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
