//! Active health checks: one tokio task per pool that checks every target at once, then
//! every `interval_ms` (the targets of that moment: DNS may change them). The task holds only a `Weak` to its pool and is aborted when the
//! pool is dropped, so a replaced upstream stops being checked.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use storage::{HealthCheckKind, HealthCheckSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Pool, Streak};

/// Starts the check task of `pool` on `rt`; returns the handle that stops it.
pub(super) fn spawn(
    pool: &Arc<Pool>,
    hc: HealthCheckSpec,
    rt: &tokio::runtime::Handle,
) -> tokio::task::AbortHandle {
    let weak = Arc::downgrade(pool);
    // An HTTP check over TLS is not done here: TLS upstreams are checked by TCP connect.
    let http = hc.kind == HealthCheckKind::Http && !pool.spec.tls;
    rt.spawn(run(weak, hc, http)).abort_handle()
}

/// Each round checks the targets the pool has then (a DNS refresh may have replaced
/// them); a target's streak is kept by its id, so an address that stays keeps it.
async fn run(pool: Weak<Pool>, hc: HealthCheckSpec, http: bool) {
    let mut streaks: HashMap<usize, Streak> = HashMap::new();
    let interval = Duration::from_millis(hc.interval_ms.max(10));
    let timeout = Duration::from_millis(hc.timeout_ms.max(1));
    loop {
        let Some(targets) = pool.upgrade().map(|p| p.targets()) else {
            return;
        };
        let mut checks = tokio::task::JoinSet::new();
        for (i, t) in targets.iter().enumerate() {
            let addr = t.addr;
            let path = hc.path.clone();
            let expected = hc.expected_statuses.clone();
            checks.spawn(async move {
                let ok = if http {
                    matches!(tokio::time::timeout(timeout, http_status(addr, &path)).await,
                        Ok(Ok(code)) if is_expected(code, &expected))
                } else {
                    matches!(
                        tokio::time::timeout(timeout, TcpStream::connect(addr)).await,
                        Ok(Ok(_))
                    )
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

/// Whether `code` passes: one of `expected`, or any 2xx when `expected` is empty.
pub fn is_expected(code: u16, expected: &[u16]) -> bool {
    if expected.is_empty() {
        (200..300).contains(&code)
    } else {
        expected.contains(&code)
    }
}

/// `GET path` over a fresh connection; the status code of the answer.
async fn http_status(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(addr).await?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: tollgate-health-check\r\nConnection: close\r\n\r\n"
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
