//! The store is durable: a 2xx answer survives a graceful restart and a `kill -9`.

use anyhow::Result;
use serde_json::json;
use tests::admin::upstream_spec;
use tests::{http_client, send, EchoServer, Gateway};

#[test]
fn config_survives_a_graceful_restart() -> Result<()> {
    let mut gateway = Gateway::start_default()?;
    let server = EchoServer::start("kept")?;
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("kept", &[server.addr()]))?;
    admin.create_route(
        &json!({"id": "kept", "paths": ["/kept"], "strip_prefix": "/kept", "upstream": "kept"}),
    )?;

    gateway.restart()?;

    let admin = gateway.admin();
    let route = admin
        .get("/api/v1/routes/kept")?
        .expect_status(200, "route after restart")?;
    assert_eq!(route.body["upstream"], "kept");
    assert_eq!(route.body["strip_prefix"], "/kept");
    let upstream = admin
        .get("/api/v1/upstreams/kept")?
        .expect_status(200, "upstream after restart")?;
    assert_eq!(
        upstream.body["targets"][0]["addr"],
        server.addr().to_string()
    );
    let echoed = send(&http_client(), "GET", &gateway.url("/kept/a"), &[])?.echo()?;
    assert_eq!(
        (echoed.server.as_str(), echoed.path.as_str()),
        ("kept", "/a")
    );
    Ok(())
}

#[test]
fn acknowledged_writes_survive_kill_9() -> Result<()> {
    let mut gateway = Gateway::start_default()?;
    let server = EchoServer::start("durable")?;
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("durable", &[server.addr()]))?;
    for i in 0..30 {
        admin.create_route(
            &json!({"id": format!("d{i}"), "paths": [format!("/d/{i}")], "upstream": "durable"}),
        )?;
    }
    admin.update_route(
        "d0",
        &json!({"id": "d0", "paths": ["/d/zero"], "upstream": "durable"}),
    )?;
    admin
        .delete("/api/v1/routes/d1")?
        .expect_status(204, "deleting d1")?;
    // No pause: the kill lands right after the last acknowledgement.
    gateway.kill9()?;
    gateway.start_again()?;

    let admin = gateway.admin();
    for i in 2..30 {
        admin
            .get(&format!("/api/v1/routes/d{i}"))?
            .expect_status(200, &format!("route d{i} after kill -9"))?;
    }
    let d0 = admin
        .get("/api/v1/routes/d0")?
        .expect_status(200, "route d0 after kill -9")?;
    assert_eq!(d0.body["paths"][0], "/d/zero", "the update survived");
    admin
        .get("/api/v1/routes/d1")?
        .expect_status(404, "the deleted route stays deleted")?;

    let client = http_client();
    assert_eq!(
        send(&client, "GET", &gateway.url("/d/29"), &[])?
            .echo()?
            .server,
        "durable"
    );
    assert_eq!(
        send(&client, "GET", &gateway.url("/d/zero"), &[])?
            .echo()?
            .server,
        "durable"
    );
    assert_eq!(send(&client, "GET", &gateway.url("/d/1"), &[])?.status, 404);
    Ok(())
}
