//! A real HTTP/1.1 upstream (hyper on the harness runtime) that echoes what it received.
//!
//! Every request but `GET /healthz` answers 200 with a JSON [`Echoed`] (server name,
//! method, path, query, headers, body length), counts as a hit and waits the configured
//! delay first (`/bytes/N` answers N bytes of `x` instead). `/healthz` answers the
//! configured health status at once and is counted apart, so the hit counter shows exactly
//! what the gateway forwarded.
//! The answer can be shaped for cache tests: extra headers ([`EchoServer::set_headers`]),
//! another status ([`EchoServer::set_status`]), and an `ETag` that a matching
//! `If-None-Match` gets a `304` for ([`EchoServer::set_etag`]).
//! [`EchoServer::kill`] closes the listener and every open connection;
//! [`EchoServer::restart`] listens on the same port again.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::runtime;

/// What the echo server saw, as it sends it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Echoed {
    pub server: String,
    pub method: String,
    pub path: String,
    /// The query string without `?`; empty when there is none.
    pub query: String,
    /// Header names lower-case; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    pub body_len: usize,
}

impl Echoed {
    /// The value of header `name` (lower-case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

struct State {
    name: String,
    hits: AtomicU64,
    health_hits: AtomicU64,
    delay_ms: AtomicU64,
    health_status: AtomicU16,
    seen: Mutex<Vec<Echoed>>,
    /// Shapes of the answers (cache tests).
    answer: Mutex<Shape>,
    not_modified: AtomicU64,
}

/// What non-health answers look like besides the echo body.
#[derive(Debug, Clone, Default)]
struct Shape {
    status: Option<u16>,
    headers: Vec<(String, String)>,
    etag: Option<String>,
}

struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// An echo upstream on `127.0.0.1`. Dropping it kills it.
pub struct EchoServer {
    state: Arc<State>,
    addr: SocketAddr,
    running: Mutex<Option<Running>>,
}

impl EchoServer {
    /// Starts a server named `name` on a free loopback port.
    pub fn start(name: &str) -> Result<Self> {
        let state = Arc::new(State {
            name: name.to_owned(),
            hits: AtomicU64::new(0),
            health_hits: AtomicU64::new(0),
            delay_ms: AtomicU64::new(0),
            health_status: AtomicU16::new(200),
            seen: Mutex::new(Vec::new()),
            answer: Mutex::new(Shape::default()),
            not_modified: AtomicU64::new(0),
        });
        let listener = runtime::handle().block_on(bind(SocketAddr::from(([127, 0, 0, 1], 0))))?;
        let addr = listener.local_addr()?;
        let server = EchoServer {
            state,
            addr,
            running: Mutex::new(None),
        };
        server.serve(listener)?;
        Ok(server)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// Requests received other than `/healthz`, counted on arrival (before the delay).
    pub fn hits(&self) -> u64 {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// `/healthz` requests received.
    pub fn health_hits(&self) -> u64 {
        self.state.health_hits.load(Ordering::SeqCst)
    }

    /// Every non-health request received so far, oldest first.
    pub fn seen(&self) -> Vec<Echoed> {
        self.state
            .seen
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Makes every later non-health request wait `delay` before answering.
    pub fn set_delay(&self, delay: Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// The status `/healthz` answers from now on (default 200).
    pub fn set_health_status(&self, status: u16) {
        self.state.health_status.store(status, Ordering::SeqCst);
    }

    /// Every later non-health answer carries `headers` (replacing the last set).
    pub fn set_headers(&self, headers: &[(&str, &str)]) {
        if let Ok(mut shape) = self.state.answer.lock() {
            shape.headers = headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
        }
    }

    /// Every later non-health answer has this status (default 200).
    pub fn set_status(&self, status: u16) {
        if let Ok(mut shape) = self.state.answer.lock() {
            shape.status = Some(status);
        }
    }

    /// Later answers carry `ETag: etag`; a request with `If-None-Match: etag` then gets a
    /// `304` with no body (counted by [`EchoServer::not_modified`]). `None`: no ETag.
    pub fn set_etag(&self, etag: Option<&str>) {
        if let Ok(mut shape) = self.state.answer.lock() {
            shape.etag = etag.map(str::to_owned);
        }
    }

    /// `304` answers sent so far.
    pub fn not_modified(&self) -> u64 {
        self.state.not_modified.load(Ordering::SeqCst)
    }

    /// Whether it is listening now.
    pub fn is_running(&self) -> bool {
        self.running.lock().map(|r| r.is_some()).unwrap_or(false)
    }

    /// Closes the listener and every open connection (in-flight requests get no answer);
    /// when this returns, the port refuses connections.
    pub fn kill(&self) -> Result<()> {
        let running = self.running.lock().map_err(|_| anyhow!("poisoned"))?.take();
        if let Some(running) = running {
            let _ = running.stop.send(true);
            runtime::handle()
                .block_on(running.task)
                .context("the echo server's accept loop panicked")?;
        }
        Ok(())
    }

    /// Listens again on the same port (after [`EchoServer::kill`]).
    pub fn restart(&self) -> Result<()> {
        self.kill()?;
        let listener = runtime::handle()
            .block_on(bind(self.addr))
            .with_context(|| format!("rebinding {}", self.addr))?;
        self.serve(listener)
    }

    fn serve(&self, listener: TcpListener) -> Result<()> {
        let (stop, stopped) = watch::channel(false);
        let task = runtime::handle().spawn(accept_loop(listener, self.state.clone(), stopped));
        *self.running.lock().map_err(|_| anyhow!("poisoned"))? = Some(Running { stop, task });
        Ok(())
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket
        .bind(addr)
        .with_context(|| format!("binding {addr}"))?;
    Ok(socket.listen(1024)?)
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, mut stopped: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = state.clone();
                connections.spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .with_upgrades()
                        .await;
                });
            }
            // Reap finished connections so the set does not grow under long loads.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    // Aborting drops each connection's socket: the peer sees the connection close.
    connections.shutdown().await;
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() == "/healthz" {
        state.health_hits.fetch_add(1, Ordering::SeqCst);
        let status = state.health_status.load(Ordering::SeqCst);
        return Ok(Response::builder()
            .status(status)
            .body(Full::new(Bytes::from_static(b"health")))
            .unwrap_or_default());
    }
    state.hits.fetch_add(1, Ordering::SeqCst);
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let body_len = match req.into_body().collect().await {
        Ok(body) => body.to_bytes().len(),
        Err(_) => 0,
    };
    let echoed = Echoed {
        server: state.name.clone(),
        method,
        path,
        query,
        headers,
        body_len,
    };
    if let Ok(mut seen) = state.seen.lock() {
        seen.push(echoed.clone());
    }
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let shape = state.answer.lock().map(|s| s.clone()).unwrap_or_default();
    let shaped = |mut builder: hyper::http::response::Builder| {
        for (name, value) in &shape.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(etag) = &shape.etag {
            builder = builder.header("etag", etag.as_str());
        }
        builder
    };
    if let Some(etag) = &shape.etag {
        if echoed.header("if-none-match") == Some(etag.as_str()) {
            state.not_modified.fetch_add(1, Ordering::SeqCst);
            return Ok(shaped(Response::builder().status(304))
                .body(Full::new(Bytes::new()))
                .unwrap_or_default());
        }
    }
    let status = shape.status.unwrap_or(200);
    // `/bytes/N`: N bytes of `x` instead of the echo, for large answers.
    if let Some(n) = echoed
        .path
        .strip_prefix("/bytes/")
        .and_then(|n| n.parse::<usize>().ok())
    {
        return Ok(shaped(Response::builder())
            .status(status)
            .header("content-type", "application/octet-stream")
            .body(Full::new(Bytes::from(vec![b'x'; n])))
            .unwrap_or_default());
    }
    let body = serde_json::to_vec(&echoed).unwrap_or_default();
    Ok(shaped(Response::builder())
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default())
}
