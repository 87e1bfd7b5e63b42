//! A full disk is visible and recoverable: on a small tmpfs data directory filled to the
//! last byte, admin writes answer 500 naming the store problem (and change nothing), the
//! status and the metrics say the store cannot write, the proxy keeps serving; once the
//! space is freed, writes succeed again without a restart and the status turns ok.
//! (nginx has no writable config store; etcd answers `NOSPACE` and needs an operator to
//! disarm the alarm: here recovery is automatic.)

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;
use tests::admin::{route_spec, upstream_spec};
use tests::metrics::{parse, samples};
use tests::tmpfs::Tmpfs;
use tests::{wait_until, Admin, ApiResponse, EchoServer, Gateway, GatewayOptions};

const FILLER: &str = "filler";

/// A tmpfs data directory, or `None` (the test skips) when not root.
fn small_disk() -> Result<Option<Tmpfs>> {
    let disk = Tmpfs::mount(12)?;
    if disk.is_none() {
        eprintln!("skipped: mounting a tmpfs needs root");
    }
    Ok(disk)
}

fn start_on(disk: &Tmpfs) -> Result<Gateway> {
    let data = disk.path().join("data");
    std::fs::create_dir_all(&data)?;
    Gateway::start(GatewayOptions {
        data_dir: Some(data),
        ..GatewayOptions::default()
    })
}

fn create_route(admin: &Admin, id: &str) -> Result<ApiResponse> {
    admin.post(
        "/api/v1/routes",
        &route_spec(id, &[&format!("/{id}")], "up"),
    )
}

/// Fills the disk, then creates routes `{prefix}0`, `{prefix}1`… until one is refused
/// (sled's log may still take a few in the page it has). Returns the refused id and answer.
fn fill_until_refused(disk: &Tmpfs, admin: &Admin, prefix: &str) -> Result<(String, ApiResponse)> {
    disk.fill(FILLER)?;
    for i in 0..200 {
        let id = format!("{prefix}{i}");
        let answer = create_route(admin, &id)?;
        match answer.status {
            201 => continue,
            500 => return Ok((id, answer)),
            other => bail!("creating {id} on a full disk: {other}: {}", answer.text),
        }
    }
    bail!("no write was refused on a full disk")
}

fn store_status(admin: &Admin) -> Result<Value> {
    let status = admin.get("/api/v1/status")?.expect_status(200, "status")?;
    Ok(status.body)
}

fn metric(gateway: &Gateway, name: &str, op: Option<&str>) -> Result<f64> {
    let all = parse(&gateway.metrics_text()?);
    samples(&all, name)
        .into_iter()
        .find(|s| s.label("op") == op)
        .map(|s| s.value)
        .with_context(|| format!("no {name} {op:?}"))
}

fn route_count(admin: &Admin) -> Result<u64> {
    let routes = admin.get("/api/v1/routes")?.expect_status(200, "routes")?;
    let n = routes
        .body
        .as_array()
        .map(Vec::len)
        .context("a list of routes")?;
    Ok(n as u64)
}

#[test]
fn a_full_disk_refuses_writes_visibly_and_writes_resume_once_space_is_freed() -> Result<()> {
    let Some(disk) = small_disk()? else {
        return Ok(());
    };
    let mut gateway = start_on(&disk)?;
    let server = EchoServer::start("up")?;
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("up", &[server.addr()]))?;
    create_route(&admin, "before")?.expect_status(201, "a route before")?;
    let status = store_status(&admin)?;
    ensure!(status["store"]["ok"] == true, "{status}");
    ensure!(status["store"]["errors"] == 0, "{status}");
    ensure!(metric(&gateway, "tollgate_store_ok", None)? == 1.0);

    let (_, answer) = fill_until_refused(&disk, &admin, "r")?;
    let error = answer.body["error"].as_str().unwrap_or_default();
    ensure!(
        error.contains("cannot write") && error.contains("No space left on device"),
        "the answer names the store problem: {}",
        answer.text
    );
    let status = store_status(&admin)?;
    let store = &status["store"];
    ensure!(store["ok"] == false, "{status}");
    ensure!(store["errors"].as_u64() >= Some(1), "{status}");
    ensure!(store["last_error_at"].is_u64(), "{status}");
    ensure!(
        store["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("No space left on device")),
        "{status}"
    );
    ensure!(metric(&gateway, "tollgate_store_ok", None)? == 0.0);
    ensure!(metric(&gateway, "tollgate_store_errors_total", Some("write"))? >= 1.0);
    // The proxy still serves, and says it is healthy: the store is not the proxy.
    let before = reqwest::blocking::get(gateway.url("/before"))?;
    ensure!(before.status() == 200, "{}", before.status());
    let healthz = reqwest::blocking::get(format!("http://{}/healthz", gateway.admin_addr()))?;
    ensure!(healthz.status() == 200, "{}", healthz.status());

    // Refused again while the disk is full, and nothing changes.
    let revision = status["revision"].clone();
    let again = create_route(&admin, "again")?;
    ensure!(again.status == 500, "{}: {}", again.status, again.text);
    ensure!(store_status(&admin)?["revision"] == revision);
    admin
        .get("/api/v1/routes/again")?
        .expect_status(404, "a refused route is not stored")?;

    std::fs::remove_file(disk.path().join(FILLER))?;
    create_route(&admin, "after")?.expect_status(201, "a write once space is freed")?;
    let status = store_status(&admin)?;
    ensure!(status["store"]["ok"] == true, "{status}");
    ensure!(metric(&gateway, "tollgate_store_ok", None)? == 1.0);
    // One revision per stored object (the upstream, each route): no gap, no double, whether
    // or not the first refused write reached the disk after all.
    ensure!(
        status["revision"].as_u64() == Some(1 + route_count(&admin)?),
        "{status}"
    );
    wait_until("the new route is served", Duration::from_secs(10), || {
        let answer = reqwest::blocking::get(gateway.url("/after"))?;
        Ok((answer.status() == 200).then_some(()))
    })?;

    // Full again, then freed with no write: the periodic probe recovers the store.
    fill_until_refused(&disk, &admin, "s")?;
    ensure!(store_status(&admin)?["store"]["ok"] == false);
    std::fs::remove_file(disk.path().join(FILLER))?;
    wait_until(
        "the store recovers on its own",
        Duration::from_secs(20),
        || Ok((store_status(&admin)?["store"]["ok"] == true).then_some(())),
    )
    .with_context(|| {
        format!(
            "{:?}\n{}",
            store_status(&admin).map(|s| s["store"].clone()),
            gateway.stderr()
        )
    })?;

    // Logged once, however many failures: the rest wait for the minute's summary.
    let errors = store_status(&admin)?["store"]["errors"]
        .as_u64()
        .unwrap_or(0);
    let logged = gateway
        .stderr()
        .lines()
        .filter(|l| l.contains("the store cannot write"))
        .count();
    ensure!(
        errors >= 3 && logged == 1,
        "{errors} errors, {logged} lines logged"
    );

    // What was acknowledged survives a restart on the same disk.
    let (revision, routes) = (
        store_status(&admin)?["revision"].clone(),
        route_count(&admin)?,
    );
    gateway.sigterm()?;
    let exit = gateway.wait_exit(Duration::from_secs(30))?;
    ensure!(
        exit.success(),
        "a stop with a healthy store exits 0: {exit}"
    );
    gateway.start_again()?;
    let admin = gateway.admin();
    ensure!(store_status(&admin)?["revision"] == revision);
    ensure!(route_count(&admin)? == routes);
    drop(gateway);
    drop(disk);
    Ok(())
}

