//! SIGTERM drains: a request in flight completes, then the process exits 0.

use std::time::Duration;

use anyhow::{anyhow, Result};
use serde_json::json;
use tests::admin::upstream_spec;
use tests::{http_client, send, wait_until, EchoServer, Gateway};

#[test]
fn sigterm_finishes_the_request_in_flight_and_exits_0() -> Result<()> {
    let mut gateway = Gateway::start_default()?;
    let server = EchoServer::start("slow")?;
    server.set_delay(Duration::from_millis(1500));
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("slow", &[server.addr()]))?;
    admin.create_route(&json!({"id": "slow", "paths": ["/"], "upstream": "slow"}))?;

    let url = gateway.url("/in-flight");
    let in_flight = std::thread::spawn(move || send(&http_client(), "GET", &url, &[]));
    wait_until(
        "the request to reach the upstream",
        Duration::from_secs(20),
        || Ok((server.hits() == 1).then_some(())),
    )?;
    gateway.sigterm()?;

    let answer = in_flight
        .join()
        .map_err(|_| anyhow!("the client thread panicked"))??;
    assert_eq!(
        answer.status, 200,
        "the in-flight request completed: {}",
        answer.text
    );
    assert_eq!(answer.echo()?.path, "/in-flight");
    let status = gateway.wait_exit(Duration::from_secs(30))?;
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM: {status}\n{}",
        gateway.logs()
    );
    Ok(())
}

#[test]
fn sigterm_on_an_idle_gateway_exits_0_promptly() -> Result<()> {
    let mut gateway = Gateway::start_default()?;
    gateway.sigterm()?;
    let status = gateway.wait_exit(Duration::from_secs(30))?;
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM: {status}\n{}",
        gateway.logs()
    );
    Ok(())
}
