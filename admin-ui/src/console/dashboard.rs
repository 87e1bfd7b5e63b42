//! `GET /`: traffic over the last minutes (requests/s, 5xx rate, p50/p99 latency) overall
//! and per route, drawn as server-side SVG charts; upstream health; the config revision.
//! The live part re-renders every few seconds through `assets/console.js`.

mod chart;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use leptos::prelude::*;

use super::layout::{page, Ctx};
use super::session::CurrentSession;
use super::traffic::{Figures, SAMPLE_INTERVAL};
use super::ConsoleState;
use chart::{chart, Series};

/// The window of the headline figures.
const HEADLINE_WINDOW: Duration = Duration::from_secs(60);
/// The window of the per-route table.
const ROUTE_WINDOW: Duration = Duration::from_secs(300);
/// The span of the charts.
pub(crate) const CHART_SPAN: Duration = Duration::from_secs(900);

/// `GET /`.
pub(crate) async fn show(
    State(state): State<ConsoleState>,
    Extension(session): Extension<CurrentSession>,
) -> Response {
    let state = &state;
    state
        .traffic
        .sample_if_older(&state.registry, SAMPLE_INTERVAL);
    let ctx = Ctx::new(state, &session);
    let now = Instant::now();
    let headline = state.traffic.summary(HEADLINE_WINDOW, now);
    let per_route = state.traffic.summary(ROUTE_WINDOW, now);
    let series = state.traffic.series(now);
    let (revision, config) = state.store.current();
    let health = state.live.upstream_health();
    let healthy = health.iter().filter(|h| h.healthy).count();
    let overall = headline.get("").copied().unwrap_or_default();
    let reload_error = state.live.last_reload_error().map(|e| {
        view! {
            <div class="flash err" role="alert">
                "The last config reload failed; the previous config keeps serving: " {e}
            </div>
        }
    });
    let store = state.store.health();
    let store_error = (!store.ok).then(|| {
        view! {
            <div class="flash err" role="alert">
                "The store cannot write: changes are refused until it can (free disk space; it \
                 recovers by itself). The proxy keeps serving the config it has. Last error: "
                {store.last_error.unwrap_or_default()}
            </div>
        }
    });
    // With `--redis`: whether limits are shared; a card, and a warning while they are not.
    let redis = state.live.redis();
    let redis_error = redis.as_ref().filter(|r| !r.up).map(|r| {
        view! {
            <div class="flash err" role="alert">
                "Redis (" {r.url.clone()} ") does not answer: each node enforces its share of \
                 every rate limit and quota until it does; quota counts are added when it is \
                 back. Last error: "
                {r.last_error.clone().unwrap_or_default()}
            </div>
        }
    });
    let redis_card = redis.map(|r| {
        let (class, value) = if r.up {
            ("stat ok", "up")
        } else {
            ("stat err", "down")
        };
        stat(class, "Redis", value.to_owned(), "shared limits")
    });
    // The response cache, once a route has one (or something is held).
    let has_cache = config
        .routes
        .iter()
        .any(|r| r.policies.iter().any(|p| p.kind() == "cache"));
    let cache_cards = state
        .live
        .cache_stats()
        .filter(|s| has_cache || s.bytes > 0)
        .map(|s| {
            let (ratio, size) = super::cache::figures(&s);
            view! {
                {stat("stat", "Cache hit ratio", ratio, "since start")}
                {stat("stat", "Cache size", size, "held / --cache-size")}
            }
        });
    let health_class = match (health.len(), healthy) {
        (0, _) => "stat",
        (n, h) if h == n => "stat ok",
        (_, 0) => "stat err",
        _ => "stat warn",
    };
    let cards = view! {
        <div class="stats">
            {stat("stat", "Requests/s", format!("{:.1}", overall.rps), "last minute")}
            {stat(
                if overall.error_rate > 0.0 { "stat err" } else { "stat" },
                "5xx rate",
                percent(overall.error_rate),
                "last minute",
            )}
            {stat("stat", "p50 latency", millis(overall.p50), "last minute")}
            {stat("stat", "p99 latency", millis(overall.p99), "last minute")}
            {stat(health_class, "Healthy targets", format!("{healthy}/{}", health.len()), "all upstreams")}
            {stat("stat", "Config revision", revision.to_string(), "applied")}
            {redis_card}
            {cache_cards}
        </div>
    };
    let span = CHART_SPAN.as_secs_f64();
    let points = |f: fn(&Figures) -> Option<f64>| -> Vec<(f64, f64)> {
        series
            .iter()
            .filter_map(|p| f(p).map(|v| (p.ago, v)))
            .collect()
    };
    let charts = view! {
        <div class="grid three">
            {chart("Requests per second", span, &[Series { name: "req/s", class: "s1", points: points(|p| Some(p.rps)) }], Unit::PerSecond)}
            {chart("5xx rate", span, &[Series { name: "5xx", class: "s3", points: points(|p| (p.requests > 0.0).then_some(p.error_rate)) }], Unit::Ratio)}
            {chart(
                "Latency",
                span,
                &[
                    Series { name: "p50", class: "s1", points: points(|p| p.p50) },
                    Series { name: "p99", class: "s2", points: points(|p| p.p99) },
                ],
                Unit::Seconds,
            )}
        </div>
    };
    let mut route_ids: Vec<String> = config.routes.iter().map(|r| r.id.clone()).collect();
    route_ids.extend(per_route.keys().filter(|k| !k.is_empty()).cloned());
    route_ids.sort();
    route_ids.dedup();
    let routes = route_table(&route_ids, &per_route, state, now);
    let upstreams = health_list(state);
    let body = view! {
        {store_error}
        {redis_error}
        {reload_error}
        <div id="live" data-live="1">
            {cards}
            {charts}
            <div class="grid two">
                <section class="card">
                    <h2>"Routes " <span class="muted">"(last 5 minutes)"</span></h2>
                    {routes}
                </section>
                <section class="card">
                    <h2>"Upstream health"</h2>
                    {upstreams}
                </section>
            </div>
        </div>
    }
    .into_any();
    page(&ctx, "/", "Dashboard", body).into_response()
}

