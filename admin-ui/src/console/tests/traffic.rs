use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::console::traffic::{quantile, read, Counters, Sample, Traffic};

use super::dashboard::Metrics;

#[test]
fn quantiles_interpolate_inside_the_bucket() {
    // 100 requests: 50 under 10 ms, 40 more under 100 ms, 10 more under 1 s.
    let buckets = [
        (0.01, 50.0),
        (0.1, 90.0),
        (1.0, 100.0),
        (f64::INFINITY, 100.0),
    ];
    let p50 = quantile(0.5, &buckets).expect("some");
    assert!((p50 - 0.01).abs() < 1e-9, "{p50}");
    let p75 = quantile(0.75, &buckets).expect("some");
    assert!((p75 - (0.01 + 0.09 * 25.0 / 40.0)).abs() < 1e-9, "{p75}");
    let p99 = quantile(0.99, &buckets).expect("some");
    assert!((p99 - (0.1 + 0.9 * 9.0 / 10.0)).abs() < 1e-9, "{p99}");
    assert_eq!(quantile(0.5, &[(0.1, 0.0), (f64::INFINITY, 0.0)]), None);
    // Beyond the highest finite bound: that bound.
    assert_eq!(
        quantile(0.99, &[(0.1, 1.0), (f64::INFINITY, 10.0)]),
        Some(0.1)
    );
}

#[test]
fn reads_requests_errors_and_buckets_per_route() {
    let metrics = Metrics::new();
    metrics.serve("orders", "200", 0.003, 8);
    metrics.serve("orders", "502", 0.3, 2);
    metrics.serve("users", "200", 0.02, 1);
    let sample = read(&metrics.registry, Instant::now());
    let orders = &sample.routes["orders"];
    assert_eq!(orders.requests, 10.0);
    assert_eq!(orders.errors, 2.0);
    assert_eq!(orders.buckets.last(), Some(&(f64::INFINITY, 10.0)));
    assert_eq!(sample.routes["users"].requests, 1.0);
}

fn sample(at: Instant, requests: f64, errors: f64, fast: f64) -> Sample {
    let counters = Counters {
        requests,
        errors,
        buckets: vec![(0.01, fast), (0.1, requests), (f64::INFINITY, requests)],
    };
    Sample {
        at,
        routes: BTreeMap::from([("orders".to_owned(), counters)]),
    }
}

#[test]
fn rates_come_from_the_difference_between_samples() {
    let traffic = Traffic::default();
    let t0 = Instant::now();
    let t1 = t0 + Duration::from_secs(10);
    let t2 = t1 + Duration::from_secs(10);
    traffic.record(sample(t0, 100.0, 0.0, 100.0));
    traffic.record(sample(t1, 300.0, 20.0, 200.0));
    traffic.record(sample(t2, 300.0, 20.0, 200.0));
    let series = traffic.series(t2);
    assert_eq!(series.len(), 2);
    assert!((series[0].rps - 20.0).abs() < 1e-9);
    assert!((series[0].error_rate - 0.1).abs() < 1e-9);
    assert!((series[0].ago - 10.0).abs() < 1e-9);
    // Half of the 200 new requests were under 10 ms.
    assert!((series[0].p50.expect("p50") - 0.01).abs() < 1e-9);
    assert_eq!(series[1].rps, 0.0);
    assert_eq!(series[1].p50, None);

    let summary = traffic.summary(Duration::from_secs(60), t2);
    let orders = summary["orders"];
    assert!((orders.rps - 10.0).abs() < 1e-9, "{orders:?}");
    assert_eq!(orders.requests, 200.0);
    assert_eq!(summary[""].requests, 200.0);
    // A short window still uses the latest two samples.
    assert_eq!(
        traffic.summary(Duration::from_secs(1), t2)["orders"].requests,
        0.0
    );
}

#[test]
fn keeps_fifteen_minutes_of_samples() {
    let traffic = Traffic::default();
    let t0 = Instant::now();
    for i in 0..400u64 {
        traffic.record(sample(t0 + Duration::from_secs(5 * i), i as f64, 0.0, 0.0));
    }
    assert_eq!(traffic.series(t0).len(), 180);
}
