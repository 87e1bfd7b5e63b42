//! `basic_auth`: `Authorization: Basic` checked against the consumer's argon2 hash. Argon2
//! is slow by design, so a successful password's sha256 is remembered per credential for
//! the config revision: a repeated request costs one sha256.
//!
//! A password that must go through argon2 (tens of milliseconds) would stall every other
//! request of the proxy thread it runs on, and a flood of wrong passwords would stall them
//! all. So the edge hands the check to a runner that may block ([`configure_slow_checks`]:
//! tokio's `block_in_place`, which moves the thread's other connections on), and at most
//! as many checks as there are cores run at once: more are refused at once (503 with
//! `Retry-After`) rather than queued, so wrong passwords cost at most those cores, and the
//! memory of that many argon2 runs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use base64::Engine;
use http::{HeaderValue, StatusCode};
use sha2::{Digest, Sha256};

use crate::directory::{Consumer, Directory};
use crate::key_auth::identify;
use crate::problem::Problem;
use crate::request::{RequestState, RequestView};
use crate::verdict::{Rejection, Verdict};

pub use crate::spec::{BasicAuthSpec, DEFAULT_HIDE_PASSWORD};

const KIND: &str = "basic_auth";

/// A compiled `basic_auth` policy (credentials live in the directory).
#[derive(Debug, Clone)]
pub struct BasicAuth {
    /// Remove `Authorization` before the upstream (`hide_credentials`).
    hide: bool,
}

/// One username's credential.
#[derive(Debug)]
pub struct Credential {
    consumer: Arc<Consumer>,
    /// The argon2 PHC string, checked to parse at compile.
    phc: String,
    /// sha256 of the password that last verified.
    pub(crate) verified: OnceLock<[u8; 32]>,
}

impl Credential {
    /// `Err` when `phc` is not an argon2 PHC string.
    pub fn compile(consumer: Arc<Consumer>, phc: &str) -> Result<Self, Problem> {
        match PasswordHash::new(phc) {
            Ok(h) if h.algorithm.as_str().starts_with("argon2") => Ok(Self {
                consumer,
                phc: phc.to_owned(),
                verified: OnceLock::new(),
            }),
            _ => Err(Problem::new(
                "password_hash",
                "must be an argon2 PHC string",
            )),
        }
    }

    /// Whether `password` is this credential's. Slow (argon2, through the process's
    /// [`SlowChecks`]) the first time, one sha256 after. `None`: too many slow checks are
    /// running; try again later.
    pub fn verify(&self, password: &[u8]) -> Option<bool> {
        self.verify_with(password, slow_checks())
    }

    pub(crate) fn verify_with(&self, password: &[u8], slow: &SlowChecks) -> Option<bool> {
        let digest: [u8; 32] = Sha256::digest(password).into();
        if let Some(known) = self.verified.get() {
            if constant_time_eq(known, &digest) {
                return Some(true);
            }
        }
        let ok = slow.run(|| {
            PasswordHash::new(&self.phc)
                .is_ok_and(|h| Argon2::default().verify_password(password, &h).is_ok())
        })?;
        if ok {
            // A second racing success stores the same digest; losing the race is harmless.
            let _ = self.verified.set(digest);
        }
        Some(ok)
    }
}

/// argon2id memory (KiB) of the hashes Tollgate makes (storage's `hash_password`): 7 MiB
/// with [`ARGON2_PASSES`] passes, one of OWASP's recommended settings, chosen over the
/// crate default (19 MiB, 2 passes) because every MiB touched stays resident.
pub const ARGON2_MEMORY_KIB: u32 = 7 * 1024;
/// argon2id passes of the hashes Tollgate makes.
pub const ARGON2_PASSES: u32 = 5;

