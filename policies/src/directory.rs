//! The identity index, compiled once per config revision: API key hashes, consumers with
//! their groups and compiled plan, basic-auth credentials and JWT issuers. The request path
//! reads it without locks.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::basic_auth::Credential;
use crate::counters::Counters;
use crate::jwt::JwtIssuer;
use crate::problem::{Problem, Problems};
use crate::quota::Quota;
use crate::rate_limit::PlanRate;
use crate::spec::{ConsumerSpec, CredentialRecord, JwtIssuerSpec, KeyRecord, PlanSpec};
use crate::verdict::{RateLimitStatus, Rejection};

/// The raw sha256 digest of an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    /// Hashes a presented key.
    pub fn of(key: &[u8]) -> Self {
        Self(Sha256::digest(key).into())
    }

    /// Parses the hex form stored in [`KeyRecord::hash`].
    pub fn from_hex(hex_digest: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_digest, &mut out).ok()?;
        Some(Self(out))
    }
}

impl Hash for KeyHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The digest is already uniform: eight of its bytes are a good hash.
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(head));
    }
}

/// Passes a [`KeyHash`]'s eight bytes through instead of hashing them again.
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
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub consumer: Arc<Consumer>,
    /// Unix seconds; `None`: never expires.
    pub expires: Option<u64>,
    pub revoked: bool,
    /// When the key was last used (unix seconds), shared with [`crate::Counters`].
    pub last_used: Arc<std::sync::atomic::AtomicU64>,
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
        for c in consumers {
            let path = format!("consumers[{}]", c.id);
            p.extend_under(&path, c.validate());
            let plan = match c.plan.as_deref() {
                Some(id) => match plans.get(id) {
                    Some(plan) => Some(*plan),
                    None => {
                        p.push(format!("{path}.plan"), format!("unknown plan {id}"));
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
                p.push(path, "duplicate consumer id");
            }
        }
        for k in keys {
            let path = format!("keys[{}]", k.id);
            let Some(hash) = KeyHash::from_hex(&k.hash) else {
                p.push(format!("{path}.hash"), "must be 64 hex digits (sha256)");
                continue;
            };
            let Some(consumer) = dir.consumers.get(&k.consumer) else {
                p.push(
                    format!("{path}.consumer"),
                    format!("unknown consumer {}", k.consumer),
                );
                continue;
            };
            let entry = KeyEntry {
                consumer: Arc::clone(consumer),
                expires: k.expires,
                revoked: k.revoked,
                last_used: counters.key_usage.slot(&k.id),
            };
            if dir.keys.insert(hash, entry).is_some() {
                p.push(format!("{path}.hash"), "duplicate key hash");
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
            // Deleted keys' last-use times go with them.
            let ids: std::collections::HashSet<&str> = keys.iter().map(|k| k.id.as_str()).collect();
            counters.key_usage.retain(|id| ids.contains(id));
            Ok(dir)
        } else {
            Err(p.into_vec())
        }
    }

    /// The key whose sha256 digest is `hash`.
    pub fn key(&self, hash: &KeyHash) -> Option<&KeyEntry> {
        self.keys.get(hash)
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
mod tests {
    use super::*;
    use crate::spec::{Per, PlanRateSpec, QuotaPeriod, QuotaSpec};

    fn consumer(id: &str, plan: Option<&str>) -> ConsumerSpec {
        ConsumerSpec {
            id: id.into(),
            plan: plan.map(Into::into),
            groups: vec!["partners".into()],
            metadata: Default::default(),
        }
    }

    fn key(id: &str, consumer: &str, raw: &str) -> KeyRecord {
        KeyRecord {
            id: id.into(),
            consumer: consumer.into(),
            hash: hex::encode(Sha256::digest(raw.as_bytes())),
            prefix: raw.chars().take(7).collect(),
            label: None,
            created: 0,
            expires: None,
            revoked: false,
        }
    }

    #[test]
    fn indexes_keys_by_raw_digest() {
        let counters = Counters::default();
        let dir = Directory::compile(
            &[consumer("acme", None)],
            &[],
            &[key("k1", "acme", "tg_secret")],
            &[],
            &[],
            &counters,
        )
        .expect("valid");
        let entry = dir.key(&KeyHash::of(b"tg_secret")).expect("indexed");
        assert_eq!(entry.consumer.id(), "acme");
        assert!(entry.consumer.is_named("partners"));
        assert!(dir.key(&KeyHash::of(b"tg_other")).is_none());
    }

    #[test]
    fn reports_every_dangling_reference() {
        let mut bad = key("k2", "acme", "x");
        bad.hash = "zz".into();
        let problems = Directory::compile(
            &[consumer("acme", Some("gold"))],
            &[],
            &[key("k1", "ghost", "tg_secret"), bad],
            &[],
            &[],
            &Counters::default(),
        )
        .expect_err("dangling");
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            ["consumers[acme].plan", "keys[k1].consumer", "keys[k2].hash"]
        );
    }

    #[test]
    fn plan_limits_survive_recompile() {
        let counters = Counters::default();
        let plan = PlanSpec {
            id: "gold".into(),
            rate_limit: Some(PlanRateSpec {
                requests: 2,
                per: Per::Minute,
                burst: None,
            }),
            quota: Some(QuotaSpec {
                requests: 100,
                per: QuotaPeriod::Day,
            }),
        };
        let compile = || {
            Directory::compile(
                &[consumer("acme", Some("gold"))],
                std::slice::from_ref(&plan),
                &[],
                &[],
                &[],
                &counters,
            )
            .expect("valid")
        };
        let now = Duration::from_secs(1_800_000_000);
        let first = compile();
        let acme = Arc::clone(first.consumer("acme").expect("acme"));
        assert!(acme.check_plan(now).is_ok());
        let second = compile();
        let acme2 = second.consumer("acme").expect("acme");
        assert!(acme2.check_plan(now).is_ok());
        let r = acme2.check_plan(now).expect_err("third in the minute");
        assert_eq!(r.status, http::StatusCode::TOO_MANY_REQUESTS);
        // The refused request did not use quota: 2 counted.
        assert_eq!(
            counters
                .quotas
                .usage("acme", plan.quota.as_ref().expect("quota"), now)
                .used,
            2
        );
    }
}
