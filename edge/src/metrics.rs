//! The Prometheus metrics of the contract, on one registry, and the `/metrics` endpoint.
//!
//! Per-request cost: a route's histograms are resolved when the snapshot is compiled
//! ([`RouteMetrics`]); its request counters are cached per (method, common status) on first
//! use, so the hot path does no label hashing and no allocation. Label values are bounded:
//! route ids (or `none`), a fixed set of methods (else `OTHER`), status codes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use http::Method;
use prometheus::core::{Collector, MetricVec, MetricVecBuilder};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The route label of a request that matched no route.
pub const NO_ROUTE: &str = "none";

/// Method label values; anything else is `OTHER`.
const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "OTHER",
];

/// Statuses whose counters are cached per route; others go through the label lookup.
const COMMON_STATUSES: [u16; 20] = [
    200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 405, 413, 429, 431, 499, 500, 502, 503, 504,
    101,
];

const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("registering a metric: {0}")]
    Register(#[from] prometheus::Error),
}

/// Every metric of the gateway.
pub struct Metrics {
    pub registry: Registry,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    upstream_duration: HistogramVec,
    /// `tollgate_upstream_target_healthy{upstream, target}`.
    pub target_healthy: IntGaugeVec,
    /// `tollgate_upstream_panic{upstream}`: 1 while no target of the upstream passes its
    /// checks and requests go to all of them (`when_all_unhealthy: send_to_all`).
    pub upstream_panic: IntGaugeVec,
    /// `tollgate_policy_rejections_total{route, policy, status}` (counted by the policy chain).
    pub policy_rejections: IntCounterVec,
    /// `tollgate_config_revision`.
    pub config_revision: IntGauge,
    /// `tollgate_config_reload_errors_total`.
    pub reload_errors: IntCounter,
    /// `tollgate_access_log_dropped_total`: lines dropped because the writer fell behind.
    pub access_log_dropped: IntCounter,
    /// `tollgate_connections_open`: client connections of the proxy held open now.
    pub connections_open: IntGauge,
    /// `tollgate_connections_refused_total`: client connections closed at once because
    /// `--max-connections` were open.
    pub connections_refused: IntCounter,
    /// `tollgate_cache_requests_total{route, result}` (hit, miss, stale, bypass).
    pub cache_requests: IntCounterVec,
    /// `tollgate_cache_size_bytes`: what the response cache holds.
    pub cache_size: IntGauge,
    none: OnceLock<Arc<RouteMetrics>>,
}

