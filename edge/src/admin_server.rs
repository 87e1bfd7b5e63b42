//! Serving the admin router (console, REST API, cluster feed) and the metrics router on
//! their listeners: plain HTTP, or HTTPS with `--admin-tls-cert/--admin-tls-key` (the
//! cluster feed carries secrets, and a console reached from another host sends passwords).
//!
//! Both go through `axum-server`: OpenSSL is already linked for Pingora, axum-server is the
//! maintained way to run an axum app over TLS with hyper's HTTP/1.1 and HTTP/2, and it lets
//! every connection be timed: a client that sends nothing, or not a whole request header,
//! within [`HEADER_TIMEOUT`] is dropped, as is an idle HTTP/1.1 keep-alive connection
//! (`axum::serve` kept them all for good, and they share the descriptor table with the
//! proxy), and a TLS handshake gets axum-server's 10 s.

use std::net::SocketAddr;
use std::path::Path;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use axum::extract::Request;
use axum::Router;
use axum_server::tls_openssl::{OpenSSLAcceptor, OpenSSLConfig};
use http::HeaderValue;
use openssl::pkey::PKey;
use openssl::ssl::{AlpnError, SslAcceptor, SslMethod};
use openssl::x509::X509;

/// How long a client of the admin or metrics listener may take to send a request header,
/// the first one included; and how long an idle HTTP/1.1 connection stays open.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The admin (or metrics) listener, bound, with what it serves over.
pub enum AdminListener {
    Plain(tokio::net::TcpListener),
    Https(std::net::TcpListener, OpenSSLConfig),
}

impl AdminListener {
    /// Binds `addr` (errors name it as the `name` listener) and, with `tls` (certificate chain and key files), loads them: a missing
    /// file, a key that does not match, or a taken port is an error naming what failed.
    /// Call inside the admin runtime.
    pub async fn bind(name: &str, addr: SocketAddr, tls: Option<(&Path, &Path)>) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the {name} listener {addr}"))?;
        let Some((cert, key)) = tls else {
            return Ok(Self::Plain(listener));
        };
        let config = load_tls(cert, key).with_context(|| {
            format!(
                "loading the admin listener's certificate {} and key {}",
                cert.display(),
                key.display()
            )
        })?;
        Ok(Self::Https(listener.into_std()?, config))
    }

    /// `https` or `http`, for the ready line and logs.
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Plain(_) => "http",
            Self::Https(..) => "https",
        }
    }

    /// Serves `app` until the process ends. Handlers see each client's address; over HTTPS
    /// every request says so (`X-Forwarded-Proto: https`, whatever the client sent), so the
    /// console's cookies are `Secure`.
    pub async fn serve(self, app: Router) -> std::io::Result<()> {
        match self {
            Self::Plain(listener) => {
                let app = app.into_make_service_with_connect_info::<SocketAddr>();
                let mut server = axum_server::from_tcp(listener.into_std()?)?;
                timed(&mut server);
                server
                    .first_request_timeout(HEADER_TIMEOUT)
                    .serve(app)
                    .await
            }
            Self::Https(listener, config) => {
                let app = app
                    .layer(axum::middleware::map_request(mark_https))
                    .into_make_service_with_connect_info::<SocketAddr>();
                let mut server =
                    axum_server::from_tcp(listener)?.acceptor(OpenSSLAcceptor::new(config));
                timed(&mut server);
                server
                    .first_request_timeout(HEADER_TIMEOUT)
                    .serve(app)
                    .await
            }
        }
    }
}

/// Header deadlines for HTTP/1.1 (each request's, which also ends idle keep-alive
/// connections), and pings that end HTTP/2 connections whose peer is gone.
fn timed<A: axum_server::Address, Acc>(server: &mut axum_server::Server<A, Acc>) {
    let builder = server.http_builder();
    builder.http1().header_read_timeout(HEADER_TIMEOUT);
    builder
        .http2()
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(HEADER_TIMEOUT);
}

/// The certificate chain and key, read and checked here rather than by OpenSSL's file
/// loaders: an encrypted key would make those ask for a passphrase on the terminal and
/// block the start. TLS 1.2 and 1.3 (Mozilla's intermediate profile), h2 and http/1.1 by
/// ALPN.
fn load_tls(cert: &std::path::Path, key: &std::path::Path) -> Result<OpenSSLConfig> {
    let chain = std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
    let chain = X509::stack_from_pem(&chain).context("the certificate is not PEM")?;
    let (leaf, rest) = chain
        .split_first()
        .ok_or_else(|| anyhow!("{} holds no certificate", cert.display()))?;
    let key_pem = std::fs::read(key).with_context(|| format!("reading {}", key.display()))?;
    let key = PKey::private_key_from_pem_callback(&key_pem, |_| Ok(0)).context(
        "the key is not an unencrypted PEM private key (decrypt it: openssl pkey -in KEY -out PLAIN)",
    )?;
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    builder.set_certificate(leaf)?;
    for extra in rest {
        builder.add_extra_chain_cert(extra.clone())?;
    }
    builder
        .set_private_key(&key)
        .and_then(|()| builder.check_private_key())
        .context("the key does not match the certificate")?;
    builder.set_alpn_select_callback(|_, offered| {
        openssl::ssl::select_next_proto(b"\x02h2\x08http/1.1", offered).ok_or(AlpnError::NOACK)
    });
    Ok(OpenSSLConfig::from_acceptor(Arc::new(builder.build())))
}

async fn mark_https(mut request: Request) -> Request {
    request.headers_mut().insert(
        http::header::HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static("https"),
    );
    request
}
