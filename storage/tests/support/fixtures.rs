//! Small valid objects for the store tests.
#![allow(dead_code)]

use storage::*;

/// An argon2 PHC string of the password `pw`, hashed once per test binary.
pub fn password_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("pw").expect("hashable"))
        .clone()
}

pub fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(dir.path()).expect("store opens")
}

pub fn upstream(id: &str) -> UpstreamSpec {
    UpstreamSpec {
        id: id.to_owned(),
        targets: vec![TargetSpec {
            addr: "127.0.0.1:9001".to_owned(),
            weight: 1,
        }],
        balancing: Balancing::RoundRobin,
        hash_on: None,
        health_check: None,
        connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
        read_timeout_ms: DEFAULT_READ_TIMEOUT_MS,
        retries: DEFAULT_RETRIES,
        tls: false,
        sni: None,
        protocol: Default::default(),
        dns_refresh_secs: DEFAULT_DNS_REFRESH_SECS,
    }
}

pub fn route(id: &str, upstream: &str) -> RouteSpec {
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

pub fn consumer(id: &str, plan: Option<&str>) -> ConsumerSpec {
    ConsumerSpec {
        id: id.to_owned(),
        plan: plan.map(str::to_owned),
        groups: vec![],
        metadata: Default::default(),
    }
}

pub fn plan(id: &str) -> PlanSpec {
    PlanSpec {
        id: id.to_owned(),
        rate_limit: None,
        quota: Some(policies::QuotaSpec {
            requests: 1000,
            per: policies::QuotaPeriod::Day,
        }),
    }
}

pub fn issuer(id: &str) -> JwtIssuerSpec {
    JwtIssuerSpec {
        id: id.to_owned(),
        issuer: format!("https://{id}.example.com/"),
        audiences: vec![],
        algorithms: vec!["HS256".to_owned()],
        keys: vec![policies::JwtKeySpec {
            kid: None,
            pem: None,
            secret: Some("0123456789abcdef0123".to_owned()),
            jwks: None,
        }],
        consumer_claim: None,
        leeway_secs: None,
    }
}

pub fn key(id: &str, consumer: &str) -> KeyRecord {
    KeyRecord {
        id: id.to_owned(),
        consumer: consumer.to_owned(),
        hash: KeyHash::of(format!("tg_secret_{id}").as_bytes()),
        prefix: "tg_secr".to_owned(),
        label: None,
        created: 1_700_000_000,
        expires: None,
        revoked: false,
    }
}

pub fn credential(username: &str, consumer: &str) -> CredentialRecord {
    CredentialRecord {
        username: username.to_owned(),
        consumer: consumer.to_owned(),
        password_hash: password_hash(),
    }
}

pub fn certificate(id: &str) -> CertificateSpec {
    CertificateSpec {
        id: id.to_owned(),
        snis: vec![format!("{id}.example.com")],
        cert: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".to_owned(),
        key: "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n".to_owned(),
    }
}

/// Applies a change that must succeed.
pub fn apply(store: &Store, change: Change) -> u64 {
    store.apply(change, "test").expect("change applies")
}

pub fn create(store: &Store, object: Object) -> u64 {
    apply(store, Change::Create(object))
}

/// One of every kind, all referring to each other.
pub fn full_config() -> Config {
    let mut jwt_route = route("orders", "orders");
    jwt_route.policies = vec![PolicySpec::Jwt(policies::JwtSpec {
        issuers: vec!["auth".to_owned()],
        ..Default::default()
    })];
    Config {
        upstreams: vec![upstream("orders")],
        routes: vec![jwt_route, route("ping", "orders")],
        consumers: vec![consumer("acme", Some("gold"))],
        plans: vec![plan("gold")],
        jwt_issuers: vec![issuer("auth")],
        certificates: vec![certificate("api")],
        keys: vec![key("k1", "acme")],
        credentials: vec![credential("acme-user", "acme")],
    }
}
