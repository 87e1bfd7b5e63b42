//! The policy language: `*Spec` (serde) -> `compile` -> runtime policy -> `Chain`.
//!
//! Pure request logic. It owns the specs of policies, plans, consumers, credentials and JWT
//! issuers, and must never depend on storage, edge, admin-ui or any I/O but the small
//! traits it defines (clock, counter store).
//!
//! Per config revision the edge compiles a [`Directory`] (keys, consumers and their plans,
//! credentials, JWT issuers) and one [`Chain`] per route, both against one process-wide
//! [`Counters`] so rate limits and quotas survive reloads. Per request it builds a
//! [`RequestView`] and a [`RequestState`], calls [`Chain::on_request`] (a [`Verdict`]), and
//! later [`Chain::on_response`], [`Chain::apply_request_headers`], [`Chain::rewrite_path`].

pub mod acl;
pub mod basic_auth;
pub mod cache;
pub mod calendar;
pub mod chain;
pub mod clock;
pub mod compression;
pub mod cors;
pub mod counters;
pub mod directory;
pub mod gcra;
pub mod headers;
pub mod ip_filter;
pub mod jwt;
pub mod key_auth;
pub mod key_usage;
pub mod problem;
pub mod quota;
pub mod rate_limit;
pub mod request;
pub mod request_size;
pub mod rewrite;
pub mod shared;
pub mod spec;
pub mod verdict;

#[cfg(test)]
mod testing;

pub use acl::Acl;
pub use basic_auth::{BasicAuth, Credential};
pub use cache::{Cache, CacheKeyPart};
pub use chain::{Chain, Policy};
pub use clock::{Clock, ManualClock, SystemClock};
pub use compression::{Coding, Compression, GrpcWeb};
pub use cors::Cors;
pub use counters::Counters;
pub use directory::{Consumer, Directory, KeyEntry, KeyHash};
pub use gcra::Gcra;
pub use headers::{HeaderEdits, Headers};
pub use ip_filter::IpFilter;
pub use jwt::{JwtAuth, JwtIssuer};
pub use key_auth::KeyAuth;
pub use problem::{is_valid_id, Problem, Problems};
pub use quota::{Quota, Quotas, Usage, UsageRecord};
pub use rate_limit::{KeyedLimiter, LimitBy, LimiterRegistry, PlanRate, RateLimit};
pub use request::{HeaderSink, Repeated, RequestState, RequestView};
pub use request_size::RequestSize;
pub use rewrite::Rewrite;
pub use spec::*;
pub use verdict::{RateLimitStatus, Rejection, Verdict};
