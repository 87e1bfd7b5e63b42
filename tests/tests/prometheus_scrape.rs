//! A real Prometheus server scrapes the gateway and can query its request counter by route.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use tests::admin::upstream_spec;
use tests::{free_port, http_client, send, wait_until, EchoServer, Gateway};

/// `prometheus` on PATH or in /usr/bin (the Debian package). `Err` explains how to get it.
fn prometheus_bin() -> Result<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("prometheus"))
        .find(|p| p.is_file());
    match found {
        Some(path) => Ok(path),
        None => bail!(
            "the prometheus binary is missing: `apt-get install -y prometheus` (.ci/run does)"
        ),
    }
}

/// A Prometheus process killed on drop.
struct Prometheus {
    child: Child,
    port: u16,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(dir: &std::path::Path, scrape: std::net::SocketAddr) -> Result<Self> {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: tollgate\n    static_configs:\n      - targets: ['{scrape}']\n"
            ),
        )?;
        let port = free_port()?;
        let child = Command::new(prometheus_bin()?)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(File::create(dir.join("prometheus.out"))?)
            .stderr(File::create(dir.join("prometheus.err"))?)
            .spawn()
            .context("starting prometheus")?;
        Ok(Prometheus { child, port })
    }

    fn api(&self, path: &str) -> Result<Value> {
        let response = http_client()
            .get(format!("http://127.0.0.1:{}{}", self.port, path))
            .send()?;
        Ok(response.json()?)
    }
}

#[test]
fn prometheus_scrapes_request_counter_by_route() -> Result<()> {
    let gateway = Gateway::start_default()?;
    let server = EchoServer::start("svc")?;
    let admin = gateway.admin();
    admin.create_upstream(&upstream_spec("svc", &[server.addr()]))?;
    admin.create_route(&json!({"id": "scraped", "paths": ["/s"], "upstream": "svc"}))?;
    let client = http_client();
    for _ in 0..5 {
        assert_eq!(send(&client, "GET", &gateway.url("/s"), &[])?.status, 200);
    }

    let dir = gateway.scratch_dir().join("prometheus");
    std::fs::create_dir_all(&dir)?;
    let prometheus = Prometheus::start(&dir, gateway.metrics_addr())?;
    let logs = || std::fs::read_to_string(dir.join("prometheus.err")).unwrap_or_default();

    wait_until(
        "prometheus to see the gateway target up",
        Duration::from_secs(60),
        || {
            let targets = prometheus.api("/api/v1/targets")?;
            let up = targets["data"]["activeTargets"]
                .as_array()
                .is_some_and(|ts| {
                    ts.iter().any(|t| {
                        t["health"] == "up"
                            && t["scrapeUrl"]
                                .as_str()
                                .is_some_and(|u| u.contains(&gateway.metrics_addr().to_string()))
                    })
                });
            Ok(up.then_some(()))
        },
    )
    .with_context(logs)?;

    let result = wait_until(
        "the query to return the route's counter",
        Duration::from_secs(30),
        || {
            let answer = prometheus.api("/api/v1/query?query=tollgate_http_requests_total")?;
            let series = answer["data"]["result"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            Ok(series
                .into_iter()
                .find(|s| s["metric"]["route"] == "scraped"))
        },
    )
    .with_context(logs)?;
    assert_eq!(result["metric"]["method"], "GET");
    assert_eq!(result["metric"]["status"], "200");
    assert_eq!(
        result["value"][1], "5",
        "five requests were counted: {result}"
    );
    Ok(())
}
