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