impl Metrics {
    /// Creates and registers every metric on a new registry.
    pub fn new() -> Result<Arc<Metrics>, MetricsError> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "tollgate_http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "tollgate_http_request_duration_seconds",
                "Time from request header to the end of the response",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )?;
        let upstream_duration = HistogramVec::new(
            HistogramOpts::new(
                "tollgate_upstream_duration_seconds",
                "Time spent on the upstream, from connect to the end of its response",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "upstream"],
        )?;
        let target_healthy = IntGaugeVec::new(
            Opts::new(
                "tollgate_upstream_target_healthy",
                "1 when the target is healthy",
            ),
            &["upstream", "target"],
        )?;
        let upstream_panic = IntGaugeVec::new(
            Opts::new(
                "tollgate_upstream_panic",
                "1 while no target of the upstream is healthy and requests go to all of them",
            ),
            &["upstream"],
        )?;
        let policy_rejections = IntCounterVec::new(
            Opts::new(
                "tollgate_policy_rejections_total",
                "Requests refused by a policy",
            ),
            &["route", "policy", "status"],
        )?;
        let config_revision = IntGauge::new(
            "tollgate_config_revision",
            "Config revision the proxy serves",
        )?;
        let reload_errors = IntCounter::new(
            "tollgate_config_reload_errors_total",
            "Config reloads that failed to compile",
        )?;
        let access_log_dropped = IntCounter::new(
            "tollgate_access_log_dropped_total",
            "Access log lines dropped because the writer fell behind",
        )?;
        let connections_open = IntGauge::new(
            "tollgate_connections_open",
            "Client connections of the proxy open now",
        )?;
        let connections_refused = IntCounter::new(
            "tollgate_connections_refused_total",
            "Client connections closed at once because --max-connections were open",
        )?;
        let cache_requests = IntCounterVec::new(
            Opts::new(
                "tollgate_cache_requests_total",
                "Requests of routes with a cache, by what the cache did",
            ),
            &["route", "result"],
        )?;
        let cache_size = IntGauge::new(
            "tollgate_cache_size_bytes",
            "Bytes held by the response cache",
        )?;
        registry.register(Box::new(cache_requests.clone()))?;
        registry.register(Box::new(cache_size.clone()))?;
        registry.register(Box::new(connections_open.clone()))?;
        registry.register(Box::new(connections_refused.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(request_duration.clone()))?;
        registry.register(Box::new(upstream_duration.clone()))?;
        registry.register(Box::new(target_healthy.clone()))?;
        registry.register(Box::new(upstream_panic.clone()))?;
        registry.register(Box::new(policy_rejections.clone()))?;
        registry.register(Box::new(config_revision.clone()))?;
        registry.register(Box::new(reload_errors.clone()))?;
        registry.register(Box::new(access_log_dropped.clone()))?;
        Ok(Arc::new(Metrics {
            registry,
            requests,
            request_duration,
            upstream_duration,
            target_healthy,
            upstream_panic,
            policy_rejections,
            config_revision,
            reload_errors,
            access_log_dropped,
            connections_open,
            connections_refused,
            cache_requests,
            cache_size,
            none: OnceLock::new(),
        }))
    }

    /// Resolves the handles of one route (done at snapshot compile).
    pub fn route(&self, route: &str, upstream: &str) -> RouteMetrics {
        RouteMetrics {
            route: route.to_owned(),
            duration: self.request_duration.with_label_values(&[route]),
            upstream_duration: Some(self.upstream_duration.with_label_values(&[route, upstream])),
            requests: self.requests.clone(),
            cached: OnceLock::new(),
            retired: AtomicBool::new(false),
        }
    }

    /// The handles of requests that matched no route.
    pub fn no_route(&self) -> Arc<RouteMetrics> {
        self.none
            .get_or_init(|| {
                Arc::new(RouteMetrics {
                    route: NO_ROUTE.to_owned(),
                    duration: self.request_duration.with_label_values(&[NO_ROUTE]),
                    upstream_duration: None,
                    requests: self.requests.clone(),
                    cached: OnceLock::new(),
                    retired: AtomicBool::new(false),
                })
            })
            .clone()
    }

    /// Drops every series of the routes in `routes`, which left the config: label values
    /// stay bounded by the config, not by its history. Costs one walk
    /// over the series of each per-route metric, however many routes leave: a walk per
    /// route made a config of 20,000 routes going back to one spend minutes (and hundreds
    /// of MB of collected copies) in the reload, every later reload waiting behind it.
    pub fn forget_routes(&self, routes: &HashSet<&str>) {
        if routes.is_empty() {
            return;
        }
        for route in routes {
            let _ = self.request_duration.remove_label_values(&[route]);
        }
        forget_matching(&self.requests, "route", routes);
        forget_matching(&self.upstream_duration, "route", routes);
        forget_matching(&self.policy_rejections, "route", routes);
        forget_matching(&self.cache_requests, "route", routes);
    }

    /// Drops the upstream time series of `route` on `upstream` (the route moved to another
    /// upstream).
    pub fn forget_route_upstream(&self, route: &str, upstream: &str) {
        let _ = self
            .upstream_duration
            .remove_label_values(&[route, upstream]);
    }

    /// Registers `tollgate_store_errors_total{op}` and `tollgate_store_ok`, read from
    /// `store` at each scrape (called once, at start).
    pub fn watch_store(&self, store: storage::Store) -> Result<(), MetricsError> {
        let errors = IntCounterVec::new(
            Opts::new(
                "tollgate_store_errors_total",
                "Store writes, usage saves and flushes that failed",
            ),
            &["op"],
        )?;
        let ok = IntGauge::new(
            "tollgate_store_ok",
            "1 while the store writes, 0 from a failed write until it recovers",
        )?;
        self.registry.register(Box::new(StoreMetrics {
            store,
            errors,
            ok,
            scraping: std::sync::Mutex::new(()),
        }))?;
        Ok(())
    }

    /// The registry in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail on I/O; a metric family error leaves a partial page.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// The store's health as metrics, brought up to date at each scrape.
