use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use storage::{Balancing, HealthCheckSpec, UpstreamSpec};

use super::*;
use crate::metrics::Metrics;
use crate::upstream::{now_ms, Pool};

/// A resolver whose answers the test sets: a host maps to IPs, or to a failure.
#[derive(Debug, Default)]
struct FakeDns {
    answers: Mutex<HashMap<String, Result<Vec<IpAddr>, String>>>,
    calls: AtomicUsize,
    /// When set, a lookup reports on the first channel and waits on the second.
    gate: Mutex<Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>>,
}

impl FakeDns {
    fn set(&self, host: &str, ips: &[&str]) {
        let ips = ips.iter().map(|i| i.parse().expect("ip")).collect();
        self.answers
            .lock()
            .expect("lock")
            .insert(host.to_owned(), Ok(ips));
    }
    fn fail(&self, host: &str) {
        self.answers
            .lock()
            .expect("lock")
            .insert(host.to_owned(), Err("not found".to_owned()));
    }
}

impl Resolve for FakeDns {
    fn lookup(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let gate = self.gate.lock().expect("lock").take();
        if let Some((entered, release)) = gate {
            let _ = entered.send(());
            let _ = release.recv();
        }
        let answer = self.answers.lock().expect("lock").get(host).cloned();
        match answer {
            Some(Ok(ips)) => Ok(ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect()),
            Some(Err(e)) => Err(e),
            None => Err("unknown host".to_owned()),
        }
    }
}

fn spec(addrs: &[&str], balancing: Balancing) -> UpstreamSpec {
    UpstreamSpec {
        dns_refresh_secs: 1,
        ..crate::upstream::tests::spec(balancing, addrs)
    }
}

fn compile(s: &UpstreamSpec, dns: &Arc<FakeDns>, m: &Metrics) -> Arc<Pool> {
    Pool::compile_with(s, m, None, dns.clone()).expect("pool")
}

fn addrs(p: &Pool) -> Vec<String> {
    p.targets().iter().map(|t| t.addr.to_string()).collect()
}

fn ok(ips: &[&str], port: u16) -> Result<Vec<SocketAddr>, String> {
    Ok(ips
        .iter()
        .map(|i| SocketAddr::new(i.parse().expect("ip"), port))
        .collect())
}

#[test]
fn backoff_doubles_from_one_second_up_to_thirty() {
    let mut b = Backoff::new(Duration::from_secs(300));
    let waits: Vec<u64> = (0..7).map(|_| b.after(false).as_secs()).collect();
    assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
    assert_eq!(b.after(true), Duration::from_secs(300));
    assert_eq!(
        b.after(false),
        Duration::from_secs(1),
        "a success resets it"
    );
}

#[test]
fn backoff_never_waits_longer_than_the_refresh() {
    let mut b = Backoff::new(Duration::from_secs(5));
    let waits: Vec<u64> = (0..5).map(|_| b.after(false).as_secs()).collect();
    assert_eq!(waits, [1, 2, 4, 5, 5]);
    let mut huge = Backoff::new(Duration::from_secs(u64::MAX));
    assert_eq!(huge.after(true), Duration::from_secs(u64::MAX));
    assert_eq!(huge.after(false), FIRST_RETRY);
}

#[test]
fn parses_ip_literals_and_names() {
    assert_eq!(
        Host::parse("[::1]:80"),
        Some(Host::Ip("[::1]:80".parse().expect("addr")))
    );
    assert_eq!(
        Host::parse("svc.test:8080"),
        Some(Host::Name {
            host: "svc.test".to_owned(),
            port: 8080
        })
    );
    assert_eq!(Host::parse("svc.test"), None);
    assert_eq!(Host::parse(":80"), None);
}

#[test]
fn an_unresolvable_name_compiles_without_addresses_and_the_rest_serves() {
    let dns = Arc::new(FakeDns::default());
    dns.fail("gone.test");
    let m = Metrics::new().expect("metrics");
    let p = compile(
        &spec(&["gone.test:80", "127.0.0.1:1"], Balancing::RoundRobin),
        &dns,
        &m,
    );
    assert_eq!(addrs(&p), ["127.0.0.1:1"]);
    for _ in 0..5 {
        let f = p.select(b"", &[], 0).expect("the IP target serves");
        assert_eq!(f.target().name, "127.0.0.1:1");
    }
    assert_eq!(
        p.health(0),
        [
            ("gone.test:80".to_owned(), false),
            ("127.0.0.1:1".to_owned(), true)
        ]
    );
    let gauge = |t: &str| m.target_healthy.with_label_values(&["up", t]).get();
    assert_eq!((gauge("gone.test:80"), gauge("127.0.0.1:1")), (0, 1));
}

