//! `cache`: what a person writes for a route's response cache (serde, unvalidated), with
//! its defaults and its validation. The runtime type is [`crate::cache::Cache`].

use serde::{Deserialize, Serialize};

use crate::problem::Problems;

/// Largest answer body stored unless told: 1 MiB.
pub const DEFAULT_CACHE_MAX_BODY_BYTES: u64 = 1024 * 1024;
/// Largest `max_body_bytes` accepted: 64 MiB (the store weighs entries in KiB, at most
/// 65,535 of them).
pub const MAX_CACHE_BODY_BYTES: u64 = 64 * 1024 * 1024;
/// Freshness given to answers without freshness information unless told: none (only what
/// the upstream says may be cached is cached).
pub const DEFAULT_CACHE_TTL_SECS: u64 = 0;
/// Largest `ttl_secs`, `stale_while_revalidate_secs`, `stale_if_error_secs`: one year.
pub const MAX_CACHE_SECS: u64 = 365 * 24 * 3600;

/// `cache`: a shared HTTP cache (RFC 9111) of the route's GET and HEAD answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSpec {
    /// Seconds an answer without `Cache-Control` max-age/s-maxage or `Expires` stays fresh;
    /// 0: such answers are not stored. Default [`DEFAULT_CACHE_TTL_SECS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
    /// Answers with a longer body are not stored. Default [`DEFAULT_CACHE_MAX_BODY_BYTES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,
    /// What else tells answers apart, besides route, host and path: `query`,
    /// `header:NAME`, `consumer`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<String>,
    /// Seconds a stale answer may still be served while it is fetched again, when the
    /// answer does not say (`stale-while-revalidate`). Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_while_revalidate_secs: Option<u64>,
    /// Seconds a stale answer may be served when the upstream fails, when the answer does
    /// not say (`stale-if-error`). Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_if_error_secs: Option<u64>,
}

impl CacheSpec {
    pub(crate) fn validate(&self, p: &mut Problems) {
        let secs = [
            ("ttl_secs", self.ttl_secs),
            (
                "stale_while_revalidate_secs",
                self.stale_while_revalidate_secs,
            ),
            ("stale_if_error_secs", self.stale_if_error_secs),
        ];
        for (name, value) in secs {
            if value.is_some_and(|v| v > MAX_CACHE_SECS) {
                p.push(name, format!("must be at most {MAX_CACHE_SECS} (one year)"));
            }
        }
        match self.max_body_bytes {
            Some(0) => p.push("max_body_bytes", "must be > 0"),
            Some(n) if n > MAX_CACHE_BODY_BYTES => p.push(
                "max_body_bytes",
                format!("must be at most {MAX_CACHE_BODY_BYTES} (64 MiB)"),
            ),
            _ => {}
        }
        for (i, part) in self.key.iter().enumerate() {
            let ok = match part.as_str() {
                "query" | "consumer" => true,
                other => other
                    .strip_prefix("header:")
                    .is_some_and(super::is_header_name),
            };
            if !ok {
                p.push(
                    format!("key[{i}]"),
                    "must be query, consumer or header:NAME",
                );
            } else if self.key[..i]
                .iter()
                .any(|earlier| earlier.eq_ignore_ascii_case(part))
            {
                p.push(format!("key[{i}]"), "is named twice");
            }
        }
    }
}