/// argon2id with [`ARGON2_MEMORY_KIB`] and [`ARGON2_PASSES`], one lane.
pub fn argon2_hasher() -> Argon2<'static> {
    match argon2::Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, 1, None) {
        Ok(params) => Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params),
        // The constants are within argon2's bounds; the default is as strong.
        Err(_) => Argon2::default(),
    }
}

/// A hash no password is checked against for real: an unknown username is checked
/// against it, so that it takes as long as a known one with a wrong password (no
/// username can be told to exist by timing). Made once, on first need.
pub fn decoy_phc() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        // A constant, valid salt: the decoy never has to resist anything.
        SaltString::from_b64("dG9sbGdhdGVkZWNveQ")
            .ok()
            .and_then(|salt| {
                argon2_hasher()
                    .hash_password(b"tollgate decoy", &salt)
                    .map(|h| h.to_string())
                    .ok()
            })
            .unwrap_or_default()
    })
}

/// Checks `password` against the decoy hash through `slow`: `None` when turned away.
fn check_decoy(password: &[u8], slow: &SlowChecks) -> Option<()> {
    slow.run(|| {
        PasswordHash::new(decoy_phc())
            .is_ok_and(|h| Argon2::default().verify_password(password, &h).is_ok())
    })
    .map(|_| ())
}

/// Runs a blocking closure: the edge's runner moves the proxy thread's other work on.
pub type BlockingRunner = fn(&mut dyn FnMut());

/// The bound on argon2 checks running at once, and how they run.
#[derive(Debug)]
pub struct SlowChecks {
    max: usize,
    running: AtomicUsize,
    runner: Option<BlockingRunner>,
}

impl SlowChecks {
    /// At most `max` (at least 1) checks at once, each through `runner` (inline: `None`).
    pub fn new(max: usize, runner: Option<BlockingRunner>) -> Self {
        Self {
            max: max.max(1),
            running: AtomicUsize::new(0),
            runner,
        }
    }

    /// Runs `check` unless `max` checks are running already (`None`).
    pub fn run(&self, check: impl FnOnce() -> bool) -> Option<bool> {
        let entered = self
            .running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            });
        if entered.is_err() {
            return None;
        }
        let mut check = Some(check);
        let mut out = false;
        let mut once = || {
            if let Some(check) = check.take() {
                out = check();
            }
        };
        match self.runner {
            Some(run) => run(&mut once),
            None => once(),
        }
        self.running.fetch_sub(1, Ordering::AcqRel);
        Some(out)
    }
}

static SLOW_CHECKS: OnceLock<SlowChecks> = OnceLock::new();

/// Sets how this process runs argon2 checks; the first call wins. Without one: one check
/// per core at once, inline.
pub fn configure_slow_checks(max: usize, runner: BlockingRunner) {
    let _ = SLOW_CHECKS.set(SlowChecks::new(max, Some(runner)));
}

fn slow_checks() -> &'static SlowChecks {
    SLOW_CHECKS.get_or_init(|| {
        SlowChecks::new(
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            None,
        )
    })
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn challenge(message: &'static str) -> Verdict {
    let mut r = Rejection::new(StatusCode::UNAUTHORIZED, KIND, message);
    r.headers.push((
        http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"tollgate\""),
    ));
    Verdict::Respond(r)
}

/// 503: the password checks this process allows at once are all running.
fn busy() -> Verdict {
    let mut r = Rejection::new(
        StatusCode::SERVICE_UNAVAILABLE,
        KIND,
        "too many password checks in progress",
    );
    r.headers
        .push((http::header::RETRY_AFTER, HeaderValue::from_static("1")));
    Verdict::Respond(r)
}

impl BasicAuth {
    pub fn compile(spec: &BasicAuthSpec) -> Result<Self, Vec<Problem>> {
        Ok(Self {
            hide: spec.hide_credentials.unwrap_or(DEFAULT_HIDE_PASSWORD),
        })
    }

    /// Whether `Authorization` is removed before the upstream.
    pub fn hides_credentials(&self) -> bool {
        self.hide
    }

