//! Whether the store can write: every failed write, usage save or flush is counted here by
//! [`Op`], remembered as the last error and logged through [`LogLimiter`]; a failure marks
//! the store degraded until a reopen and a probe write succeed (see `Store::recover`).

use std::sync::Arc;

use parking_lot::Mutex;
use policies::Clock;
use serde::Serialize;

use crate::log_limit::{LogLimiter, LOG_INTERVAL};

/// What the store was doing when it failed: the `op` label of
/// `tollgate_store_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// A config change, an admin session or password (and the acknowledged-revision file).
    Write,
    /// A flush of everything (shutdown).
    Flush,
    /// Quota counts and API keys' last use.
    Usage,
}

impl Op {
    pub const ALL: [Op; 3] = [Op::Write, Op::Flush, Op::Usage];

    pub fn name(self) -> &'static str {
        match self {
            Op::Write => "write",
            Op::Flush => "flush",
            Op::Usage => "usage",
        }
    }
}

/// The store's health as reported by `GET /api/v1/status` and the metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreHealth {
    /// False from a failed write until the store recovered.
    pub ok: bool,
    /// The last failure (kept after recovery).
    pub last_error: Option<String>,
    /// When it happened, unix seconds.
    pub last_error_at: Option<u64>,
    /// Failures since start.
    pub errors: u64,
    /// The same, by [`Op`] (in the order of [`Op::ALL`]).
    #[serde(skip)]
    pub errors_by_op: [u64; 3],
}

/// The health tracker a store holds.
pub(crate) struct Health {
    state: Mutex<State>,
    log: LogLimiter,
    clock: Arc<dyn Clock>,
}

#[derive(Default)]
struct State {
    degraded: bool,
    last_error: Option<String>,
    last_error_at: Option<u64>,
    errors_by_op: [u64; 3],
}

impl Health {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            state: Mutex::new(State::default()),
            log: LogLimiter::new(LOG_INTERVAL),
            clock,
        }
    }

    /// Records a failure of `op`: degraded, counted, logged (rate-limited).
    pub fn failed(&self, op: Op, error: &dyn std::fmt::Display) {
        let now = self.clock.now();
        let message = error.to_string();
        {
            let mut state = self.state.lock();
            state.degraded = true;
            state.errors_by_op[op as usize] += 1;
            state.last_error = Some(message.clone());
            state.last_error_at = Some(now.as_secs());
        }
        if let Some(held_back) = self.log.note(op.name(), now) {
            tracing::error!(
                op = op.name(),
                error = %message,
                held_back,
                "the store cannot write; writes are refused until it recovers"
            );
        }
    }

    /// The store wrote again after being degraded. True when it was degraded.
    pub fn recovered(&self) -> bool {
        let was = std::mem::replace(&mut self.state.lock().degraded, false);
        if was {
            tracing::info!("the store writes again");
        }
        was
    }

    pub fn is_degraded(&self) -> bool {
        self.state.lock().degraded
    }

    /// Logs one summary line per class with errors held back over a whole interval.
    pub fn log_held_back(&self) {
        for (class, n) in self.log.due(self.clock.now()) {
            tracing::error!(
                op = class,
                held_back = n,
                "{n} more store {class} errors in the last {} s",
                self.log.interval().as_secs()
            );
        }
    }

    pub fn report(&self) -> StoreHealth {
        let state = self.state.lock();
        StoreHealth {
            ok: !state.degraded,
            last_error: state.last_error.clone(),
            last_error_at: state.last_error_at,
            errors: state.errors_by_op.iter().sum(),
            errors_by_op: state.errors_by_op,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use policies::ManualClock;
    use std::time::Duration;

    #[test]
    fn a_failure_degrades_until_recovered_and_is_remembered_after() {
        let clock = Arc::new(ManualClock::new(Duration::from_secs(1_800_000_000)));
        let health = Health::new(clock.clone());
        assert!(health.report().ok);
        assert!(!health.recovered(), "nothing to recover from");

        health.failed(Op::Write, &"No space left on device");
        clock.advance(Duration::from_secs(3));
        health.failed(Op::Usage, &"No space left on device (usage)");
        let report = health.report();
        assert!(!report.ok);
        assert!(health.is_degraded());
        assert_eq!(report.errors, 2);
        assert_eq!(report.errors_by_op, [1, 0, 1]);
        assert_eq!(report.last_error_at, Some(1_800_000_003));
        assert_eq!(
            report.last_error.as_deref(),
            Some("No space left on device (usage)")
        );

        assert!(health.recovered());
        let report = health.report();
        assert!(report.ok);
        assert_eq!(report.errors, 2, "counts survive recovery");
        assert!(report.last_error.is_some(), "the last error stays visible");
    }
}
