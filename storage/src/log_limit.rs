//! Rate-limited logging of background errors: each class of error (a store write, a usage
//! flush) is logged at once the first time, then at most once per interval, with a count
//! of what was held back, so a failing disk yields a few lines a minute, never one per
//! request or per flush.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;

/// How often one class of error is logged at most.
pub const LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Decides, per class, which errors are logged. `now` is any monotone time (the injected
/// clock's), so tests step it by hand.
#[derive(Debug)]
pub struct LogLimiter {
    interval: Duration,
    classes: Mutex<HashMap<&'static str, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    /// When this class was last logged.
    logged_at: Duration,
    /// Errors of this class held back since.
    held_back: u64,
}

impl LogLimiter {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            classes: Mutex::new(HashMap::new()),
        }
    }

    /// An error of `class` happened at `now`. `Some(held_back)`: log it now, saying how many
    /// of its class were held back since the last line; `None`: count it, do not log.
    pub fn note(&self, class: &'static str, now: Duration) -> Option<u64> {
        let mut classes = self.classes.lock();
        match classes.get_mut(class) {
            Some(w) if now.saturating_sub(w.logged_at) < self.interval => {
                w.held_back += 1;
                None
            }
            Some(w) => {
                let held_back = w.held_back;
                *w = Window {
                    logged_at: now,
                    held_back: 0,
                };
                Some(held_back)
            }
            None => {
                classes.insert(
                    class,
                    Window {
                        logged_at: now,
                        held_back: 0,
                    },
                );
                Some(0)
            }
        }
    }

    /// The classes whose interval has passed with errors held back: `(class, how many)`,
    /// each to be logged as one summary line (call it periodically, so that the last
    /// errors of a burst are reported even when no other one follows).
    pub fn due(&self, now: Duration) -> Vec<(&'static str, u64)> {
        let mut classes = self.classes.lock();
        let mut due = Vec::new();
        for (class, w) in classes.iter_mut() {
            if w.held_back > 0 && now.saturating_sub(w.logged_at) >= self.interval {
                due.push((*class, w.held_back));
                *w = Window {
                    logged_at: now,
                    held_back: 0,
                };
            }
        }
        due.sort_unstable();
        due
    }

    /// The interval this limiter was made with.
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn at(secs: u64) -> Duration {
        Duration::from_secs(1_000 + secs)
    }

    #[test]
    fn logs_the_first_error_at_once_and_holds_back_the_rest_of_the_interval() {
        let limiter = LogLimiter::new(MINUTE);
        assert_eq!(limiter.note("write", at(0)), Some(0));
        for s in 1..60 {
            assert_eq!(limiter.note("write", at(s)), None, "second {s}");
        }
        assert_eq!(limiter.note("write", at(60)), Some(59));
        assert_eq!(limiter.note("write", at(61)), None);
    }

    #[test]
    fn classes_are_limited_apart() {
        let limiter = LogLimiter::new(MINUTE);
        assert_eq!(limiter.note("write", at(0)), Some(0));
        assert_eq!(limiter.note("usage", at(1)), Some(0));
        assert_eq!(limiter.note("write", at(2)), None);
        assert_eq!(limiter.note("usage", at(3)), None);
    }

    #[test]
    fn reports_held_back_errors_once_the_interval_passes_without_another() {
        let limiter = LogLimiter::new(MINUTE);
        limiter.note("usage", at(0));
        limiter.note("usage", at(5));
        limiter.note("usage", at(6));
        assert_eq!(limiter.due(at(59)), Vec::new());
        assert_eq!(limiter.due(at(60)), vec![("usage", 2)]);
        // Reported once; the next error waits out a new interval from the summary.
        assert_eq!(limiter.due(at(200)), Vec::new());
        assert_eq!(limiter.note("usage", at(100)), None);
        assert_eq!(limiter.note("usage", at(121)), Some(1));
    }

    #[test]
    fn a_class_logged_long_ago_logs_its_next_error_at_once() {
        let limiter = LogLimiter::new(MINUTE);
        limiter.note("flush", at(0));
        assert_eq!(limiter.note("flush", at(3_600)), Some(0));
    }
}
