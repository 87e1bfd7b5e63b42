//! Serving the admin router (console, REST API, cluster feed) on its listener: plain HTTP,
//! or HTTPS with `--admin-tls-cert/--admin-tls-key` (the cluster feed carries secrets, and
//! a console reached from another host sends passwords).
//!
//! HTTPS is `axum-server`'s OpenSSL acceptor: OpenSSL is already linked for Pingora, and
//! axum-server is the maintained way to run an axum app over TLS with hyper's HTTP/1.1 and
//! HTTP/2, handshake timeouts included.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};
use axum::extract::Request;
use axum::Router;
use axum_server::tls_openssl::{OpenSSLAcceptor, OpenSSLConfig};
use http::HeaderValue;

/// The admin listener, bound, with what it serves over.
pub enum AdminListener {
    Plain(tokio::net::TcpListener),
    Https(std::net::TcpListener, OpenSSLConfig),
}

impl AdminListener {
    /// Binds `addr` and, with `tls` (certificate chain and key files), loads them: a missing
    /// file, a key that does not match, or a taken port is an error naming what failed.
    /// Call inside the admin runtime.
    pub async fn bind(addr: SocketAddr, tls: Option<(&Path, &Path)>) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the admin listener {addr}"))?;
        let Some((cert, key)) = tls else {
            return Ok(Self::Plain(listener));
        };
        let config = OpenSSLConfig::from_pem_chain_file(cert, key).with_context(|| {
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
                axum::serve(listener, app).await
            }
            Self::Https(listener, config) => {
                let app = app
                    .layer(axum::middleware::map_request(mark_https))
                    .into_make_service_with_connect_info::<SocketAddr>();
                axum_server::from_tcp(listener)?
                    .acceptor(OpenSSLAcceptor::new(config))
                    .serve(app)
                    .await
            }
        }
    }
}

async fn mark_https(mut request: Request) -> Request {
    request.headers_mut().insert(
        http::header::HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static("https"),
    );
    request
}
