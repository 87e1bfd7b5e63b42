//! What stands between a password guesser and argon2, for console logins and REST Basic
//! auth alike (one [`LoginGuard`] serves both, so a name's failures count across them):
//!
//! - one check in flight per user name: a second attempt for the name waits for its turn
//!   (and may then find its answer cached, or the name throttled);
//! - the per-name throttle of [`throttle`]: an attempt is reserved (counted as a failure)
//!   before its check runs, and refused without argon2 while the name must wait;
//! - at most [`LoginGuard::new`]'s `max_checks` argon2 checks at once (one per core by
//!   default, each takes ~19 MB for ~50 ms); up to [`MAX_WAITING`] more attempts wait for
//!   a slot, and beyond that an attempt is refused as [`Refusal::Busy`] (503).
//!
//! The guard, the name's turn and the slot are held by the blocking thread that runs the
//! check, so a caller that goes away does not free them before argon2 is done.

pub(crate) mod throttle;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

use throttle::LoginThrottle;

/// Attempts that may wait for an argon2 slot; more are refused as [`Refusal::Busy`].
pub(crate) const MAX_WAITING: usize = 64;
/// What a [`Refusal::Busy`] asks the client to wait.
pub(crate) const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Characters of a user name that a log line keeps: a login form takes 2 MB, and every
/// refused login is logged.
const LOGGED_NAME_CHARS: usize = 64;

/// `user` as log lines name it: cut after [`LOGGED_NAME_CHARS`] characters, then `…` and
/// the name's length in bytes.
pub(crate) fn logged_name(user: &str) -> std::borrow::Cow<'_, str> {
    match user.char_indices().nth(LOGGED_NAME_CHARS) {
        Some((cut, _)) => format!("{}… ({} bytes)", &user[..cut], user.len()).into(),
        None => user.into(),
    }
}

/// Why an attempt was not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Too many wrong passwords for the name: try again after this (429).
    Throttled { retry_after: Duration },
    /// Too many checks running and waiting: try again after this (503).
    Busy { retry_after: Duration },
}

impl Refusal {
    /// `Retry-After` in whole seconds, rounded up.
    pub fn retry_after_secs(self) -> u64 {
        let (Self::Throttled { retry_after } | Self::Busy { retry_after }) = self;
        retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0)
    }
}

/// Password checks, throttled; clones share it.
#[derive(Clone)]
pub(crate) struct LoginGuard {
    inner: Arc<Inner>,
}

struct Inner {
    throttle: LoginThrottle,
    /// The turn of each name with an attempt in flight or waiting.
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
}

impl Default for LoginGuard {
    /// One argon2 check per core, [`MAX_WAITING`] waiting.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(cores, MAX_WAITING)
    }
}

impl LoginGuard {
    /// At most `max_checks` checks run at once and `max_waiting` wait for one.
    pub fn new(max_checks: usize, max_waiting: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                throttle: LoginThrottle::default(),
                turns: Mutex::new(HashMap::new()),
                slots: Arc::new(Semaphore::new(max_checks.max(1))),
                waiting: AtomicUsize::new(0),
                max_waiting,
            }),
        }
    }

    /// Waits until no other attempt for `user` is in flight; the attempt then has the
    /// name to itself until the returned [`Turn`] is dropped or its check ends.
    pub async fn turn(&self, user: &str) -> Turn {
        let gate = {
            let mut turns = self.inner.turns.lock();
            turns.entry(user.to_owned()).or_default().clone()
        };
        let guard = gate.lock_owned().await;
        Turn {
            inner: self.inner.clone(),
            user: user.to_owned(),
            guard: Some(guard),
        }
    }
}

/// The one attempt in flight for a name.
pub(crate) struct Turn {
    inner: Arc<Inner>,
    user: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Turn {
    /// Runs `verify` (an argon2 check of the name's password; `true`: right) on a blocking
    /// thread, unless the name is throttled or no slot frees up. The attempt is counted
    /// as a failure before `verify` runs, and cleared when it answers `true`.
    pub async fn verify(
        self,
        verify: impl FnOnce() -> bool + Send + 'static,
    ) -> Result<bool, Refusal> {
        if let Err(retry_after) = self.inner.throttle.check(&self.user, Instant::now()) {
            return Err(Refusal::Throttled { retry_after });
        }
        let slot = self.slot().await?;
        self.inner.throttle.reserve(&self.user, Instant::now());
        let is_valid = tokio::task::spawn_blocking(move || {
            let is_valid = verify();
            if is_valid {
                self.inner.throttle.succeeded(&self.user);
            } else {
                self.inner.throttle.failed(&self.user, Instant::now());
            }
            drop(slot);
            drop(self);
            is_valid
        })
        .await;
        // A panicking check is a refusal: it stays counted.
        Ok(is_valid.unwrap_or(false))
    }

    /// An argon2 slot, waiting for one when there is room in the queue.
    async fn slot(&self) -> Result<OwnedSemaphorePermit, Refusal> {
        let busy = Refusal::Busy {
            retry_after: BUSY_RETRY_AFTER,
        };
        if let Ok(slot) = self.inner.slots.clone().try_acquire_owned() {
            return Ok(slot);
        }
        if self.inner.waiting.fetch_add(1, Ordering::AcqRel) >= self.inner.max_waiting {
            self.inner.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(busy);
        }
        let _waiting = Waiting(&self.inner.waiting);
        self.inner
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| busy)
    }
}

impl Drop for Turn {
    /// Gives the name's turn to the next attempt; forgets the name when none waits.
    fn drop(&mut self) {
        let mut turns = self.inner.turns.lock();
        drop(self.guard.take());
        // Waiters clone the gate under this lock: one left means only the map holds it.
        if turns
            .get(&self.user)
            .is_some_and(|gate| Arc::strong_count(gate) == 1)
        {
            turns.remove(&self.user);
        }
    }
}

/// One attempt waiting for a slot, counted while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests;
