//! A store that lost acknowledged writes is never served as an older config: the gateway
//! refuses to start on it (non-zero exit, a message naming the store, both revisions and
//! how to recover), and `tollgate check-store` says the same without starting. etcd
//! refuses a member whose data is behind its consistent index the same way.

use std::time::Duration;

use anyhow::{ensure, Result};
use serde_json::json;
use tests::admin::upstream_spec;
use tests::gateway::free_ports;
use tests::{run_cli, EchoServer, Gateway};

/// A gateway with 51 acknowledged writes, stopped gracefully.
fn stopped_after_51_writes() -> Result<Gateway> {
    let mut gateway = Gateway::start_default()?;
    let server = EchoServer::start("up")?;
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("up", &[server.addr()]))?;
    for i in 0..50 {
        admin.create_route(
            &json!({"id": format!("r{i}"), "paths": [format!("/r/{i}")], "upstream": "up"}),
        )?;
    }
    let status = admin.get("/api/v1/status")?.expect_status(200, "status")?;
    ensure!(status.body["revision"] == 51, "{}", status.text);
    gateway.sigterm()?;
    let exit = gateway.wait_exit(Duration::from_secs(30))?;
    ensure!(exit.success(), "a graceful stop exits 0: {exit}");
    Ok(gateway)
}

/// `tollgate run` on `data_dir`, on free ports, to completion (it must not start).
fn run_on(data_dir: &std::path::Path) -> Result<tests::CliOutput> {
    let [proxy, admin, metrics] = free_ports::<3>()?;
    let dir = data_dir.display().to_string();
    let listen = |port: u16| format!("127.0.0.1:{port}");
    run_cli(
        &[
            "run",
            "--data-dir",
            &dir,
            "--listen",
            &listen(proxy),
            "--admin-listen",
            &listen(admin),
            "--metrics-listen",
            &listen(metrics),
        ],
        &[],
    )
}

#[test]
fn a_store_with_the_revisions_it_acknowledged_checks_ok() -> Result<()> {
    let gateway = stopped_after_51_writes()?;
    let dir = gateway.data_dir().display().to_string();
    let checked = run_cli(&["check-store", &dir], &[])?;
    assert_eq!(checked.code(), Some(0), "{}", checked.all_output());
    assert!(checked.stdout.contains("revision 51"), "{}", checked.stdout);
    Ok(())
}

#[test]
fn a_truncated_store_is_refused_at_start_and_by_check_store() -> Result<()> {
    let gateway = stopped_after_51_writes()?;
    let data_dir = gateway.data_dir();
    let db = data_dir.join("db");
    let len = std::fs::metadata(&db)?.len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)?
        .set_len(len / 2)?;

    let dir = data_dir.display().to_string();
    let checked = run_cli(&["check-store", &dir], &[])?;
    assert_eq!(checked.code(), Some(1), "{}", checked.all_output());
    let started = run_on(&data_dir)?;
    assert!(
        !started.status.success(),
        "the gateway must not start on a damaged store: {}",
        started.all_output()
    );
    for output in [&checked, &started] {
        let text = output.all_output();
        assert!(text.contains(&dir), "names the store: {text}");
        assert!(
            text.contains("revision 51"),
            "names what was acknowledged: {text}"
        );
        assert!(text.contains("import"), "says how to recover: {text}");
    }
    // Refusing wrote nothing: the check still refuses, with the same revisions.
    let again = run_cli(&["check-store", &dir], &[])?;
    assert_eq!(again.code(), Some(1));
    assert_eq!(again.stderr, checked.stderr);
    Ok(())
}

#[test]
fn check_store_refuses_a_directory_without_a_store() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().display().to_string();
    let checked = run_cli(&["check-store", &path], &[])?;
    assert_eq!(checked.code(), Some(1), "{}", checked.all_output());
    assert!(
        std::fs::read_dir(dir.path())?.next().is_none(),
        "nothing was created"
    );
    Ok(())
}
