//! What each resource's pages show: its form fields, its list columns, and the live
//! extras of a detail page (target health for upstreams, keys and usage for consumers).

use leptos::prelude::*;
use serde_json::Value;
use storage::Kind;

use crate::console::form::{field, Field, Input, Options};
use crate::console::layout::Ctx;
use crate::console::ConsoleState;

/// One kind of config object in the console.
pub(crate) struct Resource {
    pub kind: Kind,
    /// The URL segment: `/jwt-issuers`.
    pub slug: &'static str,
    pub title: &'static str,
    pub singular: &'static str,
    pub intro: &'static str,
    pub fields: &'static [Field],
    /// Fields shown as list columns after the id.
    pub columns: &'static [&'static str],
}

const ID_HELP: &str = "Lowercase letters, digits, `-` and `_`; cannot change later.";

pub(crate) const RESOURCES: [Resource; 6] = [
    Resource {
        kind: Kind::Route,
        slug: "routes",
        title: "Routes",
        singular: "route",
        intro: "Which requests go to which upstream, through which policies.",
        fields: &[
            field("id", "Id", Input::Text, ID_HELP),
            field("paths", "Paths", Input::Lines, "One per line: `/prefix`, `=/exact`, `/users/{id}/orders`."),
            field("upstream", "Upstream", Input::Select(Options::Upstreams), ""),
            field("hosts", "Hosts", Input::Lines, "One per line, `*.example.org` allowed; empty: any host."),
            field("methods", "Methods", Input::Lines, "GET, POST…; empty: any method."),
            field("headers", "Headers", Input::Pairs, "`name: value` per line, all must match exactly."),
            field("strip_prefix", "Strip prefix", Input::Text, "Removed from the path before forwarding."),
            field("priority", "Priority", Input::Number, "Higher first; then the most specific match."),
            field("policies", "Policies", Input::Yaml, "YAML list, e.g. `- type: key_auth` then `- {type: rate_limit, requests: 100, per: second}`."),
            field("enabled", "Enabled", Input::Checkbox { default: true }, ""),
        ],
        columns: &["paths", "hosts", "methods", "upstream", "enabled"],
    },
    Resource {
        kind: Kind::Upstream,
        slug: "upstreams",
        title: "Upstreams",
        singular: "upstream",
        intro: "Pools of backend targets, health-checked and load-balanced.",
        fields: &[
            field("id", "Id", Input::Text, ID_HELP),
            field("targets", "Targets", Input::Targets, "One per line: `host:port` and an optional weight."),
            field("balancing", "Balancing", Input::Select(Options::Fixed(&["round_robin", "random", "consistent_hash", "least_connections"])), "Default round_robin."),
            field("hash_on", "Hash on", Input::Text, "consistent_hash only: client_ip, path or header:NAME."),
            field("health_check", "Health check", Input::Yaml, "YAML, e.g. `{kind: http, path: /healthz, interval_ms: 1000}`; empty: none."),
            field("connect_timeout_ms", "Connect timeout (ms)", Input::Number, "Default 1000."),
            field("read_timeout_ms", "Read timeout (ms)", Input::Number, "Default 30000."),
            field("retries", "Retries", Input::Number, "Further tries on another target. Default 1."),
            field(
                "dns_refresh_secs",
                "DNS refresh (s)",
                Input::Number,
                "How often target host names are looked up again. Default 30.",
            ),
            field("tls", "TLS to targets", Input::Checkbox { default: false }, ""),
            field("sni", "SNI", Input::Text, "With TLS: the name to send; default the target's host."),
            field("protocol", "Protocol", Input::Select(Options::Fixed(&["http1", "h2", "h2c"])), "HTTP version to the targets: http1 (default), h2 (over TLS), h2c (HTTP/2 without TLS, for gRPC servers)."),
        ],
        columns: &["targets", "balancing", "protocol"],
    },
    Resource {
        kind: Kind::Consumer,
        slug: "consumers",
        title: "Consumers",
        singular: "consumer",
        intro: "Who calls the API: each has keys, a plan and groups.",
        fields: &[
            field("id", "Id", Input::Text, ID_HELP),
            field("plan", "Plan", Input::Select(Options::Plans), "Its rate limit and quota apply on every route."),
            field("groups", "Groups", Input::Lines, "For ACLs; one per line."),
            field("metadata", "Metadata", Input::Pairs, "`name: value` per line."),
        ],
        columns: &["plan", "groups"],
    },
    Resource {
        kind: Kind::Plan,
        slug: "plans",
        title: "Plans",
        singular: "plan",
        intro: "Rate limits and quotas that consumers subscribe to.",
        fields: &[
            field("id", "Id", Input::Text, ID_HELP),
            field("rate_limit", "Rate limit", Input::Yaml, "YAML, e.g. `{requests: 50, per: second, burst: 100}`; empty: none."),
            field("quota", "Quota", Input::Yaml, "YAML, e.g. `{requests: 100000, per: day}` (day or month, UTC); empty: none."),
        ],
        columns: &["rate_limit", "quota"],
    },
    Resource {
        kind: Kind::JwtIssuer,
        slug: "jwt-issuers",
        title: "JWT issuers",
        singular: "JWT issuer",
        intro: "Identity providers whose tokens the jwt policy accepts.",
        fields: &[
            field("id", "Id", Input::Text, ID_HELP),
            field("issuer", "Issuer (iss)", Input::Text, ""),
            field("audiences", "Audiences (aud)", Input::Lines, "One per line; empty: any."),
            field("algorithms", "Algorithms", Input::Lines, "HS256/384/512, RS*, PS*, ES256/384, EdDSA."),
            field("keys", "Keys", Input::Yaml, "YAML list: `- {kid: k1, pem: ...}`, `- {secret: ...}` or `- {jwks: {...}}`."),
            field("consumer_claim", "Consumer claim", Input::Text, "The claim that names the consumer (e.g. sub)."),
            field("leeway_secs", "Leeway (s)", Input::Number, "Clock skew allowed on exp/nbf."),
        ],
        columns: &["issuer", "algorithms", "consumer_claim"],
    },
    Resource {
        kind: Kind::Certificate,
        slug: "certificates",
        title: "Certificates",
        singular: "certificate",
        intro: "TLS certificates served for their SNI names.",
        fields: &[
            field("id", "Id", Input::Text, ID_HELP),
            field("snis", "SNI names", Input::Lines, "One per line."),
            field("cert", "Certificate chain (PEM)", Input::Multiline, "Leaf first."),
            field("key", "Private key (PEM)", Input::Secret, "Never shown again."),
        ],
        columns: &["snis"],
    },
];