#[test]
fn a_pool_with_no_address_selects_nothing_with_every_algorithm() {
    let dns = Arc::new(FakeDns::default());
    for b in [
        Balancing::RoundRobin,
        Balancing::Random,
        Balancing::ConsistentHash,
        Balancing::LeastConnections,
    ] {
        let p = compile(
            &spec(&["gone.test:80"], b),
            &dns,
            &Metrics::new().expect("m"),
        );
        assert!(p.targets().is_empty());
        assert!(p.select(b"k", &[], 0).is_none(), "{b:?}");
        assert!(!p.has_candidate(&[], 0), "{b:?}");
    }
}

#[test]
fn a_name_becomes_one_target_per_distinct_address() {
    let dns = Arc::new(FakeDns::default());
    dns.set("svc.test", &["10.0.0.2", "::1", "10.0.0.1", "10.0.0.2"]);
    let p = compile(
        &spec(&["svc.test:80"], Balancing::RoundRobin),
        &dns,
        &Metrics::new().expect("m"),
    );
    assert_eq!(addrs(&p), ["10.0.0.1:80", "10.0.0.2:80", "[::1]:80"]);
    assert!(p.targets().iter().all(|t| t.name == "svc.test:80"));
    let mut seen = std::collections::HashSet::new();
    for _ in 0..30 {
        seen.insert(p.select(b"", &[], 0).expect("target").target().addr);
    }
    assert_eq!(seen.len(), 3, "round robin spreads over every address");
    assert_eq!(p.health(0), [("svc.test:80".to_owned(), true)]);
}

#[test]
fn an_empty_answer_counts_as_a_failed_lookup() {
    let dns = FakeDns::default();
    dns.set("empty.test", &[]);
    assert!(lookup(&dns, "empty.test", 80).is_err());
}

#[test]
fn a_name_with_very_many_addresses_is_capped() {
    let dns = Arc::new(FakeDns::default());
    let ips: Vec<String> = (0..1000u32)
        .map(|i| IpAddr::from((0x0a00_0000 + i).to_be_bytes()).to_string())
        .collect();
    let refs: Vec<&str> = ips.iter().map(String::as_str).collect();
    dns.set("big.test", &refs);
    let p = compile(
        &spec(&["big.test:80"], Balancing::ConsistentHash),
        &dns,
        &Metrics::new().expect("m"),
    );
    assert_eq!(p.targets().len(), MAX_ADDRS_PER_NAME);
    assert_eq!(
        p.targets().get(0).expect("first").addr.to_string(),
        "10.0.0.0:80"
    );
}

#[test]
fn a_changed_answer_keeps_the_state_of_addresses_that_stay() {
    let dns = Arc::new(FakeDns::default());
    dns.set("svc.test", &["10.0.0.1", "10.0.0.2"]);
    let mut s = spec(&["svc.test:80", "127.0.0.1:1"], Balancing::LeastConnections);
    s.health_check = Some(HealthCheckSpec {
        kind: storage::HealthCheckKind::Tcp,
        path: "/".to_owned(),
        interval_ms: 1000,
        timeout_ms: 500,
        healthy_threshold: 1,
        unhealthy_threshold: 1,
        expected_statuses: vec![],
        when_all_unhealthy: Default::default(),
    });
    let p = compile(&s, &dns, &Metrics::new().expect("m"));
    let before = p.targets();
    let (a, b) = (
        before.get(0).expect("a").clone(),
        before.get(1).expect("b").clone(),
    );
    p.hold(a.id()).mark_failed(now_ms());
    let in_flight = p.hold(b.id());
    p.apply_lookups(&[(0, ok(&["10.0.0.2", "10.0.0.3"], 80))]);
    let after = p.targets();
    assert_eq!(addrs(&p), ["10.0.0.2:80", "10.0.0.3:80", "127.0.0.1:1"]);
    assert!(
        Arc::ptr_eq(after.get(0).expect("b"), &b),
        "same target object"
    );
    assert!(Arc::ptr_eq(
        after.get(2).expect("ip"),
        before.get(2).expect("ip")
    ));
    let c = after.get(1).expect("c");
    assert!(
        c.id() > b.id() && c.id() != a.id(),
        "a new id, never a reused one"
    );
    // b still counts its request: least connections prefers c and the IP target.
    for _ in 0..4 {
        assert_ne!(p.select(b"", &[], now_ms()).expect("t").id(), b.id());
    }
    drop(in_flight);
    assert_eq!(b.in_flight.load(Ordering::Relaxed), 0);
    // a comes back as a new, healthy target: its old ejection was for an address gone.
    p.apply_lookups(&[(0, ok(&["10.0.0.1", "10.0.0.2"], 80))]);
    assert!(p.targets().iter().all(|t| t.is_available(now_ms())));
}

