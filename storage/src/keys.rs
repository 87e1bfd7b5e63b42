//! API keys (shown once, stored as a sha256 hash) and passwords (argon2 PHC strings).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use policies::KeyHash;
use rand::distributions::{Alphanumeric, DistString};

/// What every API key starts with.
pub const KEY_PREFIX: &str = "tg_";
/// Random base62 characters after [`KEY_PREFIX`].
pub const KEY_RANDOM_CHARS: usize = 32;
/// Characters of a key kept to tell keys apart (`tg_ab12`).
pub const KEY_SHOWN_CHARS: usize = 7;

/// A new API key: `(plaintext, sha256 of it, prefix)`. The plaintext is `tg_` and 32
/// random base62 characters from the OS-seeded thread RNG; show it once and store only the
/// hash and the prefix (its first 7 characters).
pub fn new_api_key() -> (String, KeyHash, String) {
    let random = Alphanumeric.sample_string(&mut rand::thread_rng(), KEY_RANDOM_CHARS);
    let key = format!("{KEY_PREFIX}{random}");
    let hash = KeyHash::of(key.as_bytes());
    let prefix = key.chars().take(KEY_SHOWN_CHARS).collect();
    (key, hash, prefix)
}

/// Lowercase hex sha256 of `key`: what the `keys` tree is keyed by (the text form of
/// [`KeyHash::of`]).
pub fn hash_key(key: &str) -> String {
    KeyHash::of(key.as_bytes()).to_string()
}

/// A password could not be hashed.
#[derive(Debug, thiserror::Error)]
#[error("cannot hash password: {0}")]
pub struct PasswordError(String);

/// argon2id with the parameters basic_auth's decoy uses too
/// ([`policies::basic_auth::argon2_hasher`]: 7 MiB, 5 passes).
fn hasher() -> Argon2<'static> {
    policies::basic_auth::argon2_hasher()
}

/// Hashes `password` with argon2id ([`hasher`]'s parameters, random salt) into a PHC
/// string. Deliberately slow (tens of milliseconds): call it off async worker threads.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError(e.to_string()))
}

/// Whether `password` matches `hash`, the stored hash of a user: `None` (no such user)
/// never matches, but checks the password against a decoy hash of the same parameters
/// ([`policies::basic_auth::decoy_phc`]) all the same, so that an unknown user name takes
/// as long to refuse as a wrong password: no user name can be told to exist by timing.
pub fn verify_password_or_decoy(password: &str, hash: Option<&str>) -> bool {
    match hash {
        Some(hash) => verify_password(password, hash),
        None => {
            std::hint::black_box(verify_password(password, policies::basic_auth::decoy_phc()));
            false
        }
    }
}

/// Whether `password` matches the PHC string `hash` (whose own parameters are used). A
/// malformed hash never matches. As slow as [`hash_password`].
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_user_is_checked_against_a_decoy_of_the_same_cost() {
        let real_hash = hash_password("pw").expect("hash");
        let real = PasswordHash::new(&real_hash).expect("phc");
        let decoy = PasswordHash::new(policies::basic_auth::decoy_phc()).expect("phc");
        assert_eq!(decoy.algorithm, real.algorithm);
        assert_eq!(
            argon2::Params::try_from(&decoy).expect("params"),
            argon2::Params::try_from(&real).expect("params")
        );
        assert!(
            !verify_password_or_decoy("tollgate decoy", None),
            "the decoy's own password opens nothing"
        );
        assert!(verify_password_or_decoy("pw", Some(&real_hash)));
        assert!(!verify_password_or_decoy("nope", Some(&real_hash)));
    }

    #[test]
    fn new_key_has_prefix_hash_and_shown_part() {
        let (key, hash, prefix) = new_api_key();
        assert!(key.starts_with("tg_"));
        assert_eq!(key.len(), 3 + KEY_RANDOM_CHARS);
        assert!(key[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(hash, hash_key(&key));
        assert_eq!(prefix, key[..7]);
        assert_ne!(new_api_key().0, key);
    }

    #[test]
    fn hash_key_is_hex_sha256() {
        const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(hash_key("abc"), ABC);
        assert_eq!(KeyHash::of(b"abc"), *ABC);
    }

    #[test]
    fn verifies_only_the_right_password() {
        let hash = hash_password("s3cret").expect("hashable");
        assert!(hash.starts_with("$argon2"));
        assert!(verify_password("s3cret", &hash));
        assert!(!verify_password("S3cret", &hash));
        assert!(!verify_password("s3cret", "not a phc string"));
    }
}
