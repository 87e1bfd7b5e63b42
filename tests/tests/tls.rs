//! The HTTPS listener: a certificate per SNI name from the REST API, HTTP/2 and HTTP/1.1
//! by ALPN, requests proxied to the upstream, certificates replaced without a restart.
//!
//! Certificates are generated at test time with the `openssl` command-line tool.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use reqwest::blocking::Client;
use serde_json::json;
use tests::admin::upstream_spec;
use tests::certs::TestCert;
use tests::{free_port, wait_until, Answer, EchoServer, Gateway, GatewayOptions};

/// Names the test clients resolve to the gateway's HTTPS listener.
const NAMES: [&str; 3] = ["a.test", "b.test", "other.test"];

/// The REST API's certificate object for `cert`.
fn cert_spec(cert: &TestCert, id: &str, name: &str) -> serde_json::Value {
    json!({"id": id, "snis": [name], "cert": cert.cert_pem, "key": cert.key_pem})
}

/// How a test client speaks HTTP inside TLS.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Http {
    /// Offers `h2` and `http/1.1` by ALPN.
    Any,
    /// Offers only `http/1.1`.
    One,
}

/// A fresh client (so every request makes a new TLS handshake) that resolves [`NAMES`] to
/// `tls`, trusts only `roots` (or nothing at all with `verify == false`) and reports the
/// server's certificate.
fn https_client(tls: SocketAddr, roots: &[&TestCert], http: Http, verify: bool) -> Result<Client> {
    let mut builder = Client::builder()
        .use_native_tls()
        .no_proxy()
        .tls_built_in_root_certs(false)
        .tls_info(true)
        .danger_accept_invalid_certs(!verify)
        .timeout(Duration::from_secs(20));
    if http == Http::One {
        builder = builder.http1_only();
    }
    for name in NAMES {
        builder = builder.resolve(name, tls);
    }
    for root in roots {
        builder =
            builder.add_root_certificate(reqwest::Certificate::from_pem(root.cert_pem.as_bytes())?);
    }
    Ok(builder.build()?)
}

/// What one HTTPS request got: the answer, the certificate the server showed (DER) and
/// the HTTP version spoken.
struct Fetched {
    answer: Answer,
    peer_der: Vec<u8>,
    version: reqwest::Version,
}

fn fetch(client: &Client, url: &str) -> Result<Fetched> {
    let response = client
        .get(url)
        .send()
        .with_context(|| format!("GET {url}"))?;
    let peer_der = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .ok_or_else(|| anyhow!("GET {url}: no peer certificate"))?
        .to_vec();
    let version = response.version();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text()?;
    Ok(Fetched {
        answer: Answer {
            status,
            headers,
            text,
        },
        peer_der,
        version,
    })
}

/// A gateway with `--tls-listen` on a free loopback port and a route `/` to an echo
/// upstream. Returns the gateway, its HTTPS address and the upstream.
fn gateway_with_tls() -> Result<(Gateway, SocketAddr, EchoServer)> {
    let tls = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let gateway = Gateway::start(GatewayOptions {
        args: vec!["--tls-listen".into(), tls.to_string()],
        ..GatewayOptions::default()
    })?;
    let server = EchoServer::start("svc")?;
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("svc", &[server.addr()]))?;
    admin.create_route(&json!({"id": "svc", "paths": ["/"], "upstream": "svc"}))?;
    Ok((gateway, tls, server))
}

/// Waits until the HTTPS listener accepts TCP connections.
fn wait_accepting(tls: SocketAddr) -> Result<()> {
    wait_until("the HTTPS listener", Duration::from_secs(20), || {
        Ok(TcpStream::connect_timeout(&tls, Duration::from_secs(1))
            .ok()
            .map(drop))
    })
}

fn post_cert(gateway: &Gateway, spec: &serde_json::Value) -> Result<()> {
    gateway
        .admin()
        .post("/api/v1/certificates", spec)?
        .expect_status(201, "storing a certificate")?;
    Ok(())
}

