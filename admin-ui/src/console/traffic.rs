//! Traffic figures for the dashboard: the proxy's Prometheus registry is sampled every
//! [`SAMPLE_INTERVAL`] into a ring buffer of cumulative counters per route; rates, error
//! rates and latency quantiles come from the differences between samples. Quantiles are
//! estimated from the `tollgate_http_request_duration_seconds` buckets by linear
//! interpolation, as Prometheus' `histogram_quantile` does.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Weak;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How often the registry is sampled.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);
/// Samples kept: 15 minutes' worth.
const KEEP: usize = 181;

const REQUESTS: &str = "tollgate_http_requests_total";
const DURATION: &str = "tollgate_http_request_duration_seconds";

/// Cumulative counters of one route at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Counters {
    pub requests: f64,
    /// Responses with a 5xx status.
    pub errors: f64,
    /// `(upper bound, cumulative count)`, ascending, `+Inf` last.
    pub buckets: Vec<(f64, f64)>,
}

/// The registry's counters at one instant, per route.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub at: Instant,
    pub routes: BTreeMap<String, Counters>,
}

/// Figures over one interval: between two samples, or over a whole window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Figures {
    /// Seconds from the end of the interval to now.
    pub ago: f64,
    pub rps: f64,
    /// Share of 5xx answers, 0 to 1; 0 without requests.
    pub error_rate: f64,
    /// Seconds; `None` without requests.
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub requests: f64,
}

/// The sample ring buffer.
#[derive(Default)]
pub(crate) struct Traffic {
    samples: Mutex<VecDeque<Sample>>,
}

impl Traffic {
    /// Samples `registry` now.
    pub fn sample(&self, registry: &prometheus::Registry) {
        self.record(read(registry, Instant::now()));
    }

