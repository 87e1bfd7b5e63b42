//! State that outlives a config revision: rate-limiter arrival times and quota counts.
//! (When each API key was last used lives in the compiled keys, see
//! [`crate::Directory::carry_last_used`].)

use crate::quota::Quotas;
use crate::rate_limit::LimiterRegistry;

/// The edge creates one at start and passes it to every [`crate::Chain::compile`] and
/// [`crate::Directory::compile`], so limits and quotas carry over across reloads.
#[derive(Debug, Default)]
pub struct Counters {
    pub quotas: Quotas,
    pub limiters: LimiterRegistry,
}

impl Counters {
    pub fn new() -> Self {
        Self::default()
    }
}
