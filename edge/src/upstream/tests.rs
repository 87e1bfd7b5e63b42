use super::*;
use storage::{HealthCheckSpec, TargetSpec};

/// An upstream `up` on `addrs` (no health check, short timeouts); the DNS tests use it too.
pub(super) fn spec(balancing: Balancing, addrs: &[&str]) -> UpstreamSpec {
    UpstreamSpec {
        id: "up".to_owned(),
        targets: addrs
            .iter()
            .map(|a| TargetSpec {
                addr: (*a).to_owned(),
                weight: 1,
            })
            .collect(),
        balancing,
        hash_on: None,
        health_check: None,
        connect_timeout_ms: 100,
        read_timeout_ms: 100,
        retries: 1,
        tls: false,
        sni: None,
        protocol: Default::default(),
        dns_refresh_secs: 30,
    }
}

fn pool(balancing: Balancing, addrs: &[&str]) -> Arc<Pool> {
    let metrics = Metrics::new().expect("metrics");
    Pool::compile(&spec(balancing, addrs), &metrics, None).expect("pool")
}

/// The id of the target `p.select` picks (ids are positions in an IP-only pool).
fn pick(p: &Arc<Pool>, key: &[u8], tried: &[usize], now: u64) -> Option<usize> {
    p.select(key, tried, now).map(|f| f.id())
}

const THREE: [&str; 3] = ["127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003"];

#[test]
fn round_robin_spreads_evenly_over_targets() {
    let p = pool(Balancing::RoundRobin, &THREE);
    let mut counts = [0; 3];
    for _ in 0..300 {
        counts[pick(&p, b"", &[], 0).expect("target")] += 1;
    }
    assert_eq!(counts, [100, 100, 100]);
}

#[test]
fn weights_shift_round_robin_traffic() {
    let mut s = spec(Balancing::RoundRobin, &THREE[..2]);
    s.targets[0].weight = 3;
    let p = Pool::compile(&s, &Metrics::new().expect("metrics"), None).expect("pool");
    let first = (0..400)
        .filter(|_| pick(&p, b"", &[], 0) == Some(0))
        .count();
    assert_eq!(first, 300);
}

#[test]
fn consistent_hash_sends_a_key_to_the_same_target() {
    let p = pool(Balancing::ConsistentHash, &THREE);
    let a = pick(&p, b"client-a", &[], 0);
    for _ in 0..20 {
        assert_eq!(pick(&p, b"client-a", &[], 0), a);
    }
    let spread: std::collections::HashSet<_> = (0..200)
        .map(|i| pick(&p, format!("k{i}").as_bytes(), &[], 0))
        .collect();
    assert!(spread.len() > 1, "{spread:?}");
}

#[test]
fn least_connections_prefers_the_idlest_target() {
    let p = pool(Balancing::LeastConnections, &THREE);
    let _a = p.hold(0);
    let _b = p.hold(0);
    let _c = p.hold(2);
    assert_eq!(pick(&p, b"", &[], 0), Some(1));
    let _d = p.hold(1);
    let _e = p.hold(1);
    assert_eq!(pick(&p, b"", &[], 0), Some(2));
}

#[test]
fn dropping_the_guard_releases_in_flight() {
    let p = pool(Balancing::LeastConnections, &THREE[..2]);
    let g = p.hold(0);
    assert_eq!(pick(&p, b"", &[], 0), Some(1));
    drop(g);
    let _h = p.hold(1);
    assert_eq!(pick(&p, b"", &[], 0), Some(0));
}

#[test]
fn retries_pick_a_target_not_tried_yet() {
    for b in [
        Balancing::RoundRobin,
        Balancing::Random,
        Balancing::ConsistentHash,
        Balancing::LeastConnections,
    ] {
        let p = pool(b, &THREE);
        let first = pick(&p, b"k", &[], 0).expect("first");
        let second = pick(&p, b"k", &[first], 0).expect("second");
        assert_ne!(first, second, "{b:?}");
        let third = pick(&p, b"k", &[first, second], 0).expect("third");
        assert!(third != first && third != second, "{b:?}");
        assert_eq!(pick(&p, b"k", &[0, 1, 2], 0), None, "{b:?}");
    }
}

#[test]
fn connect_failure_ejects_for_the_cooldown_without_active_check() {
    let p = pool(Balancing::RoundRobin, &THREE[..2]);
    p.hold(0).mark_failed(1_000);
    for _ in 0..10 {
        assert_eq!(pick(&p, b"", &[], 1_001), Some(1));
    }
    assert!(!p.has_candidate(&[1], 1_001));
    let back = 1_000 + PASSIVE_COOLDOWN.as_millis() as u64;
    assert!(p.is_available(0, back));
}

