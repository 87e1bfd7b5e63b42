//! Counting in a store shared by several nodes (the edge's Redis): instead of counting its
//! limits itself, the chain hands the edge what must be counted ([`Pending`]: keys with
//! their GCRA or quota figures) and where to resume; the edge counts them in one round
//! trip and resumes the chain. Pure: no I/O here, only the keys and figures.
//!
//! The limits that need no consumer (by `ip`, `route`, `header:NAME`) are handed over
//! before credentials are checked, as the local chain counts them; the consumer's limits
//! (a consumer-keyed `rate_limit`, the plan's rate limit and quota) come together at the
//! end: the usual chain `key_auth` + `rate_limit` + plan quota takes one round trip.
//!
//! Keys carry a hash tag (`{...}`, the limit's subject: consumer, address, header value
//! digest, or route policy), so all of one consumer's keys live in one Redis Cluster slot:
//! `tg:rl:{c:alice}:api:1`, `tg:rl:{c:alice}:plan`, `tg:q:{c:alice}:day:2026-12-07`.

use std::net::IpAddr;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::calendar::{period_end, period_index, period_name};
use crate::chain::{Chain, Policy};
use crate::directory::{Consumer, Directory};
use crate::gcra::Gcra;
use crate::rate_limit::{LimitBy, RateLimit};
use crate::request::{RequestState, RequestView};
use crate::verdict::{RateLimitStatus, Rejection, Verdict};

/// What one count limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// A GCRA limit: one token per request.
    Rate(Gcra),
    /// A quota: at most `limit` requests until `period_end` (unix seconds), when the key
    /// expires.
    Quota { limit: u64, period_end: u64 },
}

/// One count to make in the shared store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    /// The store key (hash-tagged by subject).
    pub key: String,
    pub limit: Limit,
    /// `rate_limit` or `quota`: who answers a refusal.
    pub policy: &'static str,
}

impl Count {
    /// The 429 for a refusal of this count.
    pub fn refusal(&self, status: RateLimitStatus, retry_after_secs: u64) -> Rejection {
        Rejection::too_many_requests(self.policy, status, retry_after_secs)
    }

    /// The `RateLimit-Limit` figure: burst capacity or quota.
    pub fn capacity(&self) -> u64 {
        match self.limit {
            Limit::Rate(g) => g.capacity(),
            Limit::Quota { limit, .. } => limit,
        }
    }
}

/// Counts to make, in order (a refusal stops the rest), then resume the chain at `resume`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub counts: Vec<Count>,
    resume: usize,
}

impl Pending {
    /// `counts` alone, with nothing of a chain to resume (for tools and tests).
    pub fn of(counts: Vec<Count>) -> Self {
        Self {
            counts,
            resume: usize::MAX,
        }
    }

    /// Where [`Chain::on_request_shared`] resumes once the counts passed.
    pub fn resume(&self) -> usize {
        self.resume
    }
}

/// What [`Chain::on_request_shared`] answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The chain is done: go on, or answer this.
    Done(Verdict),
    /// Count these, record each passed count's status ([`RequestState::record_limit`]),
    /// then call again from [`Pending::resume`] (unless one was refused: answer it).
    Count(Pending),
}

impl Chain {
    /// [`Chain::on_request`] with every limit counted by the caller: runs the policies from
    /// index `from` (0 at first) and stops where counts must be made before what follows.
    /// Local limiter state is not touched. `now` is the time since the epoch.
    pub fn on_request_shared(
        &self,
        view: &RequestView<'_>,
        state: &mut RequestState,
        directory: &Directory,
        now: Duration,
        from: usize,
    ) -> Step {
        let policies = self.policies();
        let secs = now.as_secs();
        let mut counts = Vec::new();
        for (i, policy) in policies.iter().enumerate().skip(from) {
            let verdict = match policy {
                Policy::RateLimit(p) => {
                    counts.push(route_count(p, view, state));
                    continue;
                }
                Policy::Headers(_) | Policy::Rewrite(_) => continue,
                Policy::Compression(_) | Policy::GrpcWeb(_) | Policy::Cache(_) => continue,
                _ if !counts.is_empty() => {
                    return Step::Count(Pending { counts, resume: i });
                }
                Policy::IpFilter(p) => p.on_request(view),
                Policy::RequestSize(p) => p.on_request(view),
                Policy::Cors(p) => p.on_request(view, state),
                Policy::KeyAuth(p) => p.on_request(view, state, directory, secs),
                Policy::Jwt(p) => p.on_request(view, state, directory, secs),
                Policy::BasicAuth(p) => p.on_request(view, state, directory),
                Policy::Acl(p) => p.on_request(state),
            };
            if let Verdict::Respond(_) = verdict {
                return Step::Done(verdict);
            }
        }
        if from <= policies.len() {
            if let Some(consumer) = state.consumer() {
                plan_counts(consumer, secs, &mut counts);
            }
        }
        if counts.is_empty() {
            Step::Done(Verdict::Continue)
        } else {
            Step::Count(Pending {
                counts,
                resume: policies.len() + 1,
            })
        }
    }
}

fn route_count(p: &RateLimit, view: &RequestView<'_>, state: &RequestState) -> Count {
    let subject = match p.by() {
        LimitBy::Route => None,
        LimitBy::Ip => Some(ip_subject(view.client_ip)),
        LimitBy::Consumer => Some(match state.consumer_id() {
            Some(id) => format!("c:{id}"),
            None => ip_subject(view.client_ip),
        }),
        LimitBy::Header(name) => Some(match view.headers.get(name) {
            Some(v) => {
                let digest = Sha256::digest(v.as_bytes());
                format!("h:{}", hex::encode(&digest[..16]))
            }
            None => ip_subject(view.client_ip),
        }),
    };
    let key = match subject {
        Some(s) => format!("tg:rl:{{{s}}}:{}", p.name()),
        None => format!("tg:rl:{{r:{}}}", p.name()),
    };
    Count {
        key,
        limit: Limit::Rate(p.limiter().gcra()),
        policy: "rate_limit",
    }
}

fn ip_subject(ip: IpAddr) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    format!("ip:{ip}")
}

/// The plan's rate limit, then its quota, as the local `check_plan` counts them.
fn plan_counts(consumer: &Consumer, secs: u64, counts: &mut Vec<Count>) {
    if let Some(rate) = consumer.plan_rate() {
        counts.push(Count {
            key: plan_rate_key(consumer.id()),
            limit: Limit::Rate(rate.gcra()),
            policy: "rate_limit",
        });
    }
    if let Some(quota) = consumer.quota() {
        let index = period_index(quota.per(), secs);
        counts.push(Count {
            key: quota_key(consumer.id(), &period_name(quota.per(), index)),
            limit: Limit::Quota {
                limit: quota.limit(),
                period_end: period_end(quota.per(), index),
            },
            policy: "quota",
        });
    }
}

/// The shared key of `consumer`'s plan rate limit.
pub fn plan_rate_key(consumer: &str) -> String {
    format!("tg:rl:{{c:{consumer}}}:plan")
}

/// The shared key of `consumer`'s quota count in `period` (`day:2026-12-07`).
pub fn quota_key(consumer: &str, period: &str) -> String {
    format!("tg:q:{{c:{consumer}}}:{period}")
}

#[cfg(test)]
#[path = "shared/tests.rs"]
mod tests;