    /// Identifies the consumer by username and password; 401 with a Basic challenge
    /// otherwise, 400 when `Authorization` comes twice (which one counts would be a guess).
    pub fn on_request(
        &self,
        view: &RequestView<'_>,
        state: &mut RequestState,
        directory: &Directory,
    ) -> Verdict {
        let Ok(authorization) = view.single_header(&http::header::AUTHORIZATION) else {
            return Verdict::Respond(Rejection::bad_request(
                KIND,
                "repeated authorization header",
            ));
        };
        let Some(encoded) = authorization
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            .map(|(_, rest)| rest.trim())
        else {
            return challenge("missing basic credentials");
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
            return challenge("invalid basic credentials");
        };
        let Some(colon) = decoded.iter().position(|b| *b == b':') else {
            return challenge("invalid basic credentials");
        };
        let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
        let credential = std::str::from_utf8(user)
            .ok()
            .and_then(|u| directory.credential(u));
        let checked = match credential {
            Some(c) => c.verify(password).map(|ok| ok.then_some(c)),
            None => check_decoy(password, slow_checks()).map(|()| None),
        };
        match checked {
            Some(Some(c)) => identify(state, &c.consumer, KIND),
            Some(None) => challenge("invalid basic credentials"),
            None => busy(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn slow_checks_run_at_most_max_at_once_and_free_their_slot() {
        let slow = SlowChecks::new(1, None);
        assert_eq!(slow.run(|| true), Some(true));
        // While one check runs, a second is refused; after it, the slot is free again.
        let inner = slow.run(|| slow.run(|| true).is_none());
        assert_eq!(inner, Some(true));
        assert_eq!(slow.run(|| false), Some(false));
    }

    #[test]
    fn an_unknown_user_costs_an_argon2_check_like_a_known_one() {
        let slow = SlowChecks::new(1, None);
        assert_eq!(check_decoy(b"anything", &slow), Some(()));
        let decoy = PasswordHash::new(decoy_phc()).expect("a PHC string");
        assert_eq!(decoy.algorithm.as_str(), "argon2id");
        let params = argon2::Params::try_from(&decoy).expect("params");
        assert_eq!(
            (params.m_cost(), params.t_cost()),
            (ARGON2_MEMORY_KIB, ARGON2_PASSES)
        );
        // Turned away like any check while the slots are taken.
        assert_eq!(slow.run(|| check_decoy(b"x", &slow).is_none()), Some(true));
    }

    #[test]
    fn checks_go_through_the_runner() {
        fn runner(f: &mut dyn FnMut()) {
            RAN.with(|r| r.set(r.get() + 1));
            f();
        }
        thread_local! {
            static RAN: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
        }
        let slow = SlowChecks::new(2, Some(runner));
        assert_eq!(slow.run(|| true), Some(true));
        assert_eq!(RAN.with(std::cell::Cell::get), 1);
    }

    #[test]
    fn concurrent_checks_beyond_the_bound_are_refused_not_queued() {
        let slow = Arc::new(SlowChecks::new(2, None));
        let (started_tx, started_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Arc::new(std::sync::Mutex::new(release_rx));
        let holders: Vec<_> = (0..2)
            .map(|_| {
                let (slow, started_tx, release_rx) =
                    (slow.clone(), started_tx.clone(), release_rx.clone());
                std::thread::spawn(move || {
                    slow.run(|| {
                        started_tx.send(()).expect("started");
                        release_rx.lock().expect("lock").recv().expect("release");
                        true
                    })
                })
            })
            .collect();
        started_rx.recv().expect("first running");
        started_rx.recv().expect("second running");
        assert_eq!(slow.run(|| true), None);
        release_tx.send(()).expect("release");
        release_tx.send(()).expect("release");
        for h in holders {
            assert_eq!(h.join().expect("holder"), Some(true));
        }
        assert_eq!(slow.run(|| true), Some(true));
    }
}
