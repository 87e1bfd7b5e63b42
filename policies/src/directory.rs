//! The identity index, compiled once per config revision: API key hashes, consumers with
//! their groups and compiled plan, basic-auth credentials and JWT issuers. The request path
//! reads it without locks.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::basic_auth::Credential;
use crate::counters::Counters;
use crate::jwt::JwtIssuer;
use crate::problem::{Problem, Problems};
use crate::quota::Quota;
use crate::rate_limit::PlanRate;
use crate::spec::{ConsumerSpec, CredentialRecord, JwtIssuerSpec, KeyRecord, PlanSpec};
use crate::verdict::{RateLimitStatus, Rejection};

/// The raw sha256 digest of an API key: 32 bytes where its hex form takes 64 (and a
/// separate allocation). Written and read as 64 lowercase hex digits, the form the store
/// and exports hold ([`KeyRecord::hash`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyHash(pub [u8; 32]);

/// Why a string is not a [`KeyHash`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be a hex sha256 (64 lowercase hex digits)")]
pub struct KeyHashError;

impl KeyHash {
    /// Hashes a presented key.
    pub fn of(key: &[u8]) -> Self {
        Self(Sha256::digest(key).into())
    }

    /// Parses the hex form: exactly 64 lowercase hex digits.
    pub fn from_hex(hex_digest: &str) -> Option<Self> {
        let lowercase = hex_digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let mut out = [0u8; 32];
        (lowercase && hex::decode_to_slice(hex_digest, &mut out).is_ok()).then_some(Self(out))
    }

    /// The 64 lowercase hex digits, without allocating.
    pub fn encode_hex<'b>(&self, buf: &'b mut [u8; 64]) -> &'b str {
        // 32 bytes fill the 64-byte buffer exactly; only ASCII hex digits are written.
        let _ = hex::encode_to_slice(self.0, buf);
        std::str::from_utf8(buf).unwrap_or_default()
    }
}

impl std::str::FromStr for KeyHash {
    type Err = KeyHashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s).ok_or(KeyHashError)
    }
}

impl std::fmt::Display for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.encode_hex(&mut [0; 64]))
    }
}

impl std::fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyHash({self})")
    }
}

/// Compares with a hex form (as `storage::hash_key` returns it).
impl PartialEq<str> for KeyHash {
    fn eq(&self, other: &str) -> bool {
        self.encode_hex(&mut [0; 64]) == other
    }
}

impl PartialEq<String> for KeyHash {
    fn eq(&self, other: &String) -> bool {
        *self == *other.as_str()
    }
}

impl Serialize for KeyHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.encode_hex(&mut [0; 64]))
    }
}

impl<'de> Deserialize<'de> for KeyHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Hex;
        impl serde::de::Visitor<'_> for Hex {
            type Value = KeyHash;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a hex sha256 (64 lowercase hex digits)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<KeyHash, E> {
                KeyHash::from_hex(v).ok_or_else(|| E::custom(KeyHashError))
            }
        }
        deserializer.deserialize_str(Hex)
    }
}

impl Hash for KeyHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.spread());
    }
}

impl KeyHash {
    /// All 32 bytes folded into one word and mixed (MurmurHash3's finalizer), so that every
    /// bit of the word depends on every byte. The hashes of keys made here are uniform
    /// SHA-256 digests, but imported ones need not be: with eight bytes passed through as
    /// they were, 100,000 hashes sharing their first eight bytes (`0000…` counters, as in
    /// `scripts/bench-cluster`) all fell in one bucket, and validating and compiling the
    /// config went quadratic (12 s instead of 1 s for 100,000 keys).
    fn spread(&self) -> u64 {
        let mut folded = 0u64;
        for (i, word) in self.0.chunks_exact(8).enumerate() {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(word);
            // Rotated by position, so that words swapped or repeated do not cancel out.
            folded ^= u64::from_le_bytes(bytes).rotate_left(i as u32 * 16);
        }
        folded ^= folded >> 33;
        folded = folded.wrapping_mul(0xff51_afd7_ed55_8ccd);
        folded ^= folded >> 33;
        folded = folded.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        folded ^ (folded >> 33)
    }
}

