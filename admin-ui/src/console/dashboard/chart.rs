//! Line charts as inline SVG, drawn on the server.

use leptos::prelude::*;

use super::Unit;
use crate::console::traffic::Figures;

/// One line of a chart: `(seconds ago, value)` points.
pub(crate) struct Series {
    pub name: &'static str,
    /// The CSS class that colours it (`s1`, `s2`, `s3`).
    pub class: &'static str,
    pub points: Vec<(f64, f64)>,
}

const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 170.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 22.0;

/// A chart of `series` over the last `span` seconds, its y axis from 0 to a bit above the
/// highest value.
pub(crate) fn chart(title: &'static str, span: f64, series: &[Series], unit: Unit) -> AnyView {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let highest = series
        .iter()
        .flat_map(|s| s.points.iter().map(|(_, v)| *v))
        .fold(0.0_f64, f64::max);
    let top = if highest > 0.0 { highest * 1.15 } else { 1.0 };
    let x = |ago: f64| LEFT + plot_w * (1.0 - (ago / span).clamp(0.0, 1.0));
    let y = |v: f64| TOP + plot_h * (1.0 - (v / top).clamp(0.0, 1.0));
    let grid = (0..=3)
        .map(|i| {
            let value = top * f64::from(i) / 3.0;
            let gy = format!("{:.1}", y(value));
            let label = unit.format(value);
            view! {
                <line x1=LEFT.to_string() x2=(WIDTH - RIGHT).to_string() y1=gy.clone() y2=gy.clone() class="grid"/>
                <text x=(LEFT - 6.0).to_string() y=gy text-anchor="end" dominant-baseline="middle" class="axis">{label}</text>
            }
        })
        .collect_view();
    let ticks = [span, span * 2.0 / 3.0, span / 3.0, 0.0]
        .into_iter()
        .map(|ago| {
            let label = if ago == 0.0 {
                "now".to_owned()
            } else {
                format!("-{}m", (ago / 60.0).round())
            };
            // The end labels stay inside the picture.
            let anchor = if ago == 0.0 {
                "end"
            } else if ago == span {
                "start"
            } else {
                "middle"
            };
            view! {
                <text x=format!("{:.1}", x(ago)) y=(HEIGHT - 6.0).to_string() text-anchor=anchor class="axis">{label}</text>
            }
        })
        .collect_view();
    let has_data = series.iter().any(|s| !s.points.is_empty());
    let lines = series
        .iter()
        .map(|s| {
            let points = s
                .points
                .iter()
                .map(|(ago, v)| format!("{:.1},{:.1}", x(*ago), y(*v)))
                .collect::<Vec<_>>()
                .join(" ");
            let class = format!("line {}", s.class);
            // The latest point is marked, so a series of one point still shows.
            let last = s.points.last().map(|(ago, v)| {
                let class = format!("point {}", s.class);
                view! { <circle cx=format!("{:.1}", x(*ago)) cy=format!("{:.1}", y(*v)) r="3" class=class/> }
            });
            view! {
                <polyline points=points class=class fill="none"/>
                {last}
            }
        })
        .collect_view();
    let waiting = (!has_data).then(|| {
        view! {
            <text x=(LEFT + plot_w / 2.0).to_string() y=(TOP + plot_h / 2.0).to_string() text-anchor="middle" class="waiting">
                "Collecting data…"
            </text>
        }
    });
    let legend = series
        .iter()
        .map(|s| {
            let latest = s
                .points
                .last()
                .map_or_else(|| "—".to_owned(), |(_, v)| unit.format(*v));
            let class = format!("swatch {}", s.class);
            view! {
                <span class="legend-item">
                    <span class=class></span>
                    {s.name}
                    " "
                    <strong>{latest}</strong>
                </span>
            }
        })
        .collect_view();
    let view_box = format!("0 0 {WIDTH} {HEIGHT}");
    view! {
        <figure class="card chart">
            <figcaption>
                <span>{title}</span>
                <span class="legend">{legend}</span>
            </figcaption>
            <svg viewBox=view_box role="img" aria-label=title>
                {grid}
                {ticks}
                {lines}
                {waiting}
            </svg>
        </figure>
    }
    .into_any()
}

const SPARK_WIDTH: f64 = 120.0;
const SPARK_HEIGHT: f64 = 24.0;

/// A small line of requests/s over the last `span` seconds, for a table cell.
pub(crate) fn sparkline(series: &[Figures], span: f64) -> AnyView {
    let highest = series.iter().map(|f| f.rps).fold(0.0_f64, f64::max);
    let top = if highest > 0.0 { highest } else { 1.0 };
    let points = series
        .iter()
        .map(|f| {
            let x = SPARK_WIDTH * (1.0 - (f.ago / span).clamp(0.0, 1.0));
            let y = 1.0 + (SPARK_HEIGHT - 2.0) * (1.0 - f.rps / top);
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ");
    let view_box = format!("0 0 {SPARK_WIDTH} {SPARK_HEIGHT}");
    let label = format!("up to {:.1} requests/s", highest);
    view! {
        <svg class="spark" viewBox=view_box preserveAspectRatio="none" role="img" aria-label=label>
            <polyline points=points class="line s1" fill="none"/>
        </svg>
    }
    .into_any()
}
