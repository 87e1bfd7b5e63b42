//! The immutable view of the config that requests use: the router, each enabled route
//! compiled (pool, strip_prefix, policy chain, metric handles), the pools by upstream id,
//! the identity directory (keys, consumers, plans, credentials, JWT issuers) and the
//! revision. Built whole from a `Config`; swapped whole by the reloader; a request loads it
//! once. Rate-limit and quota state is not in it: it lives in the process-wide
//! [`Counters`] every snapshot is compiled against, so it survives reloads.

use std::collections::HashMap;
use std::sync::Arc;

use policies::{Counters, Directory, Problem, QuotaSpec};
use storage::Config;

use crate::metrics::{Metrics, RouteMetrics};
use crate::policy::RoutePolicies;
use crate::routing::Router;
use crate::upstream::dns::{self, Resolve, SystemDns};
use crate::upstream::{Pool, UpstreamError};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("routes[{route}].upstream: unknown upstream {upstream}")]
    UnknownUpstream { route: String, upstream: String },
    /// Problems of a route's policies, each as `routes[id].policies[i].field: message`.
    #[error("{}", problems_text(&format!("routes[{route}]"), problems))]
    Policies {
        route: String,
        problems: Vec<Problem>,
    },
    /// Problems of consumers, plans, keys, credentials or JWT issuers.
    #[error("{}", problems_text("", problems))]
    Directory { problems: Vec<Problem> },
}

fn problems_text(under: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| match (under.is_empty(), p.path.is_empty()) {
            (true, _) => format!("{}: {}", p.path, p.message),
            (false, true) => format!("{under}: {}", p.message),
            (false, false) => format!("{under}.{}: {}", p.path, p.message),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// One enabled route, ready to serve.
pub struct CompiledRoute {
    pub id: String,
    pub pool: Arc<Pool>,
    pub strip_prefix: Option<String>,
    pub metrics: RouteMetrics,
    /// `None` when the route has no policies: its requests skip the chain entirely.
    pub policies: Option<Box<RoutePolicies>>,
}

/// Everything a request needs, immutable.
pub struct Snapshot {
    pub revision: u64,
    pub router: Router,
    /// Indexed by the router's `RouteMatch::index`.
    pub routes: Vec<CompiledRoute>,
    pub pools: HashMap<String, Arc<Pool>>,
    /// Metric handles of requests that match no route.
    pub no_route: Arc<RouteMetrics>,
    /// Who callers are: API key hashes, consumers with their compiled plans, credentials,
    /// JWT issuers.
    pub directory: Directory,
    /// The quota of each plan that has one, by plan id (for usage reports).
    pub plan_quotas: HashMap<String, QuotaSpec>,
}

impl Snapshot {
    /// Compiles `config`. Pools whose spec equals the one in `previous` are carried over
    /// (the same `Arc`: health state, in-flight counts and check task survive). New pools
    /// start their health checks on `runtime` when given. Policies, plans and the
    /// directory compile against `counters` (limits and quotas carry over). `Err` names the
    /// first problem; nothing is started for a snapshot that fails (new pools are dropped,
    /// which stops their checks). A target name that does not resolve is no problem: its
    /// pool compiles without that target's addresses and finds them later (`upstream::dns`).
    pub fn compile(
        config: &Config,
        revision: u64,
        previous: Option<&Snapshot>,
        metrics: &Metrics,
        counters: &Counters,
        runtime: Option<&tokio::runtime::Handle>,
    ) -> Result<Snapshot, SnapshotError> {
        Snapshot::compile_with(
            config,
            revision,
            previous,
            metrics,
            counters,
            runtime,
            &(Arc::new(SystemDns) as Arc<dyn Resolve>),
        )
    }

    /// [`Snapshot::compile`] looking target names up with `resolver`.
    pub fn compile_with(
        config: &Config,
        revision: u64,
        previous: Option<&Snapshot>,
        metrics: &Metrics,
        counters: &Counters,
        runtime: Option<&tokio::runtime::Handle>,
        resolver: &Arc<dyn Resolve>,
    ) -> Result<Snapshot, SnapshotError> {
        let directory = Directory::compile(
            &config.consumers,
            &config.plans,
            &config.keys,
            &config.credentials,
            &config.jwt_issuers,
            counters,
        )
        .map_err(|problems| SnapshotError::Directory { problems })?;
        if let Some(previous) = previous {
            directory.carry_last_used(&previous.directory);
        }
        let carried: Vec<Option<Arc<Pool>>> = config
            .upstreams
            .iter()
            .map(|spec| {
                previous
                    .and_then(|p| p.pools.get(&spec.id))
                    .filter(|p| p.spec == *spec)
                    .cloned()
            })
            .collect();
        // The names of new pools are looked up together, not one after another.
        let first = dns::prefetch(
            resolver,
            config
                .upstreams
                .iter()
                .zip(&carried)
                .filter(|(_, c)| c.is_none())
                .flat_map(|(spec, _)| dns::names_of(spec))
                .collect(),
        );
        let mut pools = HashMap::with_capacity(config.upstreams.len());
        for (spec, carried) in config.upstreams.iter().zip(carried) {
            let pool = match carried {
                Some(p) => p,
                None => Pool::compile_prefetched(spec, metrics, runtime, resolver.clone(), &first)?,
            };
            pools.insert(spec.id.clone(), pool);
        }
        let enabled: Vec<storage::RouteSpec> = config
            .routes
            .iter()
            .filter(|r| r.enabled)
            .cloned()
            .collect();
        let mut routes = Vec::with_capacity(enabled.len());
        for r in &enabled {
            let pool =
                pools
                    .get(&r.upstream)
                    .cloned()
                    .ok_or_else(|| SnapshotError::UnknownUpstream {
                        route: r.id.clone(),
                        upstream: r.upstream.clone(),
                    })?;
            let policies =
                RoutePolicies::compile(&r.id, &r.policies, counters, &metrics.policy_rejections)
                    .map_err(|problems| SnapshotError::Policies {
                        route: r.id.clone(),
                        problems,
                    })?;
            routes.push(CompiledRoute {
                id: r.id.clone(),
                policies,
                metrics: metrics.route(&r.id, &r.upstream),
                pool,
                strip_prefix: r.strip_prefix.clone().filter(|p| !p.is_empty() && p != "/"),
            });
        }
        Ok(Snapshot {
            revision,
            router: Router::compile(&enabled),
            routes,
            pools,
            no_route: metrics.no_route(),
            directory,
            plan_quotas: config
                .plans
                .iter()
                .filter_map(|p| Some((p.id.clone(), p.quota.clone()?)))
                .collect(),
        })
    }

    /// The snapshot of an empty config.
    pub fn empty(metrics: &Metrics) -> Snapshot {
        Snapshot {
            revision: 0,
            router: Router::compile(&[]),
            routes: Vec::new(),
            pools: HashMap::new(),
            no_route: metrics.no_route(),
            directory: Directory::empty(),
            plan_quotas: HashMap::new(),
        }
    }
}

#[cfg(test)]
mod tests;
