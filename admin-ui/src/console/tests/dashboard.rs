use axum::http::StatusCode;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::{Console, FakeLive};
use crate::TargetHealth;

/// The proxy's request metrics, as ADMIN_API.md names them.
pub(super) struct Metrics {
    pub registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("tollgate_http_requests_total", "requests"),
            &["route", "method", "status"],
        )
        .expect("valid");
        let duration = HistogramVec::new(
            HistogramOpts::new("tollgate_http_request_duration_seconds", "latency"),
            &["route"],
        )
        .expect("valid");
        registry
            .register(Box::new(requests.clone()))
            .expect("registers");
        registry
            .register(Box::new(duration.clone()))
            .expect("registers");
        Self {
            registry,
            requests,
            duration,
        }
    }

    /// Counts `n` requests of `route` answered with `status` in `seconds`.
    pub fn serve(&self, route: &str, status: &str, seconds: f64, n: u64) {
        self.requests
            .with_label_values(&[route, "GET", status])
            .inc_by(n);
        for _ in 0..n {
            self.duration.with_label_values(&[route]).observe(seconds);
        }
    }
}

#[tokio::test]
async fn dashboard_shows_live_figures_per_route_and_health() {
    let metrics = Metrics::new();
    let live = FakeLive {
        health: vec![
            TargetHealth {
                upstream: "orders".into(),
                target: "127.0.0.1:9001".into(),
                healthy: true,
            },
            TargetHealth {
                upstream: "orders".into(),
                target: "127.0.0.1:9002".into(),
                healthy: false,
            },
        ],
        reload_error: Some("routes[r1].upstream: unknown upstream".into()),
        ..FakeLive::default()
    };
    let console = Console::with(
        live,
        metrics.registry.clone(),
        std::time::Duration::from_secs(60),
    );
    let session = console.login().await;
    session
        .post(
            &console,
            "/upstreams/new",
            &[
                ("id", "orders"),
                ("targets", "127.0.0.1:9001\n127.0.0.1:9002"),
            ],
        )
        .await;
    let empty = session.get(&console, "/").await;
    assert!(empty.body.contains("Collecting data…"));

    console.state.sample_traffic();
    metrics.serve("orders", "200", 0.004, 90);
    metrics.serve("orders", "503", 0.2, 10);
    console.state.sample_traffic();
    let page = session.get(&console, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    let row = &page.body[page.body.find("data-route=\"orders\"").expect("route row")..];
    let row = &row[..row.find("</tr>").expect("row end")];
    assert!(row.contains(">100<"), "{row}");
    assert!(row.contains(">10.0%<"), "{row}");
    assert!(
        row.contains("class=\"spark\""),
        "a per-route sparkline: {row}"
    );
    assert!(page.body.contains("<polyline"), "a chart line");
    assert!(!page.body.contains("Collecting data…"));
    assert!(page.body.contains("1/2"), "healthy targets");
    assert!(page.body.contains("dot err"));
    assert!(page.body.contains("The last config reload failed"));
    assert!(page.body.contains("routes[r1].upstream: unknown upstream"));
    let revision = console.store().revision().to_string();
    assert!(page
        .body
        .contains(&format!("<span class=\"value\">{revision}</span>")));
    assert!(page.body.contains("id=\"live\" data-live=\"1\""));
}

#[tokio::test]
async fn dashboard_says_when_the_store_cannot_write_until_it_recovers() {
    let console = Console::new();
    let session = console.login().await;
    assert!(!session
        .get(&console, "/")
        .await
        .body
        .contains("The store cannot write"));
    // A directory where the acknowledged-revision file's temporary goes: the write lands
    // in sled but the file cannot be replaced, so the store reports itself degraded.
    let blocker = console
        .dir()
        .join(format!("{}.tmp", storage::acknowledged::FILE_NAME));
    std::fs::create_dir(&blocker).expect("blocker");
    session
        .post(
            &console,
            "/upstreams/new",
            &[("id", "orders"), ("targets", "127.0.0.1:9001")],
        )
        .await;
    assert!(!console.store().health().ok);
    let page = session.get(&console, "/").await;
    assert!(
        page.body.contains("The store cannot write"),
        "{}",
        page.body
    );
    let refused = session
        .post(
            &console,
            "/upstreams/new",
            &[("id", "billing"), ("targets", "127.0.0.1:9002")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(refused.body.contains("cannot write"), "{}", refused.body);

    std::fs::remove_dir(&blocker).expect("blocker removed");
    console.store().recover().expect("recovers");
    let page = session.get(&console, "/").await;
    assert!(
        !page.body.contains("The store cannot write"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn dashboard_shows_whether_redis_shares_the_limits() {
    let live = |up: bool| FakeLive {
        redis: Some(crate::RedisStatus {
            url: "redis://app:***@cache:6379".into(),
            up,
            last_error: (!up).then(|| "connection refused".to_owned()),
        }),
        ..FakeLive::default()
    };
    let down = Console::with(
        live(false),
        Registry::new(),
        std::time::Duration::from_secs(3600),
    );
    let session = down.login().await;
    let page = session.get(&down, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("does not answer"), "a warning");
    assert!(page.body.contains("connection refused"));
    assert!(page.body.contains("redis://app:***@cache:6379"));
    assert!(page.body.contains(">down<"), "the Redis card");
    let up = Console::with(
        live(true),
        Registry::new(),
        std::time::Duration::from_secs(3600),
    );
    let session = up.login().await;
    let page = session.get(&up, "/").await;
    assert!(page.body.contains(">up<"), "the Redis card");
    assert!(!page.body.contains("does not answer"));
    // Without --redis, no card.
    let none = Console::new();
    let session = none.login().await;
    let page = session.get(&none, "/").await;
    assert!(!page.body.contains("Redis"));
}
