//! WebSocket upgrades pass through the gateway.

use anyhow::Result;
use serde_json::json;
use tests::admin::upstream_spec;
use tests::websocket::ws_exchange;
use tests::{Gateway, WsEchoServer};
use tokio_tungstenite::tungstenite::Message;

// Fails about one run in ten: Pingora 0.9's HTTP/1 upgrade path can take the upgrade
// request's own end-of-body for the end of the tunnel when the upstream's 101 is read
// first (cloudflare/pingora#946, open), and tears the WebSocket down right after the
// handshake. Kept, and run with `scripts/test -- --ignored`, until the gateway works
// around it; a flaky test in the suite would fail CI at random.
#[test]
#[ignore = "intermittent: cloudflare/pingora#946 tears down ~10% of upgrades"]
fn websocket_echo_passes_through_the_gateway() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let server = WsEchoServer::start()?;
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("ws", &[server.addr()]))?;
    admin.create_route(&json!({"id": "ws", "paths": ["/ws"], "upstream": "ws"}))?;

    let url = format!("ws://{}/ws/chat", gateway.proxy_addr());
    let sent = vec![
        Message::Text("hello".into()),
        Message::Binary(vec![0, 1, 2, 255]),
        Message::Text("x".repeat(70_000)),
    ];
    let replies = ws_exchange(&url, sent.clone())?;
    assert_eq!(replies, sent, "every message comes back unchanged");
    assert_eq!(server.upgrades(), 1, "one upgrade reached the upstream");
    Ok(())
}
