//! Client connections: a wrapper around Pingora's HTTP proxy app that bounds the time a
//! client may take to send a complete request header, and the time an upstream may take
//! to answer.
//!
//! Pingora times out each read of the header (60 s), so a client that trickles one byte
//! at a time could hold a connection for hours. Here the whole header must arrive within
//! the header timeout (on a reused keep-alive connection: the keep-alive idle time plus the
//! header timeout); otherwise the connection is closed without an answer. The proxy signals
//! "header complete" from `early_request_filter` through the connection's task-local state,
//! which the deadline reads only when it fires. The deadline is the connection's
//! [`Deadline`], kept by the watchdog thread (`deadline.rs`): a request costs a flag store
//! and a deadline store, no timer of tokio's.
//!
//! The same deadline times the upstream's answer on HTTP/1 client connections. Pingora's
//! per-read timeout registers a timer of its own for each response (a shared map under a
//! lock, a `Notify`, five clock reads): 0.7 µs of CPU a request, measured. Instead the
//! proxy reports the upstream socket it waits on ([`awaiting_upstream`]) and each step of
//! progress; when the deadline passes while it waits, the connection shuts that socket
//! down, Pingora's read fails at once, and the request ends as a timeout (504, see
//! [`take_upstream_timeout`]); unless the socket has bytes waiting, which means the proxy,
//! not the upstream, is behind (writing to a client that reads slowly): then the deadline
//! starts again. The shutdown runs on the connection's own task, between two
//! polls of the request, and the proxy forgets the socket ([`upstream_done`]) before it can
//! go back to the pool or be closed; the socket's addresses are checked again before the
//! shutdown all the same, so that no other connection can ever be cut. Pingora's own
//! timeouts stay for HTTP/2 clients and for tunnels.
//!
//! Draining ([`Drain`]): once shutdown starts, new connections are closed at once, idle
//! keep-alive connections are closed, and the requests being served ([`Busy`], held by
//! each request from its header on) are counted so that shutdown can wait for them.

use std::cell::Cell;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::socket::{self, SockaddrStorage};
use pingora_core::apps::{HttpServerApp, ServerApp};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::{Stream, ALPN};
use pingora_core::server::ShutdownWatch;
use pingora_proxy::{HttpProxy, ProxyHttp};
use tokio::sync::Notify;

use crate::deadline::{DeadlineHandle, Watchdog};
use crate::h2c;

/// Seconds an idle keep-alive connection waits for its next request.
pub const KEEPALIVE_IDLE_SECS: u64 = 60;

/// What the proxy tells a client connection about the request it serves.
struct Connection {
    /// Whether the header of the current request has arrived.
    header_done: Cell<bool>,
    /// The upstream socket whose answer is awaited.
    upstream: Cell<Option<Upstream>>,
    /// Whether the deadline cut the current request's upstream.
    timed_out: Cell<bool>,
    deadline: DeadlineHandle,
}

#[derive(Debug, Clone, Copy)]
struct Upstream {
    fd: RawFd,
    /// The socket's own and its peer's address, to check that `fd` is still that socket.
    local: SocketAddr,
    peer: SocketAddr,
    read_timeout: Duration,
}

tokio::task_local! {
    static CONNECTION: Connection;
}

impl Connection {
    /// A new request on the connection: the header must arrive within `limit`.
    fn next_request(&self, limit: Duration) {
        self.header_done.set(false);
        self.upstream.set(None);
        self.timed_out.set(false);
        self.deadline.set(limit);
    }

    /// The deadline passed; `false`: close the connection (its header is late).
    fn on_deadline(&self) -> bool {
        if !self.header_done.get() {
            return false;
        }
        self.deadline.clear();
        let Some(upstream) = self.upstream.take() else {
            return true;
        };
        if !upstream.is_still_open() {
            return true;
        }
        if upstream.has_input() {
            // The upstream did send: the proxy is held up elsewhere (writing to a client
            // that reads slowly), which is no upstream timeout. Pingora's per-read timeout
            // would not count that time either.
            self.upstream.set(Some(upstream));
            self.deadline.set(upstream.read_timeout);
            return true;
        }
        self.timed_out.set(true);
        // Fails the pending read or write on it; an error here means it was closed already.
        let _ = socket::shutdown(upstream.fd, socket::Shutdown::Both);
        true
    }
}

