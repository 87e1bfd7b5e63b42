//! State that outlives a config revision: rate-limiter arrival times, quota counts and
//! when each API key was last used.

use crate::key_usage::KeyUsage;
use crate::quota::Quotas;
use crate::rate_limit::LimiterRegistry;

/// The edge creates one at start and passes it to every [`crate::Chain::compile`] and
/// [`crate::Directory::compile`], so limits and quotas carry over across reloads.
#[derive(Debug, Default)]
pub struct Counters {
    pub quotas: Quotas,
    pub limiters: LimiterRegistry,
    pub key_usage: KeyUsage,
}

impl Counters {
    pub fn new() -> Self {
        Self::default()
    }
}