/// How a chart's values read.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Unit {
    PerSecond,
    Ratio,
    Seconds,
}

impl Unit {
    pub fn format(self, value: f64) -> String {
        match self {
            Unit::PerSecond => format!("{value:.1}/s"),
            Unit::Ratio => percent(value),
            Unit::Seconds => millis(Some(value)),
        }
    }
}

fn stat(
    class: &'static str,
    label: &'static str,
    value: String,
    note: &'static str,
) -> impl IntoView {
    view! {
        <div class=class>
            <span class="label">{label}</span>
            <span class="value">{value}</span>
            <span class="note">{note}</span>
        </div>
    }
}

pub(crate) fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// Seconds shown as milliseconds (`12.3 ms`); `—` for none.
pub(crate) fn millis(seconds: Option<f64>) -> String {
    match seconds {
        None => "—".to_owned(),
        Some(s) if s < 0.01 => format!("{:.2} ms", s * 1000.0),
        Some(s) => format!("{:.0} ms", s * 1000.0),
    }
}

fn route_table(
    ids: &[String],
    figures: &BTreeMap<String, Figures>,
    state: &ConsoleState,
    now: Instant,
) -> AnyView {
    if ids.is_empty() {
        return view! {
            <p class="empty">"No routes yet. " <a href="/routes/new">"Create one"</a></p>
        }
        .into_any();
    }
    let rows = ids
        .iter()
        .map(|id| {
            let f = figures.get(id).copied().unwrap_or_default();
            let href = format!("/routes/{id}");
            let name = if id == "none" {
                view! { <span class="muted" title="requests that matched no route">"none"</span> }
                    .into_any()
            } else {
                view! { <a href=href>{id.clone()}</a> }.into_any()
            };
            view! {
                <tr data-route=id.clone()>
                    <td>{name}</td>
                    <td class="num">{format!("{:.2}", f.rps)}</td>
                    <td class="num">{format!("{:.0}", f.requests)}</td>
                    <td class="num">{percent(f.error_rate)}</td>
                    <td class="num">{millis(f.p50)}</td>
                    <td class="num">{millis(f.p99)}</td>
                    <td>{chart::sparkline(&state.traffic.route_series(id, now), CHART_SPAN.as_secs_f64())}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table>
                <thead>
                    <tr>
                        <th>"route"</th>
                        <th class="num">"req/s"</th>
                        <th class="num">"requests"</th>
                        <th class="num">"5xx"</th>
                        <th class="num">"p50"</th>
                        <th class="num">"p99"</th>
                        <th>"req/s, 15 min"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

fn health_list(state: &ConsoleState) -> AnyView {
    let config = state.store.config();
    if config.upstreams.is_empty() {
        return view! {
            <p class="empty">"No upstreams yet. " <a href="/upstreams/new">"Create one"</a></p>
        }
        .into_any();
    }
    let health = state.live.upstream_health();
    let items = config
        .upstreams
        .iter()
        .map(|u| {
            let href = format!("/upstreams/{}", u.id);
            let targets = u
                .targets
                .iter()
                .map(|t| {
                    let reported = health
                        .iter()
                        .find(|h| h.upstream == u.id && h.target == t.addr)
                        .map(|h| h.healthy);
                    let (class, title) = match reported {
                        Some(true) => ("dot ok", format!("{}: healthy", t.addr)),
                        Some(false) => ("dot err", format!("{}: unhealthy", t.addr)),
                        None => ("dot muted", format!("{}: not reported yet", t.addr)),
                    };
                    view! { <span class=class title=title.clone() aria-label=title></span> }
                })
                .collect_view();
            view! {
                <li>
                    <a href=href>{u.id.clone()}</a>
                    <span class="dots">{targets}</span>
                </li>
            }
        })
        .collect_view();
    view! { <ul class="health">{items}</ul> }.into_any()
}