#[test]
fn each_sni_name_gets_its_own_certificate_and_reaches_the_upstream() -> Result<()> {
    let (mut gateway, tls, server) = gateway_with_tls()?;
    let dir = gateway.scratch_dir().to_owned();
    let a = TestCert::generate(&dir, "a.test", "a")?;
    let b = TestCert::generate(&dir, "b.test", "b")?;
    let url = |name: &str| format!("https://{name}:{}/hello?x=1", tls.port());

    // The listener is bound (the flag was given) but has nothing to serve yet.
    wait_accepting(tls)?;
    let before = https_client(tls, &[&a, &b], Http::Any, true)?
        .get(url("a.test"))
        .send();
    assert!(
        before.is_err(),
        "no certificate stored, yet a handshake succeeded"
    );

    post_cert(&gateway, &cert_spec(&a, "a", "a.test"))?;
    post_cert(&gateway, &cert_spec(&b, "b", "b.test"))?;

    for run in ["stored at run time", "loaded at start"] {
        for (name, cert) in [("a.test", &a), ("b.test", &b)] {
            for http in [Http::Any, Http::One] {
                let got = fetch(&https_client(tls, &[&a, &b], http, true)?, &url(name))?;
                assert!(
                    got.peer_der == cert.der,
                    "{name} ({run}, {http:?}): wrong certificate"
                );
                let expected = match http {
                    Http::Any => reqwest::Version::HTTP_2,
                    Http::One => reqwest::Version::HTTP_11,
                };
                assert_eq!(got.version, expected, "{name} ({run})");
                assert_eq!(
                    got.answer.status, 200,
                    "{name} ({run}): {}",
                    got.answer.text
                );
                let echoed = got.answer.echo()?;
                assert_eq!(echoed.server, "svc");
                assert_eq!(echoed.path, "/hello");
                assert_eq!(echoed.query, "x=1");
                assert_eq!(echoed.header("x-forwarded-proto"), Some("https"));
                assert_eq!(echoed.header("x-forwarded-for"), Some("127.0.0.1"));
                let host = echoed.header("x-forwarded-host").unwrap_or_default();
                assert!(
                    host.starts_with(name),
                    "{name} ({run}): x-forwarded-host {host}"
                );
            }
        }
        // A name with no certificate of its own gets the default: the first by id.
        let other = fetch(
            &https_client(tls, &[], Http::Any, false)?,
            &url("other.test"),
        )?;
        assert!(
            other.peer_der == a.der,
            "other.test ({run}): not the default certificate"
        );
        assert_eq!(other.answer.status, 200);
        if run == "stored at run time" {
            gateway.restart()?;
            wait_accepting(tls)?;
        }
    }
    assert!(
        server.hits() >= 10,
        "requests reached the upstream: {}",
        server.hits()
    );

    // Plain HTTP on the proxy listener is unchanged and says so upstream.
    let plain = tests::send(&tests::http_client(), "GET", &gateway.url("/p"), &[])?.echo()?;
    assert_eq!(plain.header("x-forwarded-proto"), Some("http"));
    Ok(())
}

#[test]
fn replaced_certificate_is_served_from_the_next_handshake() -> Result<()> {
    let (gateway, tls, _server) = gateway_with_tls()?;
    let dir = gateway.scratch_dir().to_owned();
    let old = TestCert::generate(&dir, "a.test", "old")?;
    let new = TestCert::generate(&dir, "a.test", "new")?;
    assert!(old.der != new.der, "two generated certificates differ");
    let url = format!("https://a.test:{}/r", tls.port());
    let pid = gateway.pid();

    post_cert(&gateway, &cert_spec(&old, "a", "a.test"))?;
    wait_accepting(tls)?;
    let first = fetch(&https_client(tls, &[&old, &new], Http::Any, true)?, &url)?;
    assert!(
        first.peer_der == old.der,
        "the stored certificate is served"
    );

    gateway
        .admin()
        .delete("/api/v1/certificates/a")?
        .expect_status(204, "deleting the certificate")?;
    post_cert(&gateway, &cert_spec(&new, "a", "a.test"))?;
    let next = fetch(&https_client(tls, &[&old, &new], Http::Any, true)?, &url)?;
    assert!(
        next.peer_der == new.der,
        "the next handshake gets the new certificate"
    );
    assert_eq!(next.answer.status, 200);
    assert_eq!(
        next.answer.echo()?.header("x-forwarded-proto"),
        Some("https")
    );

    // Only the new certificate is trusted now: the old one is gone for good.
    let only_new = fetch(&https_client(tls, &[&new], Http::One, true)?, &url)?;
    assert_eq!(only_new.answer.status, 200);
    assert_eq!(gateway.pid(), pid, "no restart happened");
    Ok(())
}
