use super::syntax::*;
use super::*;
use crate::spec::{HealthCheckSpec, TargetSpec};

fn upstream_with(addr: &str) -> UpstreamSpec {
    UpstreamSpec {
        id: "u".into(),
        targets: vec![TargetSpec {
            addr: addr.into(),
            weight: 1,
        }],
        balancing: Balancing::RoundRobin,
        hash_on: None,
        health_check: None,
        connect_timeout_ms: 1,
        read_timeout_ms: 1,
        retries: 0,
        tls: false,
        sni: None,
        protocol: Default::default(),
        dns_refresh_secs: 30,
    }
}

fn paths(problems: Vec<Problem>) -> Vec<String> {
    problems.into_iter().map(|p| p.path).collect()
}

#[test]
fn accepts_ip_and_resolvable_addresses() {
    for ok in ["127.0.0.1:80", "[::1]:8080", "localhost:9000"] {
        assert_eq!(check_addr(ok), Ok(()), "{ok}");
    }
}

#[test]
fn refuses_bad_addresses() {
    for bad in [
        "127.0.0.1",
        "127.0.0.1:0",
        "127.0.0.1:99999",
        ":80",
        "bad host:80",
        "no-such-host.invalid:80",
    ] {
        assert!(check_addr(bad).is_err(), "{bad}");
    }
}

#[test]
fn route_paths_allow_whole_segment_params_only() {
    for ok in [
        "/",
        "/v1/orders",
        "=/v1/ping",
        "/users/{id}/orders",
        "/{a_b}",
    ] {
        assert_eq!(check_route_path(ok), Ok(()), "{ok}");
    }
    for bad in ["v1", "=v1", "/users/{}/x", "/users/x{id}", "/a/{id", "/a b"] {
        assert!(check_route_path(bad).is_err(), "{bad}");
    }
}

#[test]
fn hosts_are_lowercase_with_leading_wildcard_only() {
    assert!(is_host("api.example.com", false));
    assert!(is_host("*.example.org", true));
    assert!(!is_host("*.example.org", false));
    assert!(!is_host("api.*.org", true));
    assert!(!is_host("API.example.com", true));
    assert!(!is_host("a..b", true));
    assert!(!is_host("api.example.com:80", true));
    assert!(!is_host("", true));
}

#[test]
fn methods_are_uppercase_tokens() {
    assert!(is_method("GET"));
    assert!(is_method("PURGE"));
    assert!(!is_method("get"));
    assert!(!is_method(""));
}

#[test]
fn health_check_timeout_must_fit_the_interval() {
    let mut u = upstream_with("127.0.0.1:1");
    u.health_check = Some(HealthCheckSpec {
        kind: HealthCheckKind::Http,
        path: "healthz".into(),
        interval_ms: 100,
        timeout_ms: 200,
        healthy_threshold: 0,
        unhealthy_threshold: 1,
        expected_statuses: vec![200, 600],
    });
    assert_eq!(
        paths(upstream(&u)),
        [
            "health_check.path",
            "health_check.timeout_ms",
            "health_check.healthy_threshold",
            "health_check.expected_statuses[1]",
        ]
    );
}

#[test]
fn health_check_path_refuses_line_breaks_spaces_and_controls() {
    for bad in [
        "/health\r\nHost: evil",
        "/health\nX: y",
        "/a b",
        "/a\tb",
        "/\u{7f}",
        "/caf\u{e9}",
    ] {
        let mut u = upstream_with("127.0.0.1:1");
        u.health_check = Some(HealthCheckSpec {
            kind: HealthCheckKind::Http,
            path: bad.into(),
            interval_ms: 1000,
            timeout_ms: 500,
            healthy_threshold: 1,
            unhealthy_threshold: 1,
            expected_statuses: vec![],
        });
        assert_eq!(paths(upstream(&u)), ["health_check.path"], "{bad:?}");
    }
    let mut u = upstream_with("127.0.0.1:1");
    u.health_check = Some(HealthCheckSpec {
        kind: HealthCheckKind::Http,
        path: "/health?probe=1&x=%20".into(),
        interval_ms: 1000,
        timeout_ms: 500,
        healthy_threshold: 1,
        unhealthy_threshold: 1,
        expected_statuses: vec![],
    });
    assert!(upstream(&u).is_empty());
}

#[test]
fn hash_on_needs_consistent_hash() {
    let mut u = upstream_with("127.0.0.1:1");
    u.hash_on = Some("header:x-user".into());
    assert_eq!(paths(upstream(&u)), ["hash_on"]);
    u.balancing = Balancing::ConsistentHash;
    assert!(upstream(&u).is_empty());
    u.hash_on = Some("cookie".into());
    assert_eq!(paths(upstream(&u)), ["hash_on"]);
}

