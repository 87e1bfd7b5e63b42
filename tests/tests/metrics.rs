//! `/metrics` exposes the contract's metric names, and the number of series is bounded by
//! the config, never by traffic.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use tests::metrics::{parse, samples};
use tests::{http_client, send, wait_until, EchoServer, Gateway};

fn setup() -> Result<(Gateway, EchoServer)> {
    let gateway = Gateway::start_default()?;
    let server = EchoServer::start("svc")?;
    let admin = gateway.admin();
    admin.create_upstream(&json!({
        "id": "svc", "targets": [{"addr": server.addr().to_string()}],
        "health_check": {"kind": "http", "path": "/healthz", "interval_ms": 200, "timeout_ms": 200},
    }))?;
    admin.create_route(&json!({"id": "open", "paths": ["/open"], "upstream": "svc"}))?;
    admin.create_route(&json!({"id": "locked", "paths": ["/locked"], "upstream": "svc", "policies": [{"type": "key_auth"}]}))?;
    Ok((gateway, server))
}

#[test]
fn metrics_use_the_contract_names_and_labels() -> Result<()> {
    let (gateway, server) = setup()?;
    let client = http_client();
    assert_eq!(
        send(&client, "GET", &gateway.url("/open/a"), &[])?.status,
        200
    );
    assert_eq!(
        send(&client, "POST", &gateway.url("/open/b"), &[])?.status,
        200
    );
    assert_eq!(
        send(&client, "GET", &gateway.url("/locked"), &[])?.status,
        401
    );
    assert_eq!(
        send(&client, "GET", &gateway.url("/nowhere"), &[])?.status,
        404
    );
    let target = server.addr().to_string();

    let all = wait_until(
        "the health gauge of the target",
        Duration::from_secs(20),
        || {
            let all = parse(&gateway.metrics_text()?);
            let has_gauge = samples(&all, "tollgate_upstream_target_healthy")
                .iter()
                .any(|s| {
                    s.label("upstream") == Some("svc")
                        && s.label("target") == Some(target.as_str())
                        && s.value == 1.0
                });
            Ok(has_gauge.then_some(all))
        },
    )?;

    let requests = samples(&all, "tollgate_http_requests_total");
    let count = |route: &str, method: &str, status: &str| {
        requests
            .iter()
            .filter(|s| {
                s.label("route") == Some(route)
                    && s.label("method") == Some(method)
                    && s.label("status") == Some(status)
            })
            .map(|s| s.value)
            .sum::<f64>()
    };
    assert_eq!(count("open", "GET", "200"), 1.0, "{requests:?}");
    assert_eq!(count("open", "POST", "200"), 1.0, "{requests:?}");
    assert_eq!(count("locked", "GET", "401"), 1.0, "{requests:?}");
    assert_eq!(
        count("none", "GET", "404"),
        1.0,
        "an unmatched request's route is none: {requests:?}"
    );

    let duration_count = samples(&all, "tollgate_http_request_duration_seconds_count");
    assert!(
        duration_count
            .iter()
            .any(|s| s.label("route") == Some("open") && s.value >= 2.0),
        "{duration_count:?}"
    );
    let upstream_count = samples(&all, "tollgate_upstream_duration_seconds_count");
    assert!(
        upstream_count
            .iter()
            .any(|s| s.label("route") == Some("open")
                && s.label("upstream") == Some("svc")
                && s.value >= 2.0),
        "{upstream_count:?}"
    );
    let rejections = samples(&all, "tollgate_policy_rejections_total");
    assert!(
        rejections.iter().any(|s| s.label("route") == Some("locked")
            && s.label("policy") == Some("key_auth")
            && s.label("status") == Some("401")
            && s.value == 1.0),
        "{rejections:?}"
    );
    let revision = samples(&all, "tollgate_config_revision");
    assert!(
        revision.first().is_some_and(|s| s.value >= 3.0),
        "three writes so far: {revision:?}"
    );
    assert_eq!(
        samples(&all, "tollgate_config_reload_errors_total")
            .first()
            .map(|s| s.value),
        Some(0.0)
    );
    Ok(())
}

