//! Active health checks: one tokio task per pool that checks every target at once, then
//! every `interval_ms` (the targets of that moment: DNS may change them). The task holds
//! only a `Weak` to its pool and is aborted when the pool is dropped, so a replaced
//! upstream stops being checked.
//!
//! An `http` check of a TLS upstream runs over TLS: the connection is made by Pingora's
//! own connector with the peer a request would get ([`Pool::peer`]), so the check sends
//! the same SNI and verifies the certificate as requests do (trusted roots, host name).
//! A handshake or verification failure is a failed check.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use pingora_core::connectors::TransportConnector;
use pingora_core::upstreams::peer::HttpPeer;
use storage::{HealthCheckKind, HealthCheckSpec};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Pool, Streak};

/// Starts the check task of `pool` on `rt`; returns the handle that stops it.
pub(super) fn spawn(
    pool: &Arc<Pool>,
    hc: HealthCheckSpec,
    rt: &tokio::runtime::Handle,
) -> tokio::task::AbortHandle {
    let weak = Arc::downgrade(pool);
    let probe = match hc.kind {
        HealthCheckKind::Tcp => Probe::Tcp,
        HealthCheckKind::Http if pool.spec.tls => {
            Probe::Https(Arc::new(TransportConnector::new(None)))
        }
        HealthCheckKind::Http => Probe::Http,
    };
    rt.spawn(run(weak, hc, probe)).abort_handle()
}

/// How a target is checked.
#[derive(Clone)]
enum Probe {
    /// A TCP connect.
    Tcp,
    /// `GET path` over plain TCP.
    Http,
    /// `GET path` over TLS, connected by Pingora's connector (the proxy's TLS settings).
    Https(Arc<TransportConnector>),
}

/// Each round checks the targets the pool has then (a DNS refresh may have replaced
/// them); a target's streak is kept by its id, so an address that stays keeps it.
async fn run(pool: Weak<Pool>, hc: HealthCheckSpec, probe: Probe) {
    let mut streaks: HashMap<usize, Streak> = HashMap::new();
    let interval = Duration::from_millis(hc.interval_ms.max(10));
    let timeout = Duration::from_millis(hc.timeout_ms.max(1));
    loop {
        let Some((targets, peers)) = pool.upgrade().map(|p| {
            let targets = p.targets();
            let peers: Vec<(SocketAddr, HttpPeer)> = targets
                .iter()
                .map(|t| {
                    let mut peer = p.peer(t, true);
                    // The probe speaks HTTP/1.1, also to an upstream whose requests go
                    // over HTTP/2 (ALPN offers http/1.1 only).
                    peer.options.set_http_version(1, 1);
                    (t.addr, peer)
                })
                .collect();
            (targets, peers)
        }) else {
            return;
        };
        let mut checks = tokio::task::JoinSet::new();
        for (i, (addr, peer)) in peers.into_iter().enumerate() {
            let path = hc.path.clone();
            let expected = hc.expected_statuses.clone();
            let probe = probe.clone();
            checks.spawn(async move {
                let ok =
                    match tokio::time::timeout(timeout, check(&probe, addr, &peer, &path)).await {
                        Ok(Ok(None)) => true,
                        Ok(Ok(Some(code))) => is_expected(code, &expected),
                        Ok(Err(_)) | Err(_) => false,
                    };
                (i, ok)
            });
        }
        let results = checks.join_all().await;
        let Some(p) = pool.upgrade() else {
            return;
        };
        for (i, ok) in results {
            if let Some(t) = targets.get(i) {
                p.record_check(t, ok, streaks.entry(t.id()).or_default(), &hc);
            }
        }
        let live = p.targets();
        streaks.retain(|id, _| live.iter().any(|t| t.id() == *id));
        p.update_gauges();
        drop((p, live, targets));
        tokio::time::sleep(interval).await;
    }
}

/// One check of the target at `addr` (`peer`: how a request would reach it): the HTTP
/// status it answers, `None` for a TCP check that connected.
async fn check(
    probe: &Probe,
    addr: SocketAddr,
    peer: &HttpPeer,
    path: &str,
) -> std::io::Result<Option<u16>> {
    let code = match probe {
        Probe::Tcp => return TcpStream::connect(addr).await.map(|_| None),
        Probe::Http => {
            let host = addr.to_string();
            http_status(TcpStream::connect(addr).await?, &host, path).await
        }
        Probe::Https(connector) => {
            let stream = connector
                .new_stream(peer)
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            http_status(stream, &peer.sni, path).await
        }
    };
    code.map(Some)
}

/// Whether `code` passes: one of `expected`, or any 2xx when `expected` is empty.
pub fn is_expected(code: u16, expected: &[u16]) -> bool {
    if expected.is_empty() {
        (200..300).contains(&code)
    } else {
        expected.contains(&code)
    }
}

/// `GET path` with `Host: host` on the fresh connection `s`; the status code of the
/// answer.
async fn http_status<S>(mut s: S, host: &str, path: &str) -> std::io::Result<u16>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tollgate-health-check\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = [0u8; 256];
    let mut len = 0;
    while len < buf.len() {
        let n = s.read(&mut buf[len..]).await?;
        if n == 0 {
            break;
        }
        len += n;
        if buf[..len].windows(2).any(|w| w == b"\r\n") {
            break;
        }
    }
    parse_status(&buf[..len]).ok_or_else(|| std::io::Error::other("not an HTTP status line"))
}

/// The code of an `HTTP/1.x NNN ...` status line.
pub fn parse_status(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let code = rest.get(2..5)?;
    if rest.get(1) != Some(&b' ') {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}
