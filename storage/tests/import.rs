//! Import (merge and replace), export, and parsing config files.

#[path = "support/fixtures.rs"]
mod fixtures;

use fixtures::*;
use storage::*;

fn import(store: &Store, config: Config, replace: bool) -> u64 {
    apply(store, Change::Import { config, replace })
}

#[test]
fn import_merge_upserts_and_keeps_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    create(&store, Object::Upstream(upstream("kept")));
    create(&store, Object::Upstream(upstream("orders")));
    let mut changed = upstream("orders");
    changed.retries = 3;
    let config = Config {
        upstreams: vec![changed.clone(), upstream("new")],
        ..Config::default()
    };
    assert_eq!(import(&store, config, false), 3);
    assert_eq!(
        store.config().upstreams,
        vec![upstream("kept"), upstream("new"), changed]
    );
}

#[test]
fn import_replace_makes_the_store_equal_to_the_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    import(&store, full_config(), true);
    let smaller = Config {
        upstreams: vec![upstream("other")],
        ..Config::default()
    };
    import(&store, smaller.clone(), true);
    assert_eq!(*store.config(), smaller);
    drop(store);
    assert_eq!(*open(&dir).config(), smaller);
}

#[test]
fn export_parses_back_to_the_same_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    import(&store, full_config(), true);
    let from_yaml = parse_config(&store.export_yaml()).expect("yaml parses");
    let from_json = parse_config(&store.export_json()).expect("json parses");
    assert_eq!(from_yaml, *store.config());
    assert_eq!(from_json, *store.config());
    assert!(validate_config(&from_yaml).is_empty());

    let other = tempfile::tempdir().expect("tempdir");
    let copy = open(&other);
    import(&copy, from_yaml, true);
    assert_eq!(copy.config(), store.config());
}

#[test]
fn export_holds_key_hashes_and_certificate_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    import(&store, full_config(), true);
    let yaml = store.export_yaml();
    assert!(yaml.contains(&hash_key("tg_secret_k1")));
    assert!(!yaml.contains("tg_secret_k1"));
    assert!(yaml.contains("-----BEGIN PRIVATE KEY-----"));
}

#[test]
fn parses_the_documented_yaml_shape() {
    let text = r#"
upstreams:
  - id: orders
    targets: [{addr: "127.0.0.1:9001", weight: 1}, {addr: "127.0.0.1:9002"}]
    balancing: consistent_hash
    hash_on: client_ip
    health_check: {kind: http, path: /healthz, interval_ms: 1000, timeout_ms: 500,
                   healthy_threshold: 2, unhealthy_threshold: 2, expected_statuses: [200]}
    retries: 2
routes:
  - id: orders-v1
    hosts: ["api.example.com", "*.example.org"]
    methods: [GET, POST]
    paths: ["/v1/orders", "=/v1/ping", "/v1/users/{id}/orders"]
    headers: {x-version: "2"}
    strip_prefix: "/v1"
    upstream: orders
    policies: [{type: key_auth}, {type: rate_limit, requests: 100, per: second, key: consumer}]
consumers:
  - {id: acme, plan: gold, groups: [partners]}
plans:
  - id: gold
    rate_limit: {requests: 50, per: second, burst: 100}
    quota: {requests: 100000, per: day}
"#;
    let config = parse_config(text).expect("parses");
    assert_eq!(config.upstreams[0].targets[1].weight, 1);
    assert_eq!(
        config.upstreams[0].connect_timeout_ms,
        DEFAULT_CONNECT_TIMEOUT_MS
    );
    assert_eq!(config.routes[0].policies.len(), 2);
    assert!(config.routes[0].enabled);
    assert_eq!(validate_config(&config), vec![]);
}

#[test]
fn syntax_errors_name_line_and_column() {
    let err = parse_config("upstreams:\n  - id: a\n    targets: [\n").expect_err("bad yaml");
    let StoreError::Invalid { problems } = err else {
        panic!("expected Invalid")
    };
    assert!(problems[0].message.contains("line"), "{problems:?}");
    let err = parse_config("{\"upstreams\": [}").expect_err("bad json");
    let StoreError::Invalid { problems } = err else {
        panic!("expected Invalid")
    };
    assert!(
        problems[0].message.contains("line 1, column"),
        "{problems:?}"
    );
}

#[test]
fn unknown_fields_are_refused() {
    let err = parse_config("upstreams:\n  - id: a\n    targets: []\n    colour: red\n")
        .expect_err("unknown field");
    let StoreError::Invalid { problems } = err else {
        panic!("expected Invalid")
    };
    assert!(problems[0].message.contains("colour"), "{problems:?}");
    assert!(parse_config("{\"route\": []}").is_err());
}

#[test]
fn blank_file_is_an_empty_config() {
    assert_eq!(
        parse_config("# nothing yet\n\n").expect("parses"),
        Config::default()
    );
    assert_eq!(parse_config("{}").expect("parses"), Config::default());
}
