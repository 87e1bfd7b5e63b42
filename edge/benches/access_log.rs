//! The cost of one access log line on the request path: [`edge::access_log::format_line`]
//! into a buffer that is emptied as the writer thread does, for a typical proxied request
//! (a generated request id, an IPv4 client, a route, an upstream and a target).

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion};
use edge::access_log::{format_line, Entry};

fn format(c: &mut Criterion) {
    let entry = Entry {
        route: "orders",
        method: "GET",
        path: "/v1/orders/7",
        status: 200,
        latency: Duration::from_micros(1234),
        upstream: Some("orders"),
        target: Some("127.0.0.1:9001"),
        request_id: "5f3a9c1e2b7d4a60-1a2b3c",
        client_ip: Some("192.0.2.17".parse().expect("ip")),
        consumer: Some("acme"),
        grpc_status: None,
    };
    let mut buf = Vec::with_capacity(64 * 1024);
    let now = SystemTime::now();
    c.bench_function("access_log_line", |b| {
        b.iter(|| {
            if buf.len() > 60 * 1024 {
                buf.clear();
            }
            format_line(&mut buf, black_box(&entry), black_box(now));
        })
    });
}

criterion_group!(benches, format);
criterion_main!(benches);
