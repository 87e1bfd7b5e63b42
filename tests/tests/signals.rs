//! Signals as operators use them (nginx and Envoy alike): SIGUSR1 reopens the access log
//! after logrotate renamed it, SIGHUP does no harm (it reopens too), SIGQUIT stops
//! gracefully like SIGTERM. Each used to end the process on the spot.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use tests::admin::{route_spec, upstream_spec};
use tests::{http_client, send, wait_until, EchoServer, Gateway, GatewayOptions};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Waits until the log file at `path` has a line for `request_path`.
fn wait_logged(path: &Path, request_path: &str) -> Result<()> {
    let needle = format!("\"path\":\"{request_path}\"");
    wait_until(
        &format!("{request_path} in {}", path.display()),
        Duration::from_secs(10),
        || Ok(read(path).contains(&needle).then_some(())),
    )
}

#[test]
fn usr1_and_hup_reopen_a_rotated_access_log_and_quit_stops_gracefully() -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let log = scratch.path().join("access.log");
    let mut gateway = Gateway::start(GatewayOptions {
        args: vec!["--access-log".into(), log.display().to_string()],
        ..GatewayOptions::default()
    })?;
    let server = EchoServer::start("up")?;
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("up", &[server.addr()]))?;
    admin.create_route(&route_spec("all", &["/"], "up"))?;
    let client = http_client();
    let get =
        |path: &str| -> Result<u16> { Ok(send(&client, "GET", &gateway.url(path), &[])?.status) };

    assert_eq!(get("/before")?, 200);
    wait_logged(&log, "/before")?;
    for (signal, rotated, path) in [
        ("USR1", "access.log.1", "/after-usr1"),
        ("HUP", "access.log.2", "/after-hup"),
    ] {
        let rotated = scratch.path().join(rotated);
        std::fs::rename(&log, &rotated)?;
        gateway.signal(signal)?;
        wait_until(
            &format!("a new access log after SIG{signal}"),
            Duration::from_secs(10),
            || Ok(log.exists().then_some(())),
        )?;
        assert_eq!(get(path)?, 200, "still serving after SIGUSR1/SIGHUP");
        wait_logged(&log, path)?;
        assert!(
            !read(&rotated).contains(path),
            "the rotated file gets nothing after SIG{signal}: {}",
            read(&rotated)
        );
    }
    assert!(read(&scratch.path().join("access.log.1")).contains("/before"));
    assert!(!read(&log).contains("/before"));

    gateway.signal("QUIT")?;
    let status = gateway.wait_exit(Duration::from_secs(30))?;
    assert!(status.success(), "SIGQUIT stops gracefully: {status}");
    assert!(
        gateway.logs().contains("tollgate: stopped"),
        "{}",
        gateway.logs()
    );
    Ok(())
}