#[test]
fn a_failed_or_empty_lookup_keeps_the_last_addresses() {
    let dns = Arc::new(FakeDns::default());
    dns.set("svc.test", &["10.0.0.1"]);
    let p = compile(
        &spec(&["svc.test:80"], Balancing::RoundRobin),
        &dns,
        &Metrics::new().expect("m"),
    );
    let before = p.targets();
    p.apply_lookups(&[(0, Err("timed out".to_owned()))]);
    p.apply_lookups(&[(0, Ok(vec![]))]);
    assert!(
        Arc::ptr_eq(&before, &p.targets()),
        "the list is not replaced"
    );
    // The same addresses in another order are no change either.
    p.apply_lookups(&[(0, ok(&["10.0.0.1"], 80))]);
    assert!(Arc::ptr_eq(&before, &p.targets()));
}

#[test]
fn flapping_answers_settle_on_the_last_one() {
    let dns = Arc::new(FakeDns::default());
    dns.fail("svc.test");
    let p = compile(
        &spec(&["svc.test:80"], Balancing::Random),
        &dns,
        &Metrics::new().expect("m"),
    );
    let rounds: [Result<Vec<SocketAddr>, String>; 5] = [
        ok(&["10.0.0.1"], 80),
        Err("servfail".to_owned()),
        ok(&["10.0.0.1", "10.0.0.2"], 80),
        ok(&["10.0.0.2"], 80),
        Err("servfail".to_owned()),
    ];
    let expected: [&[&str]; 5] = [
        &["10.0.0.1:80"],
        &["10.0.0.1:80"],
        &["10.0.0.1:80", "10.0.0.2:80"],
        &["10.0.0.2:80"],
        &["10.0.0.2:80"],
    ];
    for (round, want) in rounds.into_iter().zip(expected) {
        p.apply_lookups(&[(0, round)]);
        assert_eq!(addrs(&p), want);
        let f = p.select(b"", &[], 0).expect("serves");
        assert!(want.contains(&f.target().addr.to_string().as_str()));
    }
}

#[test]
fn a_retry_after_a_replacement_skips_the_address_already_tried() {
    let dns = Arc::new(FakeDns::default());
    dns.set("svc.test", &["10.0.0.2", "10.0.0.3"]);
    let p = compile(
        &spec(&["svc.test:80"], Balancing::RoundRobin),
        &dns,
        &Metrics::new().expect("m"),
    );
    let first = p.select(b"", &[], 0).expect("first");
    let tried = [first.id()];
    // 10.0.0.1 sorts first: positions shift, ids do not.
    p.apply_lookups(&[(0, ok(&["10.0.0.1", "10.0.0.2", "10.0.0.3"], 80))]);
    for _ in 0..10 {
        let next = p.select(b"", &tried, 0).expect("another");
        assert_ne!(next.target().addr, first.target().addr);
    }
}

