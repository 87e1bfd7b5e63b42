use super::*;
use policies::{KeyAuthSpec, PolicySpec, RequestSizeSpec};
use storage::{Balancing, RouteSpec, TargetSpec, UpstreamSpec};

fn upstream(id: &str, addr: &str) -> UpstreamSpec {
    UpstreamSpec {
        id: id.to_owned(),
        targets: vec![TargetSpec {
            addr: addr.to_owned(),
            weight: 1,
        }],
        balancing: Balancing::RoundRobin,
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

fn route(id: &str, upstream: &str) -> RouteSpec {
    RouteSpec {
        id: id.to_owned(),
        hosts: vec![],
        methods: vec![],
        paths: vec![format!("/{id}")],
        headers: Default::default(),
        strip_prefix: None,
        priority: 0,
        upstream: upstream.to_owned(),
        policies: vec![],
        enabled: true,
    }
}

fn config(upstreams: Vec<UpstreamSpec>, routes: Vec<RouteSpec>) -> Config {
    Config {
        upstreams,
        routes,
        ..Config::default()
    }
}

#[test]
fn carries_over_pools_whose_spec_is_unchanged() {
    let m = Metrics::new().expect("metrics");
    let c1 = config(
        vec![upstream("a", "127.0.0.1:1"), upstream("b", "127.0.0.1:2")],
        vec![route("ra", "a")],
    );
    let s1 = Snapshot::compile(&c1, 1, None, &m, &Counters::new(), None).expect("s1");
    let c2 = config(
        vec![upstream("a", "127.0.0.1:1"), upstream("b", "127.0.0.1:3")],
        vec![route("ra", "a"), route("rb", "b")],
    );
    let s2 = Snapshot::compile(&c2, 2, Some(&s1), &m, &Counters::new(), None).expect("s2");
    assert!(Arc::ptr_eq(&s1.pools["a"], &s2.pools["a"]));
    assert!(!Arc::ptr_eq(&s1.pools["b"], &s2.pools["b"]));
    assert_eq!(s2.routes.len(), 2);
    assert!(Arc::ptr_eq(&s2.routes[0].pool, &s2.pools["a"]));
}

#[test]
fn skips_disabled_routes_and_keeps_router_indexes_aligned() {
    let m = Metrics::new().expect("metrics");
    let mut off = route("off", "a");
    off.enabled = false;
    let c = config(
        vec![upstream("a", "127.0.0.1:1")],
        vec![off, route("on", "a")],
    );
    let s = Snapshot::compile(&c, 1, None, &m, &Counters::new(), None).expect("snapshot");
    assert_eq!(s.routes.len(), 1);
    let hit = s
        .router
        .find(None, &http::Method::GET, "/on", &http::HeaderMap::new())
        .expect("match");
    assert_eq!(s.routes[hit.index].id, "on");
    assert!(s
        .router
        .find(None, &http::Method::GET, "/off", &http::HeaderMap::new())
        .is_none());
}

#[test]
fn fails_on_a_route_to_an_unknown_upstream() {
    let m = Metrics::new().expect("metrics");
    let c = config(vec![], vec![route("r", "nope")]);
    let e = Snapshot::compile(&c, 1, None, &m, &Counters::new(), None);
    assert!(matches!(e, Err(SnapshotError::UnknownUpstream { .. })));
}

#[test]
fn compiles_a_chain_only_for_routes_with_policies() {
    let m = Metrics::new().expect("metrics");
    let mut guarded = route("guarded", "a");
    guarded.policies = vec![
        PolicySpec::KeyAuth(KeyAuthSpec::default()),
        PolicySpec::RequestSize(RequestSizeSpec { max_bytes: 10 }),
    ];
    let c = config(
        vec![upstream("a", "127.0.0.1:1")],
        vec![route("open", "a"), guarded],
    );
    let s = Snapshot::compile(&c, 1, None, &m, &Counters::new(), None).expect("snapshot");
    assert!(s.routes[0].policies.is_none());
    let p = s.routes[1].policies.as_deref().expect("a chain");
    assert_eq!(p.chain.policies().len(), 2);
    assert_eq!(p.max_body, Some(10));
}

#[test]
fn names_the_route_and_policy_of_a_bad_spec() {
    let m = Metrics::new().expect("metrics");
    let mut bad = route("bad", "a");
    bad.policies = vec![PolicySpec::RequestSize(RequestSizeSpec { max_bytes: 0 })];
    let c = config(vec![upstream("a", "127.0.0.1:1")], vec![bad]);
    let e = Snapshot::compile(&c, 1, None, &m, &Counters::new(), None)
        .err()
        .expect("refused");
    assert_eq!(
        e.to_string(),
        "routes[bad].policies[0].max_bytes: must be > 0"
    );
}

#[test]
fn fails_on_a_key_of_an_unknown_consumer() {
    let m = Metrics::new().expect("metrics");
    let mut c = config(vec![], vec![]);
    c.keys = vec![policies::KeyRecord {
        id: "k1".into(),
        consumer: "ghost".into(),
        hash: policies::KeyHash([0; 32]),
        prefix: "tg_0000".into(),
        label: None,
        created: 0,
        expires: None,
        revoked: false,
    }];
    let e = Snapshot::compile(&c, 1, None, &m, &Counters::new(), None)
        .err()
        .expect("refused");
    assert!(matches!(e, SnapshotError::Directory { .. }));
    assert!(e.to_string().contains("keys[k1].consumer"), "{e}");
}

/// Resolves nothing: every host name lookup fails.
#[derive(Debug)]
struct NoDns;

impl crate::upstream::dns::Resolve for NoDns {
    fn lookup(&self, host: &str, _port: u16) -> Result<Vec<std::net::SocketAddr>, String> {
        Err(format!("{host}: not found"))
    }
}

#[test]
fn an_unresolvable_upstream_does_not_fail_the_snapshot() {
    let m = Metrics::new().expect("metrics");
    let c = config(
        vec![
            upstream("named", "svc.tollgate.test:80"),
            upstream("ip", "127.0.0.1:1"),
        ],
        vec![route("rn", "named"), route("ri", "ip")],
    );
    let resolver: Arc<dyn crate::upstream::dns::Resolve> = Arc::new(NoDns);
    let s = Snapshot::compile_with(&c, 1, None, &m, &Counters::new(), None, &resolver)
        .expect("the config compiles");
    assert_eq!(s.routes.len(), 2);
    assert!(s.pools["named"].select(b"", &[], 0).is_none());
    assert!(s.pools["ip"].select(b"", &[], 0).is_some());
}