/// Every series (sample line) whose name starts with `tollgate_`.
fn tollgate_series(gateway: &Gateway) -> Result<Vec<String>> {
    Ok(gateway
        .metrics_text()?
        .lines()
        .filter(|l| l.starts_with("tollgate_"))
        .map(|l| {
            l.rsplit_once(' ')
                .map_or(l, |(series, _)| series)
                .to_owned()
        })
        .collect())
}

#[test]
fn series_stay_bounded_after_ten_thousand_distinct_paths() -> Result<()> {
    let (gateway, _server) = setup()?;
    let client = http_client();
    // One request of each kind first, so every label combination the load will use exists.
    assert_eq!(
        send(&client, "GET", &gateway.url("/open/warm"), &[])?.status,
        200
    );
    assert_eq!(
        send(&client, "GET", &gateway.url("/warm"), &[])?.status,
        404
    );
    assert_eq!(
        send(&client, "GET", &gateway.url("/locked/warm"), &[])?.status,
        401
    );
    let before = tollgate_series(&gateway)?;

    std::thread::scope(|scope| -> Result<()> {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let gateway = &gateway;
                scope.spawn(move || -> Result<()> {
                    let client = http_client();
                    for i in (w..10_000).step_by(4) {
                        let (path, expected) = match i % 3 {
                            0 => (format!("/open/p{i}"), 200),
                            1 => (format!("/unrouted/p{i}"), 404),
                            _ => (format!("/locked/p{i}"), 401),
                        };
                        let status = send(&client, "GET", &gateway.url(&path), &[])?.status;
                        anyhow::ensure!(
                            status == expected,
                            "{path}: expected {expected}, got {status}"
                        );
                    }
                    Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker
                .join()
                .map_err(|_| anyhow::anyhow!("a load worker panicked"))??;
        }
        Ok(())
    })?;

    let after = tollgate_series(&gateway)?;
    let leaked: Vec<&String> = after
        .iter()
        .filter(|s| s.contains("/p") || s.contains("unrouted"))
        .collect();
    assert!(
        leaked.is_empty(),
        "paths leaked into labels: {:?}",
        &leaked[..leaked.len().min(5)]
    );
    assert_eq!(
        after.len(),
        before.len(),
        "10,000 distinct paths added series: before {} after {}",
        before.len(),
        after.len()
    );
    let all = parse(&gateway.metrics_text()?);
    let total: f64 = samples(&all, "tollgate_http_requests_total")
        .iter()
        .map(|s| s.value)
        .sum();
    assert_eq!(total, 10_003.0, "every request was counted");
    Ok(())
}

#[test]
fn a_deleted_route_leaves_no_series() -> Result<()> {
    let (gateway, _server) = setup()?;
    let client = http_client();
    let admin = gateway.admin();
    // A route of its own, and a route of its own that a policy refuses: between them every
    // per-route metric gets a series (requests, durations, upstream time, rejections).
    assert_eq!(
        send(&client, "GET", &gateway.url("/locked/x"), &[])?.status,
        401
    );
    assert_eq!(
        send(&client, "GET", &gateway.url("/open/x"), &[])?.status,
        200
    );
    let ours = |series: &[String]| -> Vec<String> {
        series
            .iter()
            .filter(|s| s.contains("route=\"open\"") || s.contains("route=\"locked\""))
            .cloned()
            .collect()
    };
    let before = tollgate_series(&gateway)?;
    for metric in [
        "tollgate_http_requests_total",
        "tollgate_http_request_duration_seconds",
        "tollgate_upstream_duration_seconds",
        "tollgate_policy_rejections_total",
    ] {
        assert!(
            ours(&before).iter().any(|s| s.starts_with(metric)),
            "{metric} has a series of the two routes: {before:?}"
        );
    }

    for route in ["open", "locked"] {
        let answer = admin.delete(&format!("/api/v1/routes/{route}"))?;
        assert_eq!(answer.status, 204, "{}", answer.text);
    }
    let left = wait_until(
        "the deleted routes' series to go",
        Duration::from_secs(10),
        || {
            let series = tollgate_series(&gateway)?;
            Ok(ours(&series).is_empty().then_some(series))
        },
    )?;
    assert!(
        left.iter()
            .any(|s| s.starts_with("tollgate_config_revision")),
        "the other metrics stay"
    );
    Ok(())
}