/// Passes a [`KeyHash`]'s mixed word through instead of hashing it again.
#[derive(Debug, Default, Clone, Copy)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached if something other than a KeyHash is hashed: fold the bytes (FNV-1a).
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// One API key as the request path needs it.
#[derive(Debug)]
pub struct KeyEntry {
    pub consumer: Arc<Consumer>,
    /// Unix seconds; `None`: never expires.
    pub expires: Option<u64>,
    pub revoked: bool,
    /// When the key was last used (unix seconds; 0: never, as far as the store knows),
    /// written by [`crate::key_usage::touch`]. Held here rather than in a table by key id,
    /// which would cost as much again per key; [`Directory::carry_last_used`] hands it on
    /// from one revision's directory to the next. 32 bits (enough until 2106) keep an
    /// entry of the index at 64 bytes with its hash, where 64 bits made it 72 (1 MB more
    /// per 100,000 keys, twice while a reload holds two directories).
    pub last_used: AtomicU32,
}

impl KeyEntry {
    /// When the key was last used (unix seconds), if it ever was (as far as the store knows:
    /// saved times come back at start, [`Directory::restore_key_uses`]).
    pub fn last_use(&self) -> Option<u64> {
        let secs = self.last_used.load(Ordering::Relaxed);
        (secs != 0).then_some(u64::from(secs))
    }
}

/// A consumer with its groups and its compiled plan.
#[derive(Debug)]
pub struct Consumer {
    id: String,
    groups: Vec<String>,
    plan: Option<String>,
    rate: Option<PlanRate>,
    quota: Option<Quota>,
}

impl Consumer {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    pub fn plan(&self) -> Option<&str> {
        self.plan.as_deref()
    }

    /// Whether `name` is this consumer's id or one of its groups.
    pub fn is_named(&self, name: &str) -> bool {
        self.id == name || self.groups.iter().any(|g| g == name)
    }

    /// The plan's rate limit, if any.
    pub fn plan_rate(&self) -> Option<&PlanRate> {
        self.rate.as_ref()
    }

    /// The plan's quota, if any.
    pub fn quota(&self) -> Option<&Quota> {
        self.quota.as_ref()
    }

    /// Counts one request against the plan's rate limit, then its quota. A request refused by
    /// the rate limit does not use quota. `Ok` holds the figures of each limit counted.
    pub fn check_plan(&self, now: Duration) -> Result<[Option<RateLimitStatus>; 2], Rejection> {
        let rate = match &self.rate {
            Some(r) => Some(r.check(crate::clock::duration_nanos(now))?),
            None => None,
        };
        let quota = match &self.quota {
            Some(q) => Some(q.check(now)?),
            None => None,
        };
        Ok([rate, quota])
    }
}

/// Everything that identifies callers, for one config revision.
#[derive(Debug, Default)]
pub struct Directory {
    keys: HashMap<KeyHash, KeyEntry, BuildHasherDefault<DigestHasher>>,
    consumers: HashMap<String, Arc<Consumer>>,
    credentials: HashMap<String, Credential>,
    issuers: Vec<JwtIssuer>,
}