impl Upstream {
    /// Whether `fd` is still the socket between the same two addresses (two syscalls,
    /// only when a deadline passes).
    fn is_still_open(&self) -> bool {
        addresses(self.fd) == Some((self.local, self.peer))
    }

    /// Whether the socket has bytes (or the end of the stream) waiting to be read.
    fn has_input(&self) -> bool {
        let mut byte = [0u8; 1];
        let flags = socket::MsgFlags::MSG_PEEK | socket::MsgFlags::MSG_DONTWAIT;
        socket::recv(self.fd, &mut byte, flags).is_ok()
    }
}

/// The local and peer address of socket `fd` (two syscalls); `None` if it is not an open
/// TCP socket.
fn addresses(fd: RawFd) -> Option<(SocketAddr, SocketAddr)> {
    let addr = |a: nix::Result<SockaddrStorage>| a.ok().and_then(|a| to_std(&a));
    Some((
        addr(socket::getsockname(fd))?,
        addr(socket::getpeername(fd))?,
    ))
}

fn to_std(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

/// Called by the proxy once a request header is parsed: lifts the header deadline of the
/// current connection. A no-op outside a [`HeaderDeadline`] connection.
pub fn header_complete() {
    let _ = CONNECTION.try_with(|c| c.header_done.set(true));
}

/// Whether the current connection's deadline times the upstream's answers (an HTTP/1
/// client connection); if not, Pingora's read timeouts must.
pub fn times_upstream() -> bool {
    CONNECTION.try_with(|_| ()).is_ok()
}

/// The request was sent, or is being sent, on upstream socket `fd` (from `local` to
/// `peer`, as Pingora's socket digest knows them; asked of the socket when it does not):
/// the upstream must answer within `read_timeout`, and each later step as well
/// ([`upstream_progress`]).
pub fn awaiting_upstream(
    fd: RawFd,
    local: Option<SocketAddr>,
    peer: Option<SocketAddr>,
    read_timeout: Duration,
) {
    let Some((local, peer)) = local.zip(peer).or_else(|| addresses(fd)) else {
        // Not an open TCP socket (targets are TCP addresses): closed, so Pingora fails it.
        return;
    };
    let _ = CONNECTION.try_with(|c| {
        c.upstream.set(Some(Upstream {
            fd,
            local,
            peer,
            read_timeout,
        }));
        c.deadline.set(read_timeout);
    });
}

/// The exchange moved on (a chunk of the request body went out, a response header or
/// body chunk came in): the upstream's read timeout starts again.
pub fn upstream_progress() {
    let _ = CONNECTION.try_with(|c| {
        if let Some(upstream) = c.upstream.get() {
            c.deadline.set(upstream.read_timeout);
        }
    });
}

/// The upstream's part is over (its answer is complete, or the exchange failed): its
/// socket may go back to the pool or be closed, so it is forgotten.
pub fn upstream_done() {
    let _ = CONNECTION.try_with(|c| {
        if c.upstream.take().is_some() {
            c.deadline.clear();
        }
    });
}

/// Whether the deadline cut the current request's upstream; clears the mark.
pub fn take_upstream_timeout() -> bool {
    CONNECTION
        .try_with(|c| c.timed_out.replace(false))
        .unwrap_or(false)
}

/// Shutdown state of the proxy's connections.
#[derive(Debug, Default)]
pub struct Drain {
    draining: AtomicBool,
    busy: AtomicUsize,
    idle: Notify,
    /// Set by the first connection the proxy accepts: what the readiness probe reached
    /// is this process's listener, not another one on the same port.
    accepting: AtomicBool,
}

impl Drain {
    /// Records that the proxy has accepted a connection (cheap after the first).
    pub fn mark_accepting(&self) {
        if !self.accepting.load(Ordering::Relaxed) {
            self.accepting.store(true, Ordering::Release);
        }
    }

    /// Whether the proxy has accepted a connection.
    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::Acquire)
    }

    /// Stops taking requests: new connections and idle keep-alive ones are closed.
    pub fn start(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Requests whose header has arrived and whose response is not finished.
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::Acquire)
    }

    /// Waits until no request is being served, or `timeout`. Returns whether it drained.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let wait = async {
            loop {
                let idle = self.idle.notified();
                if self.busy() == 0 {
                    return;
                }
                idle.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    /// Counts a request being served until the guard is dropped.
    pub fn enter(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }
}