#[test]
fn upstream_targets_and_weights_are_checked() {
    let mut u = upstream_with("127.0.0.1:1");
    u.targets[0].weight = 0;
    u.targets.push(u.targets[0].clone());
    assert_eq!(
        paths(upstream(&u)),
        ["targets[0].weight", "targets[1].addr", "targets[1].weight"]
    );
    u.targets.clear();
    assert_eq!(paths(upstream(&u)), ["targets"]);
}

#[test]
fn dns_refresh_must_be_positive() {
    let mut u = upstream_with("127.0.0.1:1");
    assert!(upstream(&u).is_empty());
    u.dns_refresh_secs = 0;
    assert_eq!(paths(upstream(&u)), ["dns_refresh_secs"]);
}

#[test]
fn dns_refresh_defaults_to_thirty_seconds() {
    let u: UpstreamSpec =
        serde_json::from_str(r#"{"id":"u","targets":[{"addr":"127.0.0.1:1"}]}"#).expect("spec");
    assert_eq!(u.dns_refresh_secs, crate::spec::DEFAULT_DNS_REFRESH_SECS);
}

#[test]
fn certificates_need_pem_and_names() {
    let c = CertificateSpec {
        id: "c".into(),
        snis: vec![],
        cert: "MIIB".into(),
        key: String::new(),
    };
    assert_eq!(paths(certificate(&c)), ["snis", "cert", "key"]);
}

#[test]
fn a_certificate_bundle_holding_its_private_key_is_refused() {
    // The attack (or the accident): a PEM bundle with the private key in it, as many
    // tools write them, put in `cert`; only `key` is hidden, so GET
    // /api/v1/certificates and the console showed the private key.
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let key = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
    let c = CertificateSpec {
        id: "site".to_owned(),
        snis: vec!["example.com".to_owned()],
        cert: format!("{pem}{key}"),
        key: key.to_owned(),
    };
    assert_eq!(paths(certificate(&c)), ["cert"]);
    let rsa = CertificateSpec {
        cert: format!("{pem}{}", key.replace("PRIVATE", "RSA PRIVATE")),
        ..c.clone()
    };
    assert_eq!(paths(certificate(&rsa)), ["cert"]);
    let fine = CertificateSpec {
        cert: pem.to_owned(),
        ..c
    };
    assert!(certificate(&fine).is_empty());
}

#[test]
fn route_fields_are_checked_with_their_paths() {
    let config = Config {
        upstreams: vec![upstream_with("127.0.0.1:1")],
        routes: vec![crate::spec::RouteSpec {
            id: "r".into(),
            hosts: vec!["Bad".into()],
            methods: vec!["get".into(), "GET".into(), "GET".into()],
            paths: vec!["/a".into(), "/a".into()],
            headers: [("bad header".to_owned(), "v".to_owned())].into(),
            strip_prefix: Some("v1".into()),
            priority: 0,
            upstream: "u".into(),
            policies: vec![],
            enabled: true,
        }],
        ..Config::default()
    };
    assert_eq!(
        paths(validate_config(&config)),
        [
            "routes[r].hosts[0]",
            "routes[r].methods[0]",
            "routes[r].methods[2]",
            "routes[r].paths[1]",
            "routes[r].headers.bad header",
            "routes[r].strip_prefix",
        ]
    );
}

fn key_record(id: &str, raw: &str) -> KeyRecord {
    KeyRecord {
        id: id.into(),
        consumer: "acme".into(),
        hash: KeyHash::of(raw.as_bytes()),
        prefix: "tg_abcd".into(),
        label: None,
        created: 0,
        expires: None,
        revoked: false,
    }
}

fn acme() -> policies::ConsumerSpec {
    policies::ConsumerSpec {
        id: "acme".into(),
        plan: None,
        groups: vec![],
        metadata: Default::default(),
    }
}

#[test]
fn reports_repeated_ids_whether_or_not_the_list_is_sorted() {
    let sorted = ["k1", "k2", "k2", "k2", "k3"];
    let unsorted = ["k2", "k1", "k2", "k3", "k2"];
    for ids in [sorted, unsorted] {
        let config = Config {
            consumers: vec![acme()],
            keys: ids
                .iter()
                .enumerate()
                .map(|(i, id)| key_record(id, &format!("tg_{i}")))
                .collect(),
            ..Config::default()
        };
        let problems = validate_config(&config);
        assert_eq!(
            paths(problems.clone()),
            ["keys[k2].id", "keys[k2].id"],
            "{ids:?}"
        );
        assert!(problems.iter().all(|p| p.message == "duplicate key k2"));
    }
}

#[test]
fn names_the_first_key_of_a_repeated_hash() {
    let config = Config {
        consumers: vec![acme()],
        keys: vec![
            key_record("k1", "tg_same"),
            key_record("k2", "tg_other"),
            key_record("k3", "tg_same"),
        ],
        ..Config::default()
    };
    let problems = validate_config(&config);
    assert_eq!(paths(problems.clone()), ["keys[k3].hash"]);
    assert_eq!(problems[0].message, "same hash as key k1");
}