/// A short text for a list cell: strings as they are, lists joined, objects compact.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "—".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(true)) => "yes".to_owned(),
        Some(Value::Bool(false)) => "no".to_owned(),
        Some(Value::Array(items)) if items.is_empty() => "—".to_owned(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::Object(o) if o.contains_key("addr") => cell(o.get("addr")),
                other => cell(Some(other)),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| format!("{k}: {}", cell(Some(v))))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

/// The list of `items` as a table: id (a link to the edit page), the resource's columns,
/// live health for upstreams, and a delete button.
pub(crate) fn list_view(
    res: &'static Resource,
    items: &[Value],
    state: &ConsoleState,
    ctx: &Ctx,
) -> AnyView {
    let is_upstream = res.kind == Kind::Upstream;
    let health = if is_upstream {
        state.live.upstream_health()
    } else {
        Vec::new()
    };
    let headers = res
        .columns
        .iter()
        .map(|c| view! { <th>{c.replace('_', " ")}</th> })
        .collect_view();
    let health_header = is_upstream.then(|| view! { <th>"health"</th> });
    let rows = items
        .iter()
        .map(|item| {
            let id = cell(item.get("id"));
            let href = format!("/{}/{id}", res.slug);
            let cells = res
                .columns
                .iter()
                .map(|c| view! { <td>{cell(item.get(*c))}</td> })
                .collect_view();
            let health_cell = is_upstream.then(|| {
                let targets: Vec<_> = health.iter().filter(|h| h.upstream == id).collect();
                let up = targets.iter().filter(|h| h.healthy).count();
                let (class, text) = match (targets.len(), up) {
                    (0, _) => ("badge muted", "not checked yet".to_owned()),
                    (n, up) if up == n => ("badge ok", format!("{up}/{n} healthy")),
                    (n, 0) => ("badge err", format!("0/{n} healthy")),
                    (n, up) => ("badge warn", format!("{up}/{n} healthy")),
                };
                view! { <td><span class=class>{text}</span></td> }
            });
            let delete = format!("/{}/{id}/delete", res.slug);
            let confirm = format!("Delete {} {id}?", res.singular);
            view! {
                <tr>
                    <td><a class="id" href=href.clone()>{id.clone()}</a></td>
                    {cells}
                    {health_cell}
                    <td class="row-actions">
                        <a href=href>"Edit"</a>
                        <form method="post" action=delete class="inline" data-confirm=confirm>
                            {ctx.csrf_field()}
                            <button type="submit" class="link danger">"Delete"</button>
                        </form>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap" id="list" data-live=is_upstream.then_some("1")>
            <table>
                <thead>
                    <tr>
                        <th>"id"</th>
                        {headers}
                        {health_header}
                        <th></th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

/// What a detail page shows above the form: each target's live health for an upstream,
/// links to keys and usage for a consumer.
pub(crate) fn detail_extras(
    res: &'static Resource,
    id: &str,
    state: &ConsoleState,
    ctx: &crate::console::layout::Ctx,
) -> AnyView {
    match res.kind {
        Kind::Upstream => {
            let targets: Vec<_> = state
                .live
                .upstream_health()
                .into_iter()
                .filter(|h| h.upstream == id)
                .collect();
            let body = if targets.is_empty() {
                view! { <p class="hint">"No health reported yet for this upstream's targets."</p> }
                    .into_any()
            } else {
                let rows = targets
                    .into_iter()
                    .map(|t| {
                        let (class, text) = if t.healthy {
                            ("badge ok", "healthy")
                        } else {
                            ("badge err", "unhealthy")
                        };
                        view! {
                            <tr>
                                <td class="mono">{t.target}</td>
                                <td><span class=class>{text}</span></td>
                            </tr>
                        }
                    })
                    .collect_view();
                view! {
                    <table>
                        <thead><tr><th>"target"</th><th>"health"</th></tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                }
                .into_any()
            };
            view! {
                <section class="card" id="target-health" data-live="1">
                    <h2>"Target health (live)"</h2>
                    {body}
                </section>
            }
            .into_any()
        }
        Kind::Consumer => {
            let keys = format!("/keys?consumer={id}");
            view! {
                <p class="links">
                    <a class="button" href=keys>"API keys of this consumer"</a>
                    <a class="button" href="/usage">"Usage"</a>
                </p>
            }
            .into_any()
        }
        Kind::Route => crate::console::cache::route_section(id, ctx),
        _ => ().into_any(),
    }
}
