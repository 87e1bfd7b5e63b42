//! Per-request cost of a typical chain (key_auth + rate_limit + plan quota + headers) and of
//! the key lookup with 100 vs 100,000 keys.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue, Method};
use policies::{
    Chain, ConsumerSpec, Counters, Directory, HeaderEditsSpec, HeadersSpec, KeyAuthSpec, KeyHash,
    KeyRecord, Per, PlanSpec, PolicySpec, QuotaPeriod, QuotaSpec, RateLimitSpec, RequestState,
    RequestView, Verdict,
};

fn directory(keys: usize, counters: &Counters) -> Directory {
    let plan = PlanSpec {
        id: "gold".into(),
        rate_limit: None,
        quota: Some(QuotaSpec {
            requests: u64::MAX >> 30,
            per: QuotaPeriod::Month,
        }),
    };
    let consumer = ConsumerSpec {
        id: "acme".into(),
        plan: Some("gold".into()),
        groups: vec![],
        metadata: BTreeMap::new(),
    };
    let records: Vec<KeyRecord> = (0..keys)
        .map(|i| KeyRecord {
            id: format!("k{i}"),
            consumer: "acme".into(),
            hash: KeyHash::of(format!("tg_key_{i}").as_bytes()),
            prefix: "tg_key".into(),
            label: None,
            created: 0,
            expires: None,
            revoked: false,
        })
        .collect();
    Directory::compile(&[consumer], &[plan], &records, &[], &[], counters).expect("valid directory")
}

fn bench_chain(c: &mut Criterion) {
    let counters = Counters::new();
    let dir = directory(1000, &counters);
    let specs = vec![
        PolicySpec::KeyAuth(KeyAuthSpec::default()),
        PolicySpec::RateLimit(RateLimitSpec {
            requests: u32::MAX,
            per: Per::Second,
            burst: None,
            key: Some("consumer".into()),
        }),
        PolicySpec::Headers(HeadersSpec {
            request: HeaderEditsSpec {
                set: BTreeMap::from([("x-gateway".to_owned(), "tollgate".to_owned())]),
                ..Default::default()
            },
            response: HeaderEditsSpec {
                remove: vec!["server".into()],
                ..Default::default()
            },
        }),
    ];
    let chain = Chain::compile("orders", &specs, &counters).expect("valid chain");
    let mut headers = HeaderMap::new();
    headers.insert("x-api-key", HeaderValue::from_static("tg_key_500"));
    let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let view = RequestView {
        method: &Method::GET,
        path: "/v1/orders",
        query: None,
        headers: &headers,
        client_ip: ip,
        peer_ip: ip,
    };
    let mut now = Duration::from_secs(1_800_000_000);
    c.bench_function("chain key_auth+rate_limit+quota+headers", |b| {
        b.iter(|| {
            now += Duration::from_nanos(1);
            let mut state = RequestState::default();
            let v = chain.on_request(black_box(&view), &mut state, &dir, now);
            assert!(matches!(v, Verdict::Continue));
            let mut response = HeaderMap::new();
            chain.on_response(&state, &mut response);
            black_box(response);
        })
    });
}

fn bench_key_lookup(c: &mut Criterion) {
    let counters = Counters::new();
    for n in [100usize, 100_000] {
        let dir = directory(n, &counters);
        let raw: Vec<String> = (0..n)
            .step_by((n / 100).max(1))
            .map(|i| format!("tg_key_{i}"))
            .collect();
        let hashes: Vec<KeyHash> = raw.iter().map(|k| KeyHash::of(k.as_bytes())).collect();
        let mut i = 0;
        // What key_auth does per request: sha256 of the presented key, then one probe.
        c.bench_function(&format!("key lookup {n} keys"), |b| {
            b.iter(|| {
                i = (i + 1) % raw.len();
                black_box(
                    dir.key(&KeyHash::of(black_box(raw[i].as_bytes())))
                        .is_some(),
                )
            })
        });
        // The map probe alone.
        c.bench_function(&format!("key probe {n} keys"), |b| {
            b.iter(|| {
                i = (i + 1) % hashes.len();
                black_box(dir.key(black_box(&hashes[i])).is_some())
            })
        });
    }
}

criterion_group!(benches, bench_chain, bench_key_lookup);
criterion_main!(benches);
