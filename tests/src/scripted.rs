//! A raw upstream that answers every request with the exact bytes a test chose (an
//! HTTP/1.0 status line, hop-by-hop fields, a `Content-Length` list, an oversized header),
//! which a real server library would not send.
//!
//! Each connection gets one answer: the server reads up to the end of the request header,
//! writes the bytes, and closes the connection (so a close-delimited body ends there).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::runtime;

/// A request header section longer than this is not answered.
const MAX_REQUEST_HEAD: usize = 64 * 1024;

/// A scripted upstream on `127.0.0.1`. Dropping it stops it.
pub struct ScriptedServer {
    addr: SocketAddr,
    hits: Arc<AtomicU64>,
    heads: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl ScriptedServer {
    /// Starts a server that answers every request with `response` on a free loopback port.
    pub fn start(response: &[u8]) -> Result<Self> {
        let listener = runtime::handle().block_on(TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let hits = Arc::new(AtomicU64::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let response: Arc<[u8]> = response.into();
        let task =
            runtime::handle().spawn(accept_loop(listener, response, hits.clone(), heads.clone()));
        Ok(ScriptedServer {
            addr,
            hits,
            heads,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests answered so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }

    /// The header section of every request received, oldest first.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().map(|h| h.clone()).unwrap_or_default()
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    response: Arc<[u8]>,
    hits: Arc<AtomicU64>,
    heads: Arc<Mutex<Vec<String>>>,
) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let (response, hits, heads) = (response.clone(), hits.clone(), heads.clone());
        tokio::spawn(async move {
            let mut head = Vec::new();
            let mut buffer = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buffer[..n]),
                }
                if head.len() > MAX_REQUEST_HEAD {
                    return;
                }
            }
            hits.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut heads) = heads.lock() {
                heads.push(String::from_utf8_lossy(&head).into_owned());
            }
            let _ = stream.write_all(&response).await;
            let _ = stream.shutdown().await;
        });
    }
}
