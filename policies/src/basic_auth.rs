//! `basic_auth`: `Authorization: Basic` checked against the consumer's argon2 hash. Argon2
//! is slow by design, so a successful password's sha256 is remembered per credential for
//! the config revision: a repeated request costs one sha256.

use std::sync::Arc;
use std::sync::OnceLock;

use argon2::password_hash::PasswordHash;
use argon2::{Argon2, PasswordVerifier};
use base64::Engine;
use http::{HeaderValue, StatusCode};
use sha2::{Digest, Sha256};

use crate::directory::{Consumer, Directory};
use crate::key_auth::identify;
use crate::problem::Problem;
use crate::request::{RequestState, RequestView};
use crate::verdict::{Rejection, Verdict};

pub use crate::spec::BasicAuthSpec;

const KIND: &str = "basic_auth";

/// A compiled `basic_auth` policy (it has no settings; credentials live in the directory).
#[derive(Debug, Clone, Default)]
pub struct BasicAuth;

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

    /// Whether `password` is this credential's. Slow (argon2) the first time, one sha256 after.
    pub fn verify(&self, password: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(password).into();
        if let Some(known) = self.verified.get() {
            if constant_time_eq(known, &digest) {
                return true;
            }
        }
        let ok = PasswordHash::new(&self.phc)
            .is_ok_and(|h| Argon2::default().verify_password(password, &h).is_ok());
        if ok {
            // A second racing success stores the same digest; losing the race is harmless.
            let _ = self.verified.set(digest);
        }
        ok
    }
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

impl BasicAuth {
    pub fn compile(_spec: &BasicAuthSpec) -> Result<Self, Vec<Problem>> {
        Ok(Self)
    }

    /// Identifies the consumer by username and password; 401 with a Basic challenge otherwise.
    pub fn on_request(
        &self,
        view: &RequestView<'_>,
        state: &mut RequestState,
        directory: &Directory,
    ) -> Verdict {
        let Some(encoded) = view
            .header_str(&http::header::AUTHORIZATION)
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
        match credential {
            Some(c) if c.verify(password) => identify(state, &c.consumer, KIND),
            _ => challenge("invalid basic credentials"),
        }
    }
}
