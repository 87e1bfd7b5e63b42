//! An HTTPS upstream on `127.0.0.1` with a self-signed certificate for one host name
//! ([`TestCert`]): `/healthz` answers the status the test sets, anything else 200
//! `tls-ok`. Each connection carries one request.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_native_tls::native_tls;

use crate::certs::TestCert;
use crate::runtime;

#[derive(Debug, Default)]
struct State {
    hits: AtomicU64,
    health_hits: AtomicU64,
    health_status: AtomicU16,
}

/// The server; dropping it stops it and removes its certificate files.
pub struct TlsServer {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
    cert_file: PathBuf,
    /// Holds the certificate files.
    _dir: TempDir,
}

impl TlsServer {
    /// Starts a server whose certificate names `name` (CN and subjectAltName).
    pub fn start(name: &str) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("tls-upstream-").tempdir()?;
        let cert = TestCert::generate(dir.path(), name, "upstream")?;
        let identity =
            native_tls::Identity::from_pkcs8(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes())
                .context("loading the test certificate")?;
        let acceptor = tokio_native_tls::TlsAcceptor::from(
            native_tls::TlsAcceptor::new(identity).context("building the TLS acceptor")?,
        );
        let state = Arc::new(State {
            health_status: AtomicU16::new(200),
            ..State::default()
        });
        let listener =
            runtime::handle().block_on(TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))))?;
        let addr = listener.local_addr()?;
        let served = state.clone();
        let task = runtime::handle().spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, state) = (acceptor.clone(), served.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        let _ = answer(tls, &state).await;
                    }
                });
            }
        });
        Ok(TlsServer {
            addr,
            state,
            task,
            cert_file: cert.cert_file,
            _dir: dir,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PEM certificate: what a client must trust to reach it.
    pub fn cert_path(&self) -> PathBuf {
        self.cert_file.clone()
    }

    /// Requests other than `/healthz` that arrived over TLS.
    pub fn hits(&self) -> u64 {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// `/healthz` requests that arrived over TLS.
    pub fn health_hits(&self) -> u64 {
        self.state.health_hits.load(Ordering::SeqCst)
    }

    /// The status `/healthz` answers from now on (default 200).
    pub fn set_health_status(&self, status: u16) {
        self.state.health_status.store(status, Ordering::SeqCst);
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request head and answers it, then closes.
async fn answer<S>(mut s: S, state: &State) -> std::io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let path = line.split(' ').nth(1).unwrap_or_default();
    let status = if path == "/healthz" {
        state.health_hits.fetch_add(1, Ordering::SeqCst);
        state.health_status.load(Ordering::SeqCst)
    } else {
        state.hits.fetch_add(1, Ordering::SeqCst);
        200
    };
    let body = "tls-ok";
    let reply = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(reply.as_bytes()).await?;
    s.shutdown().await
}