struct StoreMetrics {
    store: storage::Store,
    errors: IntCounterVec,
    ok: IntGauge,
    /// Two scrapes at once would each add the same increase.
    scraping: std::sync::Mutex<()>,
}

impl Collector for StoreMetrics {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        let mut descs = self.errors.desc();
        descs.extend(self.ok.desc());
        descs
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let _scraping = self
            .scraping
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let health = self.store.health();
        for op in storage::Op::ALL {
            let counter = self.errors.with_label_values(&[op.name()]);
            counter.inc_by(health.errors_by_op[op as usize].saturating_sub(counter.get()));
        }
        self.ok.set(i64::from(health.ok));
        let mut families = self.errors.collect();
        families.extend(self.ok.collect());
        families
    }
}

/// Removes each series of `metrics` whose label `name` is `value`.
fn forget_matching<T: MetricVecBuilder>(
    metrics: &MetricVec<T>,
    name: &str,
    values: &HashSet<&str>,
) {
    for family in metrics.collect() {
        for series in family.get_metric() {
            let labels = series.get_label();
            if labels
                .iter()
                .any(|l| l.name() == name && values.contains(l.value()))
            {
                let by_name: HashMap<&str, &str> =
                    labels.iter().map(|l| (l.name(), l.value())).collect();
                let _ = metrics.remove(&by_name);
            }
        }
    }
}

/// The pre-resolved metric handles of one route.
pub struct RouteMetrics {
    route: String,
    duration: Histogram,
    upstream_duration: Option<Histogram>,
    requests: IntCounterVec,
    /// Counters by (method, common status), made on the route's first request: 3 KiB per
    /// route that would otherwise sit unused in a config of 10,000 routes.
    cached: OnceLock<Box<[OnceLock<IntCounter>]>>,
    /// Set once the route left the config and its series were dropped: counting would
    /// bring them back.
    retired: AtomicBool,
}

impl RouteMetrics {
    /// Stops counting requests (see `retired`).
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Relaxed);
    }

    /// Records one finished request. `upstream` is the time spent on the upstream, if any.
    pub fn observe(
        &self,
        method: &Method,
        status: u16,
        total: Duration,
        upstream: Option<Duration>,
    ) {
        self.duration.observe(total.as_secs_f64());
        if let (Some(h), Some(d)) = (&self.upstream_duration, upstream) {
            h.observe(d.as_secs_f64());
        }
        self.count(method, status);
    }

    /// Counts one request; a common (method, status) pair uses its cached counter, so the
    /// usual request does no label lookup and no reference-count traffic.
    fn count(&self, method: &Method, status: u16) {
        if self.retired.load(Ordering::Relaxed) {
            return;
        }
        let m = method_index(method);
        let mut digits = [0u8; 3];
        let status_label = status_label(status, &mut digits);
        let resolve = || {
            self.requests
                .with_label_values(&[self.route.as_str(), METHODS[m], status_label])
        };
        match COMMON_STATUSES.iter().position(|s| *s == status) {
            Some(s) => self.cached.get_or_init(|| {
                std::iter::repeat_with(OnceLock::new)
                    .take(METHODS.len() * COMMON_STATUSES.len())
                    .collect()
            })[m * COMMON_STATUSES.len() + s]
                .get_or_init(resolve)
                .inc(),
            None => resolve().inc(),
        }
    }
}

/// Index into [`METHODS`]; unknown methods are `OTHER`.
fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::PATCH => 5,
        Method::OPTIONS => 6,
        Method::CONNECT => 7,
        Method::TRACE => 8,
        _ => 9,
    }
}

