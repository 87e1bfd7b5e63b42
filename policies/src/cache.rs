//! `cache`: the compiled settings of a route's response cache. The policy refuses nothing:
//! the edge reads these settings ([`crate::Chain::cache`]) to key, store and serve answers
//! (`edge/src/cache/`). Policies placed before it in phase order run on every request,
//! cached or not.

use std::time::Duration;

use http::HeaderName;

use crate::problem::{Problem, Problems};

pub use crate::spec::CacheSpec;
use crate::spec::{DEFAULT_CACHE_MAX_BODY_BYTES, DEFAULT_CACHE_TTL_SECS};

/// One extra part of the cache key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheKeyPart {
    /// The whole query string, byte for byte.
    Query,
    /// Every value of a request header, in order.
    Header(HeaderName),
    /// The consumer the route's auth policy identified (none: the empty part).
    Consumer,
}

/// A compiled `cache` policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Cache {
    /// Freshness of answers without freshness information; zero: not stored.
    pub ttl: Duration,
    pub max_body_bytes: usize,
    pub key: Vec<CacheKeyPart>,
    pub stale_while_revalidate: u32,
    pub stale_if_error: u32,
}

impl Cache {
    pub fn compile(spec: &CacheSpec) -> Result<Self, Vec<Problem>> {
        let mut p = Problems::new();
        spec.validate(&mut p);
        if !p.is_empty() {
            return Err(p.into_vec());
        }
        let key = spec
            .key
            .iter()
            .filter_map(|part| match part.as_str() {
                "query" => Some(CacheKeyPart::Query),
                "consumer" => Some(CacheKeyPart::Consumer),
                other => other
                    .strip_prefix("header:")
                    .and_then(|n| HeaderName::from_bytes(n.as_bytes()).ok())
                    .map(CacheKeyPart::Header),
            })
            .collect();
        let secs = |v: Option<u64>| u32::try_from(v.unwrap_or(0)).unwrap_or(u32::MAX);
        Ok(Self {
            ttl: Duration::from_secs(spec.ttl_secs.unwrap_or(DEFAULT_CACHE_TTL_SECS)),
            max_body_bytes: usize::try_from(
                spec.max_body_bytes.unwrap_or(DEFAULT_CACHE_MAX_BODY_BYTES),
            )
            .unwrap_or(usize::MAX),
            key,
            stale_while_revalidate: secs(spec.stale_while_revalidate_secs),
            stale_if_error: secs(spec.stale_if_error_secs),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> CacheSpec {
        serde_json::from_value(json).expect("cache spec")
    }

    #[test]
    fn compiles_defaults_and_key_parts() {
        let c = Cache::compile(&spec(serde_json::json!({
            "key": ["query", "header:Accept-Language", "consumer"]
        })))
        .expect("compiles");
        assert_eq!(c.ttl, Duration::ZERO);
        assert_eq!(c.max_body_bytes, 1024 * 1024);
        assert_eq!(
            c.key,
            vec![
                CacheKeyPart::Query,
                CacheKeyPart::Header(HeaderName::from_static("accept-language")),
                CacheKeyPart::Consumer
            ]
        );
    }

    #[test]
    fn reports_every_bad_field_with_its_path() {
        let problems = Cache::compile(&spec(serde_json::json!({
            "max_body_bytes": 0,
            "ttl_secs": 999_999_999u64,
            "key": ["path", "header:bad header", "query", "QUERY"]
        })))
        .expect_err("refused");
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            vec!["ttl_secs", "max_body_bytes", "key[0]", "key[1]", "key[3]"]
        );
    }

    #[test]
    fn refuses_unknown_fields() {
        let r: Result<CacheSpec, _> = serde_json::from_value(serde_json::json!({"ttl": 5}));
        assert!(r.is_err());
    }
}
