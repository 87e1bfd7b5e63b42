//! Login throttling: after [`FREE_FAILURES`] wrong passwords in a row for a user name,
//! each further attempt for it must wait a delay that doubles with every failure (1 s,
//! 2 s, 4 s, ... up to [`MAX_DELAY`]); an attempt inside the delay is refused at once,
//! without checking the password (no argon2 run for it). An attempt is counted as a
//! failure when it is reserved, before its check runs (a check whose caller went away
//! still counts); a right password then clears the name's count. Counted by user name, not client address: a guesser changing addresses
//! gains nothing, and the cost, an admin who must wait out the delay, is bounded by
//! [`MAX_DELAY`]. At most [`MAX_NAMES`] names are tracked; beyond that the name with the
//! fewest failures goes first (the longest idle of them), so that guessing for many
//! made-up names cannot push out the count of the name under attack.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

/// Wrong passwords in a row a name may have before attempts must wait.
pub(crate) const FREE_FAILURES: u32 = 5;
/// The longest wait between attempts.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(300);
/// User names tracked at once.
const MAX_NAMES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl Failures {
    /// When the next attempt may be checked.
    fn next_allowed(self) -> Instant {
        if self.count < FREE_FAILURES {
            return self.last;
        }
        let doublings = (self.count - FREE_FAILURES).min(16);
        let delay = Duration::from_secs(1u64 << doublings).min(MAX_DELAY);
        self.last + delay
    }
}

/// Failed logins (console and REST Basic auth) by the sha256 of the user name: a name
/// takes 32 bytes however long it is (a login form takes 2 MB).
#[derive(Debug, Default)]
pub(crate) struct LoginThrottle {
    names: Mutex<HashMap<[u8; 32], Failures>>,
}

fn key(user: &str) -> [u8; 32] {
    Sha256::digest(user.as_bytes()).into()
}

impl LoginThrottle {
    /// `Err(wait)`: an attempt for `user` at `now` must wait that long before it is checked.
    pub(crate) fn check(&self, user: &str, now: Instant) -> Result<(), Duration> {
        let names = self.names.lock();
        match names.get(&key(user)).map(|f| f.next_allowed()) {
            Some(allowed) if allowed > now => Err(allowed - now),
            _ => Ok(()),
        }
    }

    /// Reserves an attempt for `user` at `now`: it counts as a wrong password until
    /// [`LoginThrottle::succeeded`] says otherwise.
    pub(crate) fn reserve(&self, user: &str, now: Instant) {
        let user = key(user);
        let mut names = self.names.lock();
        if !names.contains_key(&user) && names.len() >= MAX_NAMES {
            // Fewest failures first: a flood of made-up names (one failure each) evicts
            // its own names, not the one it is guessing for.
            let evicted = names
                .iter()
                .min_by_key(|(_, f)| (f.count, f.last))
                .map(|(name, _)| *name);
            if let Some(name) = evicted {
                names.remove(&name);
            }
        }
        let entry = names.entry(user).or_insert(Failures {
            count: 0,
            last: now,
        });
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
    }

    /// A reserved attempt for `user` turned out wrong at `now`: the wait counts from
    /// then, not from the reservation (a check takes a while).
    pub(crate) fn failed(&self, user: &str, now: Instant) {
        if let Some(failures) = self.names.lock().get_mut(&key(user)) {
            failures.last = failures.last.max(now);
        }
    }

    /// A right password for `user`: its count starts again.
    pub(crate) fn succeeded(&self, user: &str) {
        self.names.lock().remove(&key(user));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_are_free_then_the_wait_doubles_up_to_the_cap() {
        let throttle = LoginThrottle::default();
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES - 1 {
            throttle.reserve("admin", t0);
            assert_eq!(throttle.check("admin", t0), Ok(()));
        }
        throttle.reserve("admin", t0);
        assert_eq!(throttle.check("admin", t0), Err(Duration::from_secs(1)));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(throttle.check("admin", t1), Ok(()));
        throttle.reserve("admin", t1);
        assert_eq!(throttle.check("admin", t1), Err(Duration::from_secs(2)));
        let mut t = t1;
        for _ in 0..20 {
            throttle.reserve("admin", t);
            t += MAX_DELAY;
        }
        assert_eq!(throttle.check("admin", t - MAX_DELAY), Err(MAX_DELAY));
        // Other names are not held up.
        assert_eq!(throttle.check("ops", t0), Ok(()));
    }

    #[test]
    fn the_wait_counts_from_the_end_of_the_failed_check() {
        let throttle = LoginThrottle::default();
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES {
            throttle.reserve("admin", t0);
        }
        let checked = t0 + Duration::from_millis(1500);
        throttle.failed("admin", checked);
        assert_eq!(
            throttle.check("admin", checked + Duration::from_millis(500)),
            Err(Duration::from_millis(500))
        );
    }

    #[test]
    fn a_right_password_clears_the_count() {
        let throttle = LoginThrottle::default();
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES + 3 {
            throttle.reserve("admin", t0);
        }
        assert!(throttle.check("admin", t0).is_err());
        throttle.succeeded("admin");
        assert_eq!(throttle.check("admin", t0), Ok(()));
    }

    #[test]
    fn tracks_a_bounded_number_of_names_dropping_the_idlest_of_the_fewest_failures() {
        let throttle = LoginThrottle::default();
        let t0 = Instant::now();
        throttle.reserve("oldest", t0);
        for i in 0..MAX_NAMES {
            throttle.reserve(&format!("guess-{i}"), t0 + Duration::from_secs(1));
        }
        assert_eq!(throttle.names.lock().len(), MAX_NAMES);
        assert_eq!(throttle.check("oldest", t0), Ok(()), "dropped first");
    }

    #[test]
    fn a_flood_of_new_names_does_not_evict_a_throttled_name() {
        // The attack: one wrong password for each of MAX_NAMES made-up names (10,000
        // argon2 checks, minutes on two cores) used to push the idlest name out, which is
        // the name under attack (its throttled attempts are refused without touching it),
        // and with it its count: five free guesses again.
        let throttle = LoginThrottle::default();
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES + 2 {
            throttle.reserve("admin", t0);
        }
        let later = t0 + Duration::from_secs(1);
        for i in 0..MAX_NAMES {
            throttle.reserve(&format!("guess-{i}"), later);
        }
        assert_eq!(throttle.names.lock().len(), MAX_NAMES);
        assert!(throttle.check("admin", later).is_err(), "still throttled");
    }

    #[test]
    fn a_long_user_name_is_tracked_in_a_fixed_size() {
        // The attack: console logins with 1 MB made-up user names (the form takes 2 MB)
        // kept each name in the table: 100 wrong logins grew the gateway by 120 MB, and
        // 10,000 would have taken 10 GB.
        let throttle = LoginThrottle::default();
        let long = "x".repeat(1 << 20);
        throttle.reserve(&long, Instant::now());
        let held: usize = throttle.names.lock().keys().map(|k| k.len()).sum();
        assert!(held <= 32, "{held} bytes held for one name");
    }
}