/// One request being served; leaves the count on drop.
#[derive(Debug)]
pub struct Busy(Arc<Drain>);

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// A Pingora `ServerApp` that serves HTTP/1 connections through `proxy` with a header
/// deadline. HTTP/2 (by TLS ALPN, or with prior knowledge on the plain listener) is passed
/// to `proxy` unchanged.
pub struct HeaderDeadline<SV: ProxyHttp> {
    proxy: Arc<HttpProxy<SV>>,
    timeout: Duration,
    drain: Arc<Drain>,
    watchdog: Watchdog,
}

impl<SV: ProxyHttp> HeaderDeadline<SV> {
    pub fn new(
        proxy: HttpProxy<SV>,
        timeout: Duration,
        drain: Arc<Drain>,
        watchdog: Watchdog,
    ) -> Self {
        HeaderDeadline {
            proxy: Arc::new(proxy),
            timeout,
            drain,
            watchdog,
        }
    }
}

#[async_trait]
impl<SV> ServerApp for HeaderDeadline<SV>
where
    SV: ProxyHttp + Send + Sync + 'static,
    <SV as ProxyHttp>::CTX: Send + Sync,
{
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        self.drain.mark_accepting();
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            return ServerApp::process_new(&self.proxy, stream, shutdown).await;
        }
        let mut stream = stream;
        if stream.get_ssl_digest().is_none() {
            // HTTP/2 with prior knowledge (h2c) on the plain listener. A client that says
            // nothing within the header deadline is dropped, as HTTP/1 would drop it.
            match tokio::time::timeout(self.timeout, h2c::has_preface(&mut stream)).await {
                Ok(Ok(true)) => return ServerApp::process_new(&self.proxy, stream, shutdown).await,
                Ok(Ok(false)) => {}
                Ok(Err(_)) | Err(_) => return None,
            }
        }
        let mut session = ServerSession::new_http1(stream);
        // Requests a client sends before it has its answers (pipelining, RFC 9112 9.3.2) are
        // answered one after the other, in order, as nginx does; off by default in Pingora,
        // which then answers the first and closes. Pingora carries the setting, and the
        // bytes already read, to the connection's next session (`HttpPersistentSettings`).
        session.set_pipelining_enabled(true);
        session.set_keepalive(if *shutdown.borrow() {
            None
        } else {
            Some(KEEPALIVE_IDLE_SECS)
        });
        let deadline = self.watchdog.deadline();
        let state = Connection {
            header_done: Cell::new(false),
            upstream: Cell::new(None),
            timed_out: Cell::new(false),
            deadline: deadline.handle().clone(),
        };
        let connection = async move {
            let mut limit = self.timeout;
            loop {
                if self.drain.is_draining() {
                    return None;
                }
                CONNECTION.with(|c| c.next_request(limit));
                let serve = self.proxy.process_new_http(session, shutdown);
                tokio::pin!(serve);
                let result = loop {
                    tokio::select! {
                        biased;
                        r = &mut serve => break r,
                        () = deadline.due() => {
                            if !CONNECTION.with(Connection::on_deadline) {
                                return None;
                            }
                        }
                    }
                };
                let (stream, settings) = result?.consume();
                session = ServerSession::new_http1(stream);
                if let Some(settings) = settings {
                    settings.apply_to_session(&mut session);
                }
                limit = Duration::from_secs(KEEPALIVE_IDLE_SECS) + self.timeout;
            }
        };
        CONNECTION.scope(state, connection).await
    }

    async fn cleanup(&self) {
        self.proxy.http_cleanup().await;
    }
}
