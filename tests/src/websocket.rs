//! A WebSocket echo upstream and a client that talks to it through the gateway.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::runtime;

/// Echoes every text and binary message back on the same connection. Counts upgrades.
pub struct WsEchoServer {
    addr: SocketAddr,
    upgrades: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl WsEchoServer {
    pub fn start() -> Result<Self> {
        let handle = runtime::handle();
        let listener = handle.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let upgrades = Arc::new(AtomicU64::new(0));
        let counter = upgrades.clone();
        let task = handle.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                        return;
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                    while let Some(Ok(message)) = ws.next().await {
                        let reply = match message {
                            Message::Text(_) | Message::Binary(_) => message,
                            Message::Close(_) => break,
                            _ => continue,
                        };
                        if ws.send(reply).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Ok(WsEchoServer {
            addr,
            upgrades,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Completed WebSocket handshakes.
    pub fn upgrades(&self) -> u64 {
        self.upgrades.load(Ordering::SeqCst)
    }
}

impl Drop for WsEchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Opens a WebSocket to `url` (`ws://...`), sends each message in turn and collects the
/// reply to each, then closes. Every step is bounded by 10 s.
pub fn ws_exchange(url: &str, messages: Vec<Message>) -> Result<Vec<Message>> {
    let request = url
        .into_client_request()
        .context("building the WebSocket request")?;
    runtime::handle().block_on(async move {
        let step = Duration::from_secs(10);
        let (mut ws, response) =
            tokio::time::timeout(step, tokio_tungstenite::connect_async(request))
                .await
                .map_err(|_| anyhow!("the WebSocket handshake timed out"))?
                .context("the WebSocket handshake failed")?;
        if response.status().as_u16() != 101 {
            bail!(
                "expected 101 Switching Protocols, got {}",
                response.status()
            );
        }
        let mut replies = Vec::new();
        for message in messages {
            tokio::time::timeout(step, ws.send(message))
                .await
                .map_err(|_| anyhow!("sending timed out"))??;
            loop {
                let reply = tokio::time::timeout(step, ws.next())
                    .await
                    .map_err(|_| anyhow!("no reply within {step:?}"))?
                    .ok_or_else(|| anyhow!("the connection closed before a reply"))??;
                if matches!(reply, Message::Ping(_) | Message::Pong(_)) {
                    continue;
                }
                replies.push(reply);
                break;
            }
        }
        let _ = tokio::time::timeout(step, ws.close(None)).await;
        Ok(replies)
    })
}