/// A status code as a label without allocating (codes outside 100..=999 become `0`).
fn status_label(status: u16, buf: &mut [u8; 3]) -> &str {
    if !(100..=999).contains(&status) {
        return "0";
    }
    buf[0] = b'0' + (status / 100) as u8;
    buf[1] = b'0' + (status / 10 % 10) as u8;
    buf[2] = b'0' + (status % 10) as u8;
    std::str::from_utf8(buf).unwrap_or("0")
}

/// `GET /metrics` in the Prometheus text format.
pub fn router(metrics: Arc<Metrics>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                    metrics.render(),
                )
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_metrics_follow_the_store_and_count_each_failure_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = storage::Store::open(dir.path()).expect("store");
        let metrics = Metrics::new().expect("metrics");
        metrics.watch_store(store.clone()).expect("registered");
        let text = metrics.render();
        assert!(text.contains("tollgate_store_ok 1"), "{text}");
        assert!(
            text.contains("tollgate_store_errors_total{op=\"write\"} 0"),
            "{text}"
        );
        // The acknowledged-revision file cannot be replaced: one failed write.
        let blocker = dir
            .path()
            .join(format!("{}.tmp", storage::acknowledged::FILE_NAME));
        std::fs::create_dir(&blocker).expect("blocker");
        let spec = serde_json::from_value(serde_json::json!({"id": "acme"})).expect("spec");
        store
            .apply(
                storage::Change::Create(storage::Object::Consumer(spec)),
                "test",
            )
            .expect("sled takes it");
        for _ in 0..2 {
            let text = metrics.render();
            assert!(text.contains("tollgate_store_ok 0"), "{text}");
            assert!(
                text.contains("tollgate_store_errors_total{op=\"write\"} 1"),
                "{text}"
            );
            assert!(
                text.contains("tollgate_store_errors_total{op=\"usage\"} 0"),
                "{text}"
            );
        }
        std::fs::remove_dir(&blocker).expect("blocker removed");
        store.recover().expect("recovers");
        assert!(metrics.render().contains("tollgate_store_ok 1"));
    }

    #[test]
    fn counts_requests_by_route_method_and_status() {
        let m = Metrics::new().expect("metrics");
        let r = m.route("orders", "orders-up");
        r.observe(
            &Method::GET,
            200,
            Duration::from_millis(3),
            Some(Duration::from_millis(2)),
        );
        r.observe(&Method::GET, 200, Duration::from_millis(3), None);
        r.observe(
            &"PURGE".parse().expect("method"),
            418,
            Duration::from_millis(1),
            None,
        );
        let text = m.render();
        assert!(
            text.contains(
                r#"tollgate_http_requests_total{method="GET",route="orders",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"method="OTHER",route="orders",status="418"} 1"#),
            "{text}"
        );
        assert!(text.contains(
            r#"tollgate_upstream_duration_seconds_count{route="orders",upstream="orders-up"} 1"#
        ));
    }

    #[test]
    fn unmatched_requests_use_route_none() {
        let m = Metrics::new().expect("metrics");
        m.no_route()
            .observe(&Method::POST, 404, Duration::from_millis(1), None);
        assert!(m
            .render()
            .contains(r#"{method="POST",route="none",status="404"} 1"#));
    }

    #[test]
    fn status_labels_are_three_digits() {
        let mut b = [0u8; 3];
        assert_eq!(status_label(503, &mut b), "503");
        assert_eq!(status_label(0, &mut b), "0");
    }

    #[test]
    fn forgets_every_series_of_many_routes_at_once() {
        let m = Metrics::new().expect("metrics");
        let ids: Vec<String> = (0..2000).map(|i| format!("r{i}")).collect();
        let handles: Vec<RouteMetrics> = ids.iter().map(|id| m.route(id, "up")).collect();
        for h in &handles {
            h.observe(
                &Method::GET,
                200,
                Duration::from_millis(1),
                Some(Duration::ZERO),
            );
        }
        let kept = m.route("kept", "up");
        kept.observe(&Method::GET, 200, Duration::from_millis(1), None);
        let gone: HashSet<&str> = ids.iter().map(String::as_str).collect();
        m.forget_routes(&gone);
        let text = m.render();
        assert!(!text.contains("route=\"r1\""), "{text}");
        assert!(text.contains("route=\"kept\""));
    }
}