#[test]
fn unhealthy_after_threshold_failures_and_back_after_threshold_successes() {
    let mut s = Streak::default();
    assert!(s.next(true, false, false, 2, 3));
    assert!(s.next(true, false, false, 2, 3));
    assert!(!s.next(true, false, false, 2, 3));
    assert!(!s.next(false, false, true, 2, 3));
    assert!(s.next(false, false, true, 2, 3));
}

#[test]
fn one_success_undoes_a_passive_ejection() {
    let mut s = Streak::default();
    assert!(s.next(false, true, true, 5, 1));
}

#[test]
fn rejects_an_unknown_hash_on() {
    let mut s = spec(Balancing::ConsistentHash, &THREE);
    s.hash_on = Some("cookie".to_owned());
    let e = Pool::compile(&s, &Metrics::new().expect("metrics"), None);
    assert!(matches!(e, Err(UpstreamError::BadHashOn { .. })));
}

#[test]
fn parses_status_lines() {
    assert_eq!(
        health::parse_status(b"HTTP/1.1 204 No Content\r\n"),
        Some(204)
    );
    assert_eq!(health::parse_status(b"HTTP/1.0 500 x"), Some(500));
    assert_eq!(health::parse_status(b"SSH-2.0"), None);
    assert!(health::is_expected(204, &[]));
    assert!(!health::is_expected(301, &[]));
    assert!(health::is_expected(301, &[301]));
}

/// A tiny HTTP server answering every request with `status`; returns its address.
async fn status_server(status: u16) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    addr
}

async fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn active_check_ejects_a_failing_target_and_updates_the_gauge() {
    let good = status_server(200).await;
    let bad = status_server(500).await;
    let metrics = Metrics::new().expect("metrics");
    let mut s = spec(
        Balancing::RoundRobin,
        &[&good.to_string(), &bad.to_string()],
    );
    s.health_check = Some(HealthCheckSpec {
        kind: storage::HealthCheckKind::Http,
        path: "/healthz".to_owned(),
        interval_ms: 20,
        timeout_ms: 500,
        healthy_threshold: 1,
        unhealthy_threshold: 1,
        expected_statuses: vec![],
    });
    let p = Pool::compile(&s, &metrics, Some(&tokio::runtime::Handle::current())).expect("pool");
    assert!(wait_for(|| !p.is_available(1, now_ms())).await);
    assert!(p.is_available(0, now_ms()));
    let gauge = metrics
        .target_healthy
        .with_label_values(&["up", &bad.to_string()]);
    assert_eq!(gauge.get(), 0);
    for _ in 0..10 {
        assert_eq!(pick(&p, b"", &[], now_ms()), Some(0));
    }
}

#[tokio::test]
async fn active_check_brings_back_a_passively_ejected_target() {
    let good = status_server(200).await;
    let mut s = spec(Balancing::RoundRobin, &[&good.to_string()]);
    s.health_check = Some(HealthCheckSpec {
        kind: storage::HealthCheckKind::Tcp,
        path: "/".to_owned(),
        interval_ms: 20,
        timeout_ms: 500,
        healthy_threshold: 3,
        unhealthy_threshold: 1,
        expected_statuses: vec![],
    });
    let p = Pool::compile(
        &s,
        &Metrics::new().expect("metrics"),
        Some(&tokio::runtime::Handle::current()),
    )
    .expect("pool");
    p.hold(0).mark_failed(now_ms());
    assert!(!p.is_available(0, now_ms()));
    assert!(wait_for(|| p.is_available(0, now_ms())).await);
}

#[tokio::test]
async fn check_task_stops_when_the_pool_is_dropped() {
    let good = status_server(200).await;
    let mut s = spec(Balancing::RoundRobin, &[&good.to_string()]);
    s.health_check = Some(HealthCheckSpec {
        kind: storage::HealthCheckKind::Tcp,
        path: "/".to_owned(),
        interval_ms: 20,
        timeout_ms: 500,
        healthy_threshold: 1,
        unhealthy_threshold: 1,
        expected_statuses: vec![],
    });
    let p = Pool::compile(
        &s,
        &Metrics::new().expect("metrics"),
        Some(&tokio::runtime::Handle::current()),
    )
    .expect("pool");
    let handle = p.checker.get().expect("checker").clone();
    assert!(!handle.is_finished());
    drop(p);
    assert!(wait_for(|| handle.is_finished()).await);
}