    /// Adds a sample (the oldest beyond 15 minutes' worth is dropped).
    pub fn record(&self, sample: Sample) {
        let mut samples = self.samples.lock();
        if samples.len() >= KEEP {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// Overall figures between each pair of consecutive samples, oldest first.
    pub fn series(&self, now: Instant) -> Vec<Figures> {
        let samples = self.samples.lock();
        samples
            .iter()
            .zip(samples.iter().skip(1))
            .map(|(a, b)| figures(&total(a), &total(b), b.at, a.at, now))
            .collect()
    }

    /// The figures of one route between each pair of consecutive samples, oldest first.
    pub fn route_series(&self, route: &str, now: Instant) -> Vec<Figures> {
        let samples = self.samples.lock();
        let empty = Counters::default();
        let of = |s: &Sample| s.routes.get(route).unwrap_or(&empty).clone();
        samples
            .iter()
            .zip(samples.iter().skip(1))
            .map(|(a, b)| figures(&of(a), &of(b), b.at, a.at, now))
            .collect()
    }

    /// Figures per route over the last `window` (at least the latest two samples), and
    /// overall under the key `""`. Empty with fewer than two samples.
    pub fn summary(&self, window: Duration, now: Instant) -> BTreeMap<String, Figures> {
        let samples = self.samples.lock();
        let Some(last) = samples.back() else {
            return BTreeMap::new();
        };
        let first = samples
            .iter()
            .rev()
            .skip(1)
            .take_while(|s| now.saturating_duration_since(s.at) <= window)
            .last()
            .or_else(|| samples.iter().rev().nth(1));
        let Some(first) = first else {
            return BTreeMap::new();
        };
        let empty = Counters::default();
        let mut out: BTreeMap<String, Figures> = last
            .routes
            .iter()
            .map(|(route, now_c)| {
                let then = first.routes.get(route).unwrap_or(&empty);
                (route.clone(), figures(then, now_c, last.at, first.at, now))
            })
            .collect();
        out.insert(
            String::new(),
            figures(&total(first), &total(last), last.at, first.at, now),
        );
        out
    }
}

/// Samples `registry` every [`SAMPLE_INTERVAL`] until the traffic buffer is dropped.
pub(crate) async fn run_sampler(traffic: Weak<Traffic>, registry: prometheus::Registry) {
    let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(traffic) = traffic.upgrade() else {
            return;
        };
        traffic.sample(&registry);
    }
}

/// The counters of every route in `registry` that has served a request.
pub(crate) fn read(registry: &prometheus::Registry, at: Instant) -> Sample {
    let mut routes: BTreeMap<String, Counters> = BTreeMap::new();
    for family in registry.gather() {
        let name = family.name();
        if name != REQUESTS && name != DURATION {
            continue;
        }
        for metric in family.get_metric() {
            let label = |wanted: &str| {
                metric
                    .get_label()
                    .iter()
                    .find(|l| l.name() == wanted)
                    .map(|l| l.value().to_owned())
            };
            let route = label("route").unwrap_or_else(|| "none".to_owned());
            let entry = routes.entry(route).or_default();
            if name == REQUESTS {
                let value = metric.get_counter().get_value();
                entry.requests += value;
                if label("status").is_some_and(|s| s.starts_with('5')) {
                    entry.errors += value;
                }
            } else {
                let histogram = metric.get_histogram();
                let mut buckets: Vec<(f64, f64)> = histogram
                    .get_bucket()
                    .iter()
                    .map(|b| (b.upper_bound(), b.cumulative_count() as f64))
                    .collect();
                buckets.push((f64::INFINITY, histogram.get_sample_count() as f64));
                entry.buckets = add_buckets(&entry.buckets, &buckets);
            }
        }
    }
    // A route that never served a request adds nothing to any figure (a missing route
    // reads as zeros); keeping it would cost every sample of a 10,000-route config
    // megabytes for nothing.
    routes.retain(|_, c| c.requests > 0.0 || c.buckets.iter().any(|(_, n)| *n > 0.0));
    Sample { at, routes }
}

/// Every route's counters added up.
fn total(sample: &Sample) -> Counters {
    sample
        .routes
        .values()
        .fold(Counters::default(), |acc, c| Counters {
            requests: acc.requests + c.requests,
            errors: acc.errors + c.errors,
            buckets: add_buckets(&acc.buckets, &c.buckets),
        })
}

/// Bucket lists added bound by bound (a bound missing on one side counts as the previous
/// bucket's count there, which is what a cumulative histogram means).
fn add_buckets(a: &[(f64, f64)], b: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut bounds: Vec<f64> = a.iter().chain(b).map(|(le, _)| *le).collect();
    bounds.sort_by(f64::total_cmp);
    bounds.dedup();
    let at = |list: &[(f64, f64)], le: f64| {
        list.iter()
            .take_while(|(bound, _)| *bound <= le)
            .last()
            .map_or(0.0, |(_, n)| *n)
    };
    bounds
        .into_iter()
        .map(|le| (le, at(a, le) + at(b, le)))
        .collect()
}

fn figures(
    then: &Counters,
    now_c: &Counters,
    end: Instant,
    start: Instant,
    now: Instant,
) -> Figures {
    let secs = end.saturating_duration_since(start).as_secs_f64();
    let requests = (now_c.requests - then.requests).max(0.0);
    let errors = (now_c.errors - then.errors).max(0.0);
    let buckets: Vec<(f64, f64)> = now_c
        .buckets
        .iter()
        .map(|(le, n)| {
            let before = then
                .buckets
                .iter()
                .find(|(b, _)| b == le)
                .map_or(0.0, |(_, m)| *m);
            (*le, (n - before).max(0.0))
        })
        .collect();
    Figures {
        ago: now.saturating_duration_since(end).as_secs_f64(),
        rps: if secs > 0.0 { requests / secs } else { 0.0 },
        error_rate: if requests > 0.0 {
            errors / requests
        } else {
            0.0
        },
        p50: quantile(0.5, &buckets),
        p99: quantile(0.99, &buckets),
        requests,
    }
}

/// The `q` quantile of a cumulative histogram, interpolated linearly inside its bucket; the
/// highest finite bound when it falls in `+Inf`. `None` when the histogram is empty.
pub(crate) fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower.0);
            }
            let in_bucket = count - lower.1;
            if in_bucket <= 0.0 {
                return Some(le);
            }
            return Some(lower.0 + (le - lower.0) * (rank - lower.1) / in_bucket);
        }
        lower = (le, count);
    }
    Some(lower.0)
}

impl Traffic {
    /// Samples `registry` unless the latest sample is younger than `max_age`, so a page
    /// always has fresh figures even before the sampler's next tick.
    pub fn sample_if_older(&self, registry: &prometheus::Registry, max_age: Duration) {
        let now = Instant::now();
        let is_fresh = self
            .samples
            .lock()
            .back()
            .is_some_and(|s| now.saturating_duration_since(s.at) < max_age);
        if !is_fresh {
            self.record(read(registry, now));
        }
    }
}
