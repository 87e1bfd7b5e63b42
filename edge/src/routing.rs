//! Route matching: compiles the enabled `storage::RouteSpec`s into a [`Router`] that finds
//! the route of a request (host, method, path, headers) in time independent of the number
//! of routes, without allocating.
//!
//! Layout: a host index (exact hosts in a map, wildcard hosts by suffix, and the any-host
//! bucket), and per host bucket a trie over path segments whose nodes hold the candidates
//! ending there, pre-sorted by precedence. A lookup walks the buckets its host selects
//! (at most one exact, one per dot for wildcards, and any-host) and keeps the best
//! candidate that also matches method and headers.
//!
//! Depends on `storage` (specs) and `http` only; knows nothing of upstreams or policies.

pub mod canonical;
mod hasher;
mod host;
mod methods;
mod pattern;
mod rank;
mod strip;
mod table;
mod trie;

#[cfg(test)]
mod tests;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use storage::RouteSpec;

use self::host::HostKey;
use self::methods::{MethodBit, MethodSet, Verdict};
use self::pattern::PathPattern;
use self::rank::{HostClass, Rank, RouteTraits};
use self::trie::{Bucket, Candidate, Trie, TrieBuilder};

pub use self::canonical::{canonical_path, PathError};
pub use self::strip::strip_prefix;

/// The route a request matched: `index` is its position in the slice given to
/// [`Router::compile`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteMatch {
    pub index: usize,
}

/// The compiled routing table. Immutable; share it (inside the snapshot) across requests.
///
/// # Matching
/// - `hosts`: `api.example.com` matches that host only; `*.example.org` matches any
///   subdomain at any depth (`a.example.org`, `a.b.example.org`), not `example.org`;
///   empty (or `*`) matches any host, and requests without a host. The request's host
///   loses its `:port` and a trailing dot and is compared case-insensitively.
/// - `methods`: exact (`GET` does not cover `HEAD`); empty matches any method.
/// - `paths`: `/prefix` matches on a segment boundary (`/v1/orders` matches `/v1/orders`
///   and `/v1/orders/7`, not `/v1/ordersX`; `/` matches every path; a trailing `/`, as
///   in `/v1/`, requires more path after it). `=/exact` matches the whole path only.
///   `{param}` matches exactly one non-empty segment; patterns with params are prefixes
///   unless written with `=`. Paths compare byte for byte (no decoding, no case folding);
///   a path not starting with `/` (`*`) matches nothing; an empty path counts as `/`.
/// - `headers`: every listed header must be present with exactly that value (one of the
///   request's values for that name must equal it).
///
/// # Precedence
/// Of all matching (route, host, path pattern) combinations, the greatest wins, comparing
/// in this order:
/// 1. higher `priority`;
/// 2. path kind: `=` exact beats params beats plain prefix;
/// 3. longer literal text before the first `{param}` (the whole pattern if none);
/// 4. more literal segments;
/// 5. more segments (`/a/{x}/{y}` beats `/a/{x}`);
/// 6. host: exact beats wildcard beats any host; among wildcards the longer suffix;
/// 7. a route with `methods` beats one without;
/// 8. more `headers` beats fewer (so with beats without);
/// 9. lower index in the config (a stable tie-break).
pub struct Router {
    routes: Vec<Route>,
    trie: Trie,
}

/// The part of a route checked after the trie walk, when its candidate cannot tell.
#[derive(Debug)]
struct Route {
    methods: Box<[Method]>,
    headers: Box<[(HeaderName, HeaderValue)]>,
}

impl Router {
    /// Compiles the enabled routes; `routes[i]` is reported back as `RouteMatch::index == i`.
    ///
    /// Specs are expected to be validated already; any part that still cannot be parsed
    /// makes that part unable to match instead of failing: a path not starting with `/` is
    /// left out, and a route with an unparsable method or header is left out entirely
    /// (so that it can never match more than it says). Cost: linear in the total size of
    /// the specs.
    pub fn compile(routes: &[RouteSpec]) -> Router {
        let mut compiled = Vec::new();
        let mut trie = TrieBuilder::new();
        for (index, spec) in routes.iter().enumerate() {
            if spec.enabled {
                add(&mut compiled, &mut trie, index, spec);
            }
        }
        Router {
            routes: compiled,
            trie: trie.build(),
        }
    }

