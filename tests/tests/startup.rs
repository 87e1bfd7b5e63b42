//! A listener that cannot be bound is a failed start: the process exits non-zero at once,
//! naming the address and the OS error, instead of announcing readiness (its probe
//! reaching the other process) and losing its proxy service 30 s later. nginx and Envoy
//! both refuse to start on a taken port.

use std::net::TcpListener;

use anyhow::Result;
use tests::gateway::free_ports;
use tests::run_cli;

/// `tollgate run` with the proxy, admin and metrics listeners on `ports`, to completion.
fn run_on(ports: [u16; 3]) -> Result<tests::CliOutput> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data").display().to_string();
    let listen = |port: u16| format!("127.0.0.1:{port}");
    run_cli(
        &[
            "run",
            "--data-dir",
            &data,
            "--listen",
            &listen(ports[0]),
            "--admin-listen",
            &listen(ports[1]),
            "--metrics-listen",
            &listen(ports[2]),
        ],
        &[],
    )
}

#[test]
fn a_taken_port_of_any_listener_fails_the_start() -> Result<()> {
    for (taken, name) in [(0, "proxy"), (1, "admin"), (2, "metrics")] {
        let holder = TcpListener::bind("127.0.0.1:0")?;
        let port = holder.local_addr()?.port();
        let mut ports = free_ports::<3>()?;
        ports[taken] = port;
        let out = run_on(ports)?;
        let text = out.all_output();
        assert!(
            !out.status.success(),
            "{name} port taken: must not start: {text}"
        );
        assert!(
            text.contains(&format!("127.0.0.1:{port}")) && text.contains("in use"),
            "{name} port taken: names the address and the error: {text}"
        );
        assert!(
            !text.contains("ready: proxy"),
            "{name}: never announced ready: {text}"
        );
        drop(holder);
    }
    Ok(())
}

#[test]
fn the_open_file_soft_limit_is_raised_to_the_hard_limit() -> Result<()> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    // This test binary's soft limit is lowered so the gateway inherits a soft limit below
    // its hard one (nothing else runs in this binary's process at the same time that
    // needs many descriptors).
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let low = (hard / 2).clamp(64, 1024);
    setrlimit(Resource::RLIMIT_NOFILE, low, hard)?;
    let gateway = tests::Gateway::start_default()?;
    let pid = gateway.pid().ok_or_else(|| anyhow::anyhow!("no pid"))?;
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits"))?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .ok_or_else(|| anyhow::anyhow!("no open-file line in {limits}"))?;
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(
        numbers,
        vec![hard, hard],
        "{line} (started with soft {low})"
    );
    Ok(())
}
