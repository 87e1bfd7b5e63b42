//! Running as several nodes: a follower takes its config from a control node's feed, and
//! every node may count rate limits and quotas in a shared Redis. What both sides share
//! lives here: [`LiveNodes`], how many gateway nodes serve traffic now, and the check of
//! the cluster token ([`cluster_token`]).

pub mod control;
pub mod follow;

use std::sync::atomic::{AtomicUsize, Ordering};

/// How many gateway nodes serve traffic now, this one included: the control node counts its
/// connected followers and itself, and followers learn the figure from the feed. Always at
/// least 1. While Redis is away, each node enforces a limit divided by it.
#[derive(Debug)]
pub struct LiveNodes(AtomicUsize);

impl LiveNodes {
    pub fn new() -> Self {
        Self(AtomicUsize::new(1))
    }

    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed).max(1)
    }

    pub fn set(&self, nodes: usize) {
        self.0.store(nodes.max(1), Ordering::Relaxed);
    }
}

impl Default for LiveNodes {
    fn default() -> Self {
        Self::new()
    }
}

/// `TOLLGATE_CLUSTER_TOKEN` (`None` when unset or empty). `Err` when it starts or ends
/// with white space or holds a control character: an HTTP header cannot carry it as it
/// is (a newline read from a file, say), so no follower could ever present it.
pub fn cluster_token() -> anyhow::Result<Option<String>> {
    cluster_token_from(std::env::var("TOLLGATE_CLUSTER_TOKEN").ok())
}

fn cluster_token_from(value: Option<String>) -> anyhow::Result<Option<String>> {
    let Some(token) = value.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if token.trim() != token || token.chars().any(char::is_control) {
        anyhow::bail!(
            "TOLLGATE_CLUSTER_TOKEN starts or ends with white space or holds a control \
             character (a newline read from a file?): an HTTP header cannot carry it, so \
             no node could present it; set it without them"
        );
    }
    Ok(Some(token))
}

pub mod counting;
pub mod redis;

#[cfg(test)]
mod tests {
    use super::cluster_token_from;

    #[test]
    fn a_token_a_header_cannot_carry_is_refused() {
        for bad in ["secret\n", " secret", "secret ", "sec\tret", "sec\u{7f}ret"] {
            assert!(cluster_token_from(Some(bad.to_owned())).is_err(), "{bad:?}");
        }
        for (given, taken) in [
            (None, None),
            (Some(""), None),
            (Some("a b+/="), Some("a b+/=")),
        ] {
            let got = cluster_token_from(given.map(str::to_owned)).expect("taken");
            assert_eq!(got.as_deref(), taken);
        }
    }
}
