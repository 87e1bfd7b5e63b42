//! A real HTTP/1.1 upstream (hyper) serving the kinds of answers compression must tell
//! apart, chosen by path:
//!
//! - `/json/N`: [`json_body`]`(N)` as `application/json` with `Content-Length`, a strong
//!   `ETag: "v1"` and `Vary: Origin`; with `If-None-Match` it answers `304` (that ETag).
//! - `/stream/CHUNKS/SIZE`: `CHUNKS` chunks of [`json_body`]`(SIZE)` each, without a length
//!   (chunked), `text/plain`.
//! - `/held/N`: one chunk of [`json_body`]`(N)`, then nothing until [`ContentServer::release`]
//!   is called, then a last chunk `end\n`: to see a stream reach the client before its end.
//! - `/encoded/N`: [`json_body`]`(N)` sent as is but labelled `Content-Encoding: gzip`.
//! - `/no-transform/N`: `Cache-Control: public, no-transform`.
//! - `/png/N`: `image/png`.
//!
//! Every answer carries the request's `Accept-Encoding` as `x-seen-accept-encoding`, so a
//! test can see the gateway never passes the client's choice on unchanged where it
//! compresses itself.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::runtime;

/// `n` bytes of JSON-like text, compressible as real API answers are (repeated keys,
/// varying numbers), the same for the same `n`.
pub fn json_body(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 64);
    let mut i = 0u64;
    while out.len() < n {
        let line = format!(
            "{{\"id\":{i},\"name\":\"item {}\",\"price\":{}.{:02},\"tags\":[\"a\",\"b{}\"]}}\n",
            i * 7919 % 1000,
            i * 31 % 977,
            i % 100,
            i % 13
        );
        out.extend_from_slice(line.as_bytes());
        i += 1;
    }
    out.truncate(n);
    out
}

/// The upstream. Dropping it stops it.
pub struct ContentServer {
    addr: SocketAddr,
    release: Arc<Notify>,
    task: JoinHandle<()>,
}

impl ContentServer {
    pub fn start() -> Result<Self> {
        let listener = runtime::handle().block_on(TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let release = Arc::new(Notify::new());
        let task = runtime::handle().spawn(accept_loop(listener, release.clone()));
        Ok(ContentServer {
            addr,
            release,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Lets a `/held/` answer send its last chunk.
    pub fn release(&self) {
        self.release.notify_one();
    }
}

impl Drop for ContentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, release: Arc<Notify>) {
    while let Ok((stream, _)) = listener.accept().await {
        let release = release.clone();
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let service = hyper::service::service_fn(move |req| handle(req, release.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn full(bytes: Vec<u8>) -> Body {
    Full::new(Bytes::from(bytes)).boxed()
}

fn streamed(chunks: Vec<Vec<u8>>, hold_before_last: Option<Arc<Notify>>) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
    tokio::spawn(async move {
        let last = chunks.len().saturating_sub(1);
        for (i, chunk) in chunks.into_iter().enumerate() {
            if i == last {
                if let Some(release) = &hold_before_last {
                    release.notified().await;
                }
            }
            if tx.send(Ok(Frame::data(Bytes::from(chunk)))).await.is_err() {
                return;
            }
        }
    });
    StreamBody::new(tokio_stream_from(rx)).boxed()
}

/// The receiver as a stream (without pulling in tokio-stream).
fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn handle(
    req: Request<Incoming>,
    release: Arc<Notify>,
) -> Result<Response<Body>, Infallible> {
    let accept = req
        .headers()
        .get("accept-encoding")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_else(|| "-".into());
    let conditional = req.headers().contains_key("if-none-match");
    let path = req.uri().path().to_owned();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let num = |i: usize| {
        parts
            .get(i)
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0)
    };
    let builder = Response::builder().header("x-seen-accept-encoding", accept);
    let response = match parts.first().copied().unwrap_or("") {
        "json" if conditional => builder
            .status(304)
            .header("etag", "\"v1\"")
            .body(full(Vec::new())),
        "json" => builder
            .header("content-type", "application/json")
            .header("etag", "\"v1\"")
            .header("vary", "Origin")
            .body(full(json_body(num(1)))),
        "stream" => builder
            .header("content-type", "text/plain; charset=utf-8")
            .body(streamed(vec![json_body(num(2)); num(1)], None)),
        "held" => builder
            .header("content-type", "text/event-stream")
            .body(streamed(
                vec![json_body(num(1)), b"end\n".to_vec()],
                Some(release),
            )),
        "encoded" => builder
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(full(json_body(num(1)))),
        "no-transform" => builder
            .header("content-type", "application/json")
            .header("cache-control", "public, no-transform")
            .body(full(json_body(num(1)))),
        "png" => builder
            .header("content-type", "image/png")
            .body(full(json_body(num(1)))),
        _ => builder.status(404).body(full(b"unknown".to_vec())),
    };
    Ok(response.unwrap_or_else(|_| Response::new(full(Vec::new()))))
}
