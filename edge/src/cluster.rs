//! Running as several nodes: a follower takes its config from a control node's feed, and
//! every node may count rate limits and quotas in a shared Redis. What both sides share
//! lives here: [`LiveNodes`], how many gateway nodes serve traffic now.

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

pub mod counting;
pub mod redis;
