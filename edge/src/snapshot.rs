//! The immutable view of the config that requests use: the router, each enabled route
//! compiled (pool, strip_prefix, metric handles), the pools by upstream id, and the
//! revision. Built whole from a `Config`; swapped whole by the reloader; a request loads it
//! once.

use std::collections::HashMap;
use std::sync::Arc;

use storage::Config;

use crate::metrics::{Metrics, RouteMetrics};
use crate::routing::Router;
use crate::upstream::{Pool, UpstreamError};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("routes[{route}].upstream: unknown upstream {upstream}")]
    UnknownUpstream { route: String, upstream: String },
}

/// One enabled route, ready to serve.
pub struct CompiledRoute {
    pub id: String,
    pub pool: Arc<Pool>,
    pub strip_prefix: Option<String>,
    pub metrics: RouteMetrics,
    // The route's compiled `policies::Chain` belongs here once policies are wired: it is
    // compiled with the route and run by `Gateway::request_filter` / `response_filter`.
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
}

impl Snapshot {
    /// Compiles `config`. Pools whose spec equals the one in `previous` are carried over
    /// (the same `Arc`: health state, in-flight counts and check task survive). New pools
    /// start their health checks on `runtime` when given. `Err` names the first problem;
    /// nothing is started for a snapshot that fails (new pools are dropped, which stops
    /// their checks).
    pub fn compile(
        config: &Config,
        revision: u64,
        previous: Option<&Snapshot>,
        metrics: &Metrics,
        runtime: Option<&tokio::runtime::Handle>,
    ) -> Result<Snapshot, SnapshotError> {
        let mut pools = HashMap::with_capacity(config.upstreams.len());
        for spec in &config.upstreams {
            let carried = previous
                .and_then(|p| p.pools.get(&spec.id))
                .filter(|p| p.spec == *spec)
                .cloned();
            let pool = match carried {
                Some(p) => p,
                None => Pool::compile(spec, metrics, runtime)?,
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
            routes.push(CompiledRoute {
                id: r.id.clone(),
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
        }
    }
}

#[cfg(test)]
mod tests;