impl Directory {
    /// An empty directory: every credential is unknown.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Compiles the identity part of a config. Plan limiters and quota counters come from
    /// `counters`, so their state carries over from the previous revision. `Err` lists every
    /// problem, with paths like `keys[k1].consumer` or `jwt_issuers[auth0].keys[0].pem`.
    /// Cost: one argon2 hash parse per credential, one key parse per JWT key.
    pub fn compile(
        consumers: &[ConsumerSpec],
        plans: &[PlanSpec],
        keys: &[KeyRecord],
        credentials: &[CredentialRecord],
        jwt_issuers: &[JwtIssuerSpec],
        counters: &Counters,
    ) -> Result<Self, Vec<Problem>> {
        let mut p = Problems::new();
        let plans: HashMap<&str, &PlanSpec> = plans.iter().map(|pl| (pl.id.as_str(), pl)).collect();
        let mut dir = Self::empty();
        // Sized up front: growing would rehash into a table twice the size while the old
        // one still lives (9 MB for 100,000 keys).
        dir.keys.reserve(keys.len());
        dir.consumers.reserve(consumers.len());
        // Paths are formatted only for problems: not once per key on every reload.
        let consumer_path = |c: &ConsumerSpec| format!("consumers[{}]", c.id);
        for c in consumers {
            let problems = c.validate();
            if !problems.is_empty() {
                p.extend_under(&consumer_path(c), problems);
            }
            let plan = match c.plan.as_deref() {
                Some(id) => match plans.get(id) {
                    Some(plan) => Some(*plan),
                    None => {
                        p.push(
                            format!("{}.plan", consumer_path(c)),
                            format!("unknown plan {id}"),
                        );
                        None
                    }
                },
                None => None,
            };
            let consumer = Consumer {
                id: c.id.clone(),
                groups: c.groups.clone(),
                plan: plan.map(|pl| pl.id.clone()),
                rate: plan
                    .and_then(|pl| pl.rate_limit.as_ref())
                    .map(|r| counters.limiters.plan_rate(&c.id, r)),
                quota: plan
                    .and_then(|pl| pl.quota.as_ref())
                    .map(|q| counters.quotas.compile(&c.id, q)),
            };
            if dir
                .consumers
                .insert(c.id.clone(), Arc::new(consumer))
                .is_some()
            {
                p.push(consumer_path(c), "duplicate consumer id");
            }
        }
        for k in keys {
            let hash = k.hash;
            let Some(consumer) = dir.consumers.get(&k.consumer) else {
                p.push(
                    format!("keys[{}].consumer", k.id),
                    format!("unknown consumer {}", k.consumer),
                );
                continue;
            };
            let entry = KeyEntry {
                consumer: Arc::clone(consumer),
                expires: k.expires,
                revoked: k.revoked,
                last_used: AtomicU32::new(0),
            };
            if dir.keys.insert(hash, entry).is_some() {
                p.push(format!("keys[{}].hash", k.id), "duplicate key hash");
            }
        }
        for c in credentials {
            let path = format!("credentials[{}]", c.username);
            let Some(consumer) = dir.consumers.get(&c.consumer) else {
                p.push(
                    format!("{path}.consumer"),
                    format!("unknown consumer {}", c.consumer),
                );
                continue;
            };
            match Credential::compile(Arc::clone(consumer), &c.password_hash) {
                Ok(cred) => {
                    if dir.credentials.insert(c.username.clone(), cred).is_some() {
                        p.push(format!("{path}.username"), "duplicate username");
                    }
                }
                Err(problem) => p.extend_under(&path, [problem]),
            }
        }
        for spec in jwt_issuers {
            let path = format!("jwt_issuers[{}]", spec.id);
            let structural = spec.validate();
            if !structural.is_empty() {
                p.extend_under(&path, structural);
                continue;
            }
            match JwtIssuer::compile(spec) {
                Ok(issuer) => dir.issuers.push(issuer),
                Err(problems) => p.extend_under(&path, problems),
            }
        }
        if p.is_empty() {
            Ok(dir)
        } else {
            Err(p.into_vec())
        }
    }

    /// The key whose sha256 digest is `hash`.
    pub fn key(&self, hash: &KeyHash) -> Option<&KeyEntry> {
        self.keys.get(hash)
    }

    /// Takes over the last-use times of `previous`, the directory this one replaces, for
    /// the keys both hold (keeping the later time of the two; deleted keys' times go with
    /// `previous`). Call it before swapping this one in, and once more after, for the uses
    /// `previous` recorded in between. Cost: one probe per key used since the start.
    pub fn carry_last_used(&self, previous: &Directory) {
        for (hash, old) in &previous.keys {
            let secs = old.last_used.load(Ordering::Relaxed);
            if secs != 0 {
                if let Some(new) = self.keys.get(hash) {
                    new.last_used.fetch_max(secs, Ordering::Relaxed);
                }
            }
        }
    }

    /// The keys used at or after `since` (unix seconds), with when: what a save of
    /// last-use times writes. One pass over the keys.
    pub fn key_uses_since(&self, since: u64) -> Vec<(KeyHash, u64)> {
        self.keys
            .iter()
            .filter_map(|(hash, entry)| {
                let secs = entry.last_use()?;
                (secs >= since).then_some((*hash, secs))
            })
            .collect()
    }

    /// Takes the last-use times an earlier process saved (a later time recorded since
    /// wins). Returns the hashes among `uses` of keys this directory does not hold.
    pub fn restore_key_uses(&self, uses: &[(KeyHash, u64)]) -> Vec<KeyHash> {
        let mut unknown = Vec::new();
        for (hash, secs) in uses {
            match self.keys.get(hash) {
                Some(entry) => {
                    let secs = u32::try_from(*secs).unwrap_or(u32::MAX);
                    entry.last_used.fetch_max(secs, Ordering::Relaxed);
                }
                None => unknown.push(*hash),
            }
        }
        unknown
    }

    pub fn consumer(&self, id: &str) -> Option<&Arc<Consumer>> {
        self.consumers.get(id)
    }

    pub fn credential(&self, username: &str) -> Option<&Credential> {
        self.credentials.get(username)
    }

    pub fn issuers(&self) -> &[JwtIssuer] {
        &self.issuers
    }

    pub fn key_count(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests;
