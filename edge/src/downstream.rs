//! Client connections: a wrapper around Pingora's HTTP proxy app that bounds the time a
//! client may take to send a complete request header.
//!
//! Pingora times out each read of the header (60 s), so a client that trickles one byte
//! at a time could hold a connection for hours. Here the whole header must arrive within
//! the header timeout (on a reused keep-alive connection: the keep-alive idle time plus the
//! header timeout); otherwise the connection is closed without an answer. The proxy signals
//! "header complete" from `early_request_filter` through a task-local flag, which the
//! deadline reads only when it fires. The deadline is the connection's [`Deadline`], kept by
//! the watchdog thread (`deadline.rs`): a request costs a flag store and a deadline store,
//! no timer of tokio's.
//!
//! Draining ([`Drain`]): once shutdown starts, new connections are closed at once, idle
//! keep-alive connections are closed, and the requests being served ([`Busy`], held by
//! each request from its header on) are counted so that shutdown can wait for them.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora_core::apps::{HttpServerApp, ServerApp};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::{Stream, ALPN};
use pingora_core::server::ShutdownWatch;
use pingora_proxy::{HttpProxy, ProxyHttp};
use tokio::sync::Notify;

use crate::deadline::Watchdog;

/// Seconds an idle keep-alive connection waits for its next request.
pub const KEEPALIVE_IDLE_SECS: u64 = 60;

tokio::task_local! {
    /// Whether the header of the connection's current request has arrived.
    static HEADER_DONE: Cell<bool>;
}

/// Called by the proxy once a request header is parsed: lifts the header deadline of the
/// current connection. A no-op outside a [`HeaderDeadline`] connection.
pub fn header_complete() {
    let _ = HEADER_DONE.try_with(|done| done.set(true));
}

/// Shutdown state of the proxy's connections.
#[derive(Debug, Default)]
pub struct Drain {
    draining: AtomicBool,
    busy: AtomicUsize,
    idle: Notify,
}

impl Drain {
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
/// deadline. HTTP/2 (only by TLS ALPN) is passed to `proxy` unchanged.
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
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            return ServerApp::process_new(&self.proxy, stream, shutdown).await;
        }
        let mut session = ServerSession::new_http1(stream);
        session.set_keepalive(if *shutdown.borrow() {
            None
        } else {
            Some(KEEPALIVE_IDLE_SECS)
        });
        let connection = async move {
            let mut limit = self.timeout;
            let deadline = self.watchdog.deadline();
            loop {
                if self.drain.is_draining() {
                    return None;
                }
                HEADER_DONE.with(|done| done.set(false));
                deadline.set(limit);
                let serve = self.proxy.process_new_http(session, shutdown);
                tokio::pin!(serve);
                let result = tokio::select! {
                    biased;
                    r = &mut serve => r,
                    () = deadline.due() => {
                        if !HEADER_DONE.with(Cell::get) {
                            return None;
                        }
                        deadline.clear();
                        serve.await
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
        HEADER_DONE.scope(Cell::new(false), connection).await
    }

    async fn cleanup(&self) {
        self.proxy.http_cleanup().await;
    }
}
