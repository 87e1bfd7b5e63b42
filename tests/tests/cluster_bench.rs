//! Measurements of the config feed (not timed tests: `#[ignore]`, run by
//! `scripts/bench-cluster`, which prints what they find):
//! - propagation: 100 route changes on the control node, each timed from its 2xx answer to
//!   a follower's proxy serving the new route (p50, p99, max);
//! - first full sync of 100,000 keys: a follower started against a control node holding
//!   them, timed from its start to serving the control node's revision, with its resident
//!   memory beside that of a follower of an empty control node.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use serde_json::json;
use tests::admin::{route_spec, upstream_spec};
use tests::gateway::tollgate_bin;
use tests::{http_client, send, wait_until, EchoServer, Gateway, GatewayOptions};

const CLUSTER_TOKEN: &str = "bench-cluster-token";
const CHANGES: usize = 100;
/// Keys of the full sync: `BENCH_KEYS`, else 100,000 (a debug build imports 100,000 keys
/// in minutes: use fewer there).
fn keys() -> usize {
    std::env::var("BENCH_KEYS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000)
}

fn control(data_dir: Option<&Path>) -> Result<Gateway> {
    Gateway::start(GatewayOptions {
        env: vec![("TOLLGATE_CLUSTER_TOKEN".into(), CLUSTER_TOKEN.into())],
        data_dir: data_dir.map(Path::to_owned),
        ..GatewayOptions::default()
    })
}

fn follower(control: &Gateway) -> Result<Gateway> {
    Gateway::start(GatewayOptions {
        env: vec![("TOLLGATE_CLUSTER_TOKEN".into(), CLUSTER_TOKEN.into())],
        args: vec![
            "--follow".into(),
            format!("http://{}", control.admin_addr()),
            "--access-log".into(),
            "off".into(),
        ],
        ..GatewayOptions::default()
    })
}

fn rss_mb(node: &Gateway) -> Result<f64> {
    let pid = node.pid().context("running")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS")?;
    Ok(kb / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at]
}

#[test]
#[ignore = "a measurement: scripts/bench-cluster"]
fn propagation_of_100_changes() -> Result<()> {
    let upstream = EchoServer::start("backend")?;
    let control = control(None)?;
    let admin = control.admin();
    admin.create_upstream(&upstream_spec("backend", &[upstream.addr()]))?;
    let f = follower(&control)?;
    let client = http_client();
    let mut times = Vec::with_capacity(CHANGES);
    for i in 0..CHANGES {
        let path = format!("/p{i}");
        admin.create_route(&route_spec(&format!("p{i}"), &[&path], "backend"))?;
        let acknowledged = Instant::now();
        let url = f.url(&path);
        loop {
            if send(&client, "GET", &url, &[])?.status == 200 {
                break;
            }
            ensure!(
                acknowledged.elapsed() < Duration::from_secs(10),
                "{path} never reached the follower"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        times.push(acknowledged.elapsed());
    }
    times.sort();
    println!(
        "BENCH propagation of {CHANGES} changes: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&times, 0.50).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times.last().map_or(0.0, |t| t.as_secs_f64() * 1e3),
    );
    Ok(())
}

#[test]
#[ignore = "a measurement: scripts/bench-cluster"]
fn first_full_sync_of_many_keys() -> Result<()> {
    // The baseline: a follower of an empty control node.
    let empty = control(None)?;
    let idle = follower(&empty)?;
    wait_until(
        "the idle follower connected",
        Duration::from_secs(20),
        || {
            let status = idle.admin().get("/api/v1/status")?.body;
            Ok((status["follow"]["connected"] == json!(true)).then_some(()))
        },
    )?;
    std::thread::sleep(Duration::from_secs(2)); // settle, for a fair RSS figure only
    let rss_before = rss_mb(&idle)?;
    drop(idle);
    drop(empty);

    let scratch = tempfile::tempdir()?;
    let data = scratch.path().join("control");
    std::fs::create_dir_all(&data)?;
    let file = scratch.path().join("keys.json");
    let count = keys();
    let keys: Vec<_> = (0..count)
        .map(|i| {
            json!({"id": format!("k{i:06}"), "consumer": "acme", "hash": format!("{i:064x}"),
                   "prefix": "tg_bench", "created": 1_700_000_000u64})
        })
        .collect();
    std::fs::write(
        &file,
        serde_json::to_vec(&json!({"consumers": [{"id": "acme"}], "keys": keys}))?,
    )?;
    // Not `run_cli`: a debug build takes longer than its 60 s over 100,000 keys.
    let imported = std::process::Command::new(tollgate_bin()?)
        .arg("import")
        .arg(&file)
        .arg("--data-dir")
        .arg(&data)
        .output()?;
    ensure!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let control = control(Some(&data))?;
    let revision = control.admin().get("/api/v1/status")?.body["revision"].clone();

    let started = Instant::now();
    let f = follower(&control)?;
    let ready = started.elapsed();
    wait_until(
        "the follower at the control node's revision",
        Duration::from_secs(120),
        || Ok((f.admin().get("/api/v1/status")?.body["revision"] == revision).then_some(())),
    )?;
    let synced = started.elapsed();
    let keys_held = f.admin().get("/api/v1/consumers/acme/keys")?.body;
    ensure!(
        keys_held.as_array().map(Vec::len) == Some(count),
        "the follower holds every key"
    );
    std::thread::sleep(Duration::from_secs(2)); // settle, for a fair RSS figure only
    let rss_after = rss_mb(&f)?;
    let rss_control = rss_mb(&control)?;
    println!(
        "BENCH first full sync of {count} keys: {:.2} s from start to synced (start alone {:.2} s); \
         follower RSS {rss_before:.1} MB (empty) -> {rss_after:.1} MB (+{:.1} MB); \
         the control node holding the same keys (read from disk): {rss_control:.1} MB",
        synced.as_secs_f64(),
        ready.as_secs_f64(),
        rss_after - rss_before
    );
    Ok(())
}