    /// The best route for a request (see the type's docs for the rules), or `None`.
    ///
    /// `host` is the `Host` header or `:authority` (port allowed, any case); `path` is the
    /// URI path without the query string. Cost: a few map lookups per path segment and per
    /// label of the host, independent of the number of routes; allocates nothing (unless
    /// `host` has uppercase letters and is over 256 bytes).
    pub fn find(
        &self,
        host: Option<&str>,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Option<RouteMatch> {
        let rest = pattern::segments_of(path).ok()?;
        let bit = MethodBit::of(method);
        let accepts = |c: &Candidate| {
            let route = || self.routes.get(c.slot as usize);
            match c.methods.check(bit) {
                Verdict::Rejects => false,
                Verdict::Accepts if !c.has_headers => true,
                Verdict::Accepts => route().is_some_and(|r| r.has_headers(headers)),
                Verdict::CheckList => {
                    route().is_some_and(|r| r.methods.contains(method) && r.has_headers(headers))
                }
            }
        };
        let mut best = None;
        let name = host
            .filter(|_| self.trie.has_host_buckets())
            .map(host::name_of)
            .filter(|h| !h.is_empty());
        if let Some(name) = name {
            host::with_lowercase(name, |name| {
                if let Some(root) = self.trie.root(Bucket::ExactHost(name)) {
                    self.trie.walk(root, rest, &accepts, &mut best);
                }
                if self.trie.has_wildcards() {
                    for suffix in host::wildcard_suffixes(name) {
                        if let Some(root) = self.trie.root(Bucket::WildcardSuffix(suffix)) {
                            self.trie.walk(root, rest, &accepts, &mut best);
                        }
                    }
                }
            });
        }
        if let Some(root) = self.trie.root(Bucket::AnyHost) {
            self.trie.walk(root, rest, &accepts, &mut best);
        }
        best.map(|c| RouteMatch {
            index: c.rank.config_order() as usize,
        })
    }

    /// Number of routes compiled in (enabled and parsable).
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True when no route can match.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

impl Default for Router {
    /// A router with no routes: every lookup gives `None`.
    fn default() -> Self {
        Router::compile(&[])
    }
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (exact_hosts, wildcard_hosts, nodes, edges) = self.trie.sizes();
        f.debug_struct("Router")
            .field("routes", &self.routes.len())
            .field("exact_hosts", &exact_hosts)
            .field("wildcard_hosts", &wildcard_hosts)
            .field("nodes", &nodes)
            .field("edges", &edges)
            .finish_non_exhaustive()
    }
}

/// Compiles `spec` (config index `index`) into `routes` and `trie`.
fn add(routes: &mut Vec<Route>, trie: &mut TrieBuilder, index: usize, spec: &RouteSpec) {
    let (Some(route), Ok(slot), Ok(config_order)) = (
        Route::compile(spec),
        u32::try_from(routes.len()),
        u32::try_from(index),
    ) else {
        return;
    };
    let traits = RouteTraits {
        priority: spec.priority,
        has_methods: !route.methods.is_empty(),
        header_count: route.headers.len(),
        config_order,
    };
    let methods = MethodSet::of(&route.methods);
    let patterns: Vec<PathPattern<'_>> = spec
        .paths
        .iter()
        .filter_map(|p| PathPattern::parse(p))
        .collect();
    let hosts: Vec<HostKey> = if spec.hosts.is_empty() {
        vec![HostKey::Any]
    } else {
        spec.hosts.iter().map(|h| HostKey::parse(h)).collect()
    };
    for host in &hosts {
        let (class, len, bucket) = match host {
            HostKey::Any => (HostClass::Any, 0, Bucket::AnyHost),
            HostKey::Exact(name) => (HostClass::Exact, name.len(), Bucket::ExactHost(name)),
            HostKey::Wildcard(suffix) => (
                HostClass::Wildcard,
                suffix.len(),
                Bucket::WildcardSuffix(suffix),
            ),
        };
        for pattern in &patterns {
            let candidate = Candidate {
                rank: Rank::new(traits, class, len, pattern),
                slot,
                methods,
                has_headers: !route.headers.is_empty(),
                needs_more: pattern.needs_more,
            };
            // Only a trie of four billion nodes refuses a pattern.
            let _ = trie.insert(bucket, pattern, candidate);
        }
    }
    routes.push(route);
}

impl Route {
    /// `None` when a method or header of the spec cannot be parsed.
    fn compile(spec: &RouteSpec) -> Option<Route> {
        let methods = spec
            .methods
            .iter()
            .map(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
            .collect::<Option<Box<[Method]>>>()?;
        let headers = spec
            .headers
            .iter()
            .map(|(name, value)| {
                Some((
                    HeaderName::from_bytes(name.as_bytes()).ok()?,
                    HeaderValue::from_str(value).ok()?,
                ))
            })
            .collect::<Option<Box<[_]>>>()?;
        Some(Route { methods, headers })
    }

    /// Whether the request carries every header of the route with its exact value.
    fn has_headers(&self, headers: &HeaderMap) -> bool {
        self.headers
            .iter()
            .all(|(name, value)| headers.get_all(name).iter().any(|v| v == value))
    }
}