#[test]
fn a_stop_that_cannot_flush_the_store_exits_non_zero() -> Result<()> {
    let Some(disk) = small_disk()? else {
        return Ok(());
    };
    let mut gateway = start_on(&disk)?;
    let server = EchoServer::start("up")?;
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("up", &[server.addr()]))?;
    fill_until_refused(&disk, &admin, "r")?;
    gateway.sigterm()?;
    let exit = gateway.wait_exit(Duration::from_secs(30))?;
    ensure!(!exit.success(), "the store could not be flushed: {exit}");
    ensure!(
        gateway.stderr().contains("flushing the store"),
        "{}",
        gateway.stderr()
    );
    drop(gateway);
    drop(disk);
    Ok(())
}

#[test]
fn space_freed_while_writes_race_keeps_every_acknowledged_write_and_no_gap() -> Result<()> {
    let Some(disk) = small_disk()? else {
        return Ok(());
    };
    let mut gateway = start_on(&disk)?;
    let server = EchoServer::start("up")?;
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("up", &[server.addr()]))?;
    disk.fill(FILLER)?;

    let writer = admin.clone();
    let (refused_tx, refused_rx) = std::sync::mpsc::channel();
    let writes = std::thread::spawn(move || -> Result<Vec<(String, u16)>> {
        let mut answers = Vec::new();
        for i in 0..80 {
            let id = format!("w{i}");
            let status = create_route(&writer, &id)?.status;
            if status == 500 {
                let _ = refused_tx.send(());
            }
            answers.push((id, status));
        }
        Ok(answers)
    });
    // Free the space once writes are being refused, while they keep coming.
    refused_rx
        .recv_timeout(Duration::from_secs(30))
        .context("no write was refused on a full disk")?;
    std::fs::remove_file(disk.path().join(FILLER))?;
    let answers = writes
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))??;
    ensure!(
        answers.iter().all(|(_, s)| *s == 201 || *s == 500),
        "{answers:?}"
    );
    ensure!(
        answers.last().map(|(_, s)| *s) == Some(201),
        "writes resume once space is freed: {answers:?}"
    );

    let check = |admin: &Admin| -> Result<u64> {
        let revision = store_status(admin)?["revision"]
            .as_u64()
            .context("revision")?;
        ensure!(
            revision == 1 + route_count(admin)?,
            "one revision per object"
        );
        for (id, status) in &answers {
            if *status == 201 {
                admin
                    .get(&format!("/api/v1/routes/{id}"))?
                    .expect_status(200, "an acknowledged route")?;
            }
        }
        Ok(revision)
    };
    let revision = check(&admin)?;
    gateway.sigterm()?;
    let exit = gateway.wait_exit(Duration::from_secs(30))?;
    ensure!(exit.success(), "{exit}");
    let acknowledged = std::fs::read_to_string(gateway.data_dir().join("acknowledged-revision"))?;
    ensure!(
        acknowledged.trim() == revision.to_string(),
        "{acknowledged}"
    );
    gateway.start_again()?;
    ensure!(check(&gateway.admin())? == revision);
    drop(gateway);
    drop(disk);
    Ok(())
}
