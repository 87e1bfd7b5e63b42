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

/// Copies the files of directory `from` into a new directory `to` (sled's data directory
/// holds files and one level of `blobs/`).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// The routes of the store in `dir`, by `tollgate export` (which opens it as `run` does).
fn exported_routes(dir: &std::path::Path) -> Result<usize> {
    let dir = dir.display().to_string();
    let out = run_cli(&["export", "--data-dir", &dir], &[])?;
    ensure!(out.code() == Some(0), "export: {}", out.all_output());
    let config: serde_yaml::Value = serde_yaml::from_str(&out.stdout)?;
    Ok(config["routes"].as_sequence().map_or(0, Vec::len))
}

/// A change too large for one sled transaction goes through the store's journal. Killed
/// at any point of it (SIGKILL at times spread over its run), the store opens at the
/// config before or the config after, never a mix of the two.
#[test]
fn an_import_killed_at_any_point_leaves_the_old_config_or_the_new_one() -> Result<()> {
    const ROUTES: usize = 3000;
    let scratch = tempfile::tempdir()?;
    let base = scratch.path().join("base");
    let write = |name: &str, routes: std::ops::Range<usize>| -> Result<std::path::PathBuf> {
        let routes: Vec<_> = routes
            .map(|i| json!({"id": format!("r{i:05}"), "paths": [format!("/r/{i}")], "upstream": "up"}))
            .collect();
        let config = json!({"upstreams": [{"id": "up", "targets": [{"addr": "127.0.0.1:9"}]}],
                            "routes": routes});
        let file = scratch.path().join(name);
        std::fs::write(&file, serde_json::to_vec(&config)?)?;
        Ok(file)
    };
    let small = write("small.json", 0..1)?;
    let large = write("large.json", 0..ROUTES + 1)?;
    let import = |file: &std::path::Path, dir: &std::path::Path| {
        std::process::Command::new(tests::gateway::tollgate_bin()?)
            .arg("import")
            .arg(file)
            .arg("--data-dir")
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(anyhow::Error::from)
    };
    ensure!(import(&small, &base)?.wait()?.success(), "the first import");
    // How long the whole large import takes here, to spread the kills over it.
    let whole = scratch.path().join("whole");
    copy_dir(&base, &whole)?;
    let started = std::time::Instant::now();
    ensure!(
        import(&large, &whole)?.wait()?.success(),
        "the large import"
    );
    let took = started.elapsed();
    ensure!(exported_routes(&whole)? == ROUTES + 1);

    let mut outcomes = Vec::new();
    for step in 0..8u32 {
        let dir = scratch.path().join(format!("killed-{step}"));
        copy_dir(&base, &dir)?;
        let mut child = import(&large, &dir)?;
        // Not a wait for something to happen: the kill lands at a point spread over the
        // import, and whatever the point, the store must open whole.
        std::thread::sleep(took * step / 8);
        let _ = child.kill();
        child.wait()?;
        let checked = run_cli(&["check-store", &dir.display().to_string()], &[])?;
        ensure!(
            checked.code() == Some(0),
            "step {step}: {}",
            checked.all_output()
        );
        let routes = exported_routes(&dir)?;
        // The revision says which config the store holds: 1 the first, 2 the large one.
        let revision = if checked.stdout.contains("revision 2") {
            2
        } else {
            1
        };
        ensure!(
            checked.stdout.contains(&format!("revision {revision}")),
            "{}",
            checked.stdout
        );
        ensure!(
            (revision, routes) == (1, 1) || (revision, routes) == (2, ROUTES + 1),
            "step {step}: revision {revision} with {routes} routes: a mix of the two configs"
        );
        outcomes.push(routes);
    }
    eprintln!("routes after each kill: {outcomes:?} (import took {took:?})");
    Ok(())
}