/// Polls `cond` every 20 ms for up to 10 s.
async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresh_task_serves_a_name_once_it_resolves_and_follows_changes() {
    let dns = Arc::new(FakeDns::default());
    dns.fail("late.test");
    let m = Metrics::new().expect("m");
    let p = Pool::compile_with(
        &spec(&["late.test:80"], Balancing::RoundRobin),
        &m,
        Some(&tokio::runtime::Handle::current()),
        dns.clone(),
    )
    .expect("pool");
    assert!(p.select(b"", &[], now_ms()).is_none());
    dns.set("late.test", &["10.0.0.7"]);
    assert!(eventually(|| p.select(b"", &[], now_ms()).is_some()).await);
    assert_eq!(addrs(&p), ["10.0.0.7:80"]);
    let gauge = m.target_healthy.with_label_values(&["up", "late.test:80"]);
    assert_eq!(gauge.get(), 1);
    dns.set("late.test", &["10.0.0.8"]);
    assert!(eventually(|| addrs(&p) == ["10.0.0.8:80"]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresh_task_stops_when_the_pool_is_dropped_mid_lookup() {
    let dns = Arc::new(FakeDns::default());
    dns.fail("slow.test");
    let p = Pool::compile_with(
        &spec(&["slow.test:80"], Balancing::RoundRobin),
        &Metrics::new().expect("m"),
        Some(&tokio::runtime::Handle::current()),
        dns.clone(),
    )
    .expect("pool");
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    *dns.gate.lock().expect("lock") = Some((entered_tx, release_rx));
    let task = p.refresher.get().expect("a refresh task").clone();
    let waited = tokio::task::spawn_blocking(move || entered.recv_timeout(Duration::from_secs(10)))
        .await
        .expect("join");
    assert!(waited.is_ok(), "the task looked the name up again");
    drop(p);
    assert!(eventually(|| task.is_finished()).await);
    dns.set("slow.test", &["10.0.0.1"]);
    let _ = release.send(());
    // The lookup in progress finished into nothing: no pool, no panic, no further rounds.
    let calls = dns.calls.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(dns.calls.load(Ordering::SeqCst), calls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_refresh_interval_is_accepted() {
    let dns = Arc::new(FakeDns::default());
    dns.set("svc.test", &["10.0.0.1"]);
    let mut s = spec(&["svc.test:80"], Balancing::RoundRobin);
    s.dns_refresh_secs = u64::MAX;
    let p = Pool::compile_with(
        &s,
        &Metrics::new().expect("m"),
        Some(&tokio::runtime::Handle::current()),
        dns.clone(),
    )
    .expect("pool");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let task = p.refresher.get().expect("a refresh task");
    assert!(!task.is_finished(), "the task waits, it did not panic");
    assert_eq!(
        dns.calls.load(Ordering::SeqCst),
        1,
        "only the lookup at compile"
    );
    assert!(p.select(b"", &[], now_ms()).is_some());
}

/// Answers a lookup only once `expected` lookups are running at the same time (else fails
/// after 5 s): proves lookups run in parallel without timing them.
#[derive(Debug)]
struct AllAtOnce {
    expected: usize,
    running: std::sync::Mutex<usize>,
    all_in: std::sync::Condvar,
}

impl Resolve for AllAtOnce {
    fn lookup(&self, _host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        let mut running = self.running.lock().expect("lock");
        *running += 1;
        self.all_in.notify_all();
        let (running, timeout) = self
            .all_in
            .wait_timeout_while(running, Duration::from_secs(5), |n| *n < self.expected)
            .expect("lock");
        drop(running);
        if timeout.timed_out() {
            return Err("the lookups ran one after another".to_owned());
        }
        Ok(vec![SocketAddr::from(([10, 0, 0, 1], port))])
    }
}

#[test]
fn a_snapshot_looks_its_names_up_at_once() {
    let resolver: Arc<dyn Resolve> = Arc::new(AllAtOnce {
        expected: 6,
        running: Mutex::new(0),
        all_in: std::sync::Condvar::new(),
    });
    let names: Vec<(String, u16)> = (0..6).map(|i| (format!("n{i}.test"), 80)).collect();
    let known = prefetch(&resolver, names);
    for i in 0..6 {
        assert!(known.lookup(&format!("n{i}.test"), 80).is_ok(), "n{i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_check_follows_addresses_that_appear_later() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accept = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            drop(s);
        }
    });
    let dns = Arc::new(FakeDns::default());
    dns.fail("late.test");
    let mut s = spec(&[&format!("late.test:{port}")], Balancing::RoundRobin);
    s.health_check = Some(HealthCheckSpec {
        kind: storage::HealthCheckKind::Tcp,
        path: "/".to_owned(),
        interval_ms: 20,
        timeout_ms: 500,
        healthy_threshold: 1,
        unhealthy_threshold: 1,
        expected_statuses: vec![],
        when_all_unhealthy: storage::WhenAllUnhealthy::Refuse,
    });
    let p = Pool::compile_with(
        &s,
        &Metrics::new().expect("m"),
        Some(&tokio::runtime::Handle::current()),
        dns.clone(),
    )
    .expect("pool");
    dns.set("late.test", &["127.0.0.1"]);
    assert!(eventually(|| p.select(b"", &[], now_ms()).is_some()).await);
    // The checker checks the new target: with its server gone it is taken out (and with
    // `refuse`, not sent to anyway).
    accept.abort();
    let _ = accept.await;
    assert!(eventually(|| p.select(b"", &[], now_ms()).is_none()).await);
    assert!(!p.health(now_ms())[0].1, "status shows it down");
}
