//! Validation of a whole [`Config`]: every problem, each with a path such as
//! `routes[orders].policies[1].burst` (an object is named by its id when the id is valid,
//! else by its index in the list).

mod route;
mod syntax;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::BuildHasherDefault;

use policies::directory::DigestHasher;
use policies::problem::check_id;
use policies::{is_valid_id, Problem, Problems};

use crate::spec::{
    Balancing, CertificateSpec, Config, CredentialRecord, HealthCheckKind, HealthCheckSpec,
    KeyHash, KeyRecord, Protocol, UpstreamSpec,
};
use crate::trees::Entity;

/// Every problem with `config`: each object on its own, duplicate ids, and references
/// between objects (a route's upstream and JWT issuers, a consumer's plan, a key's or a
/// credential's consumer). Empty means the store would accept it. Resolves target host
/// names that are not IP addresses, so it may block on DNS.
pub fn validate_config(config: &Config) -> Vec<Problem> {
    let mut p = Problems::new();
    let names = Names::of(config);
    each(&mut p, &config.upstreams, upstream);
    each(&mut p, &config.routes, |r| route::validate(r, &names));
    each(&mut p, &config.consumers, |c| {
        let mut problems = c.validate();
        if let Some(plan) = &c.plan {
            if is_valid_id(plan) && !names.plans.contains(plan.as_str()) {
                problems.push(Problem::new("plan", format!("unknown plan {plan}")));
            }
        }
        problems
    });
    each(&mut p, &config.plans, |plan| plan.validate());
    each(&mut p, &config.jwt_issuers, |issuer| {
        let mut problems = issuer.validate();
        problems.extend(empty_jwk_secrets(issuer));
        if !problems.is_empty() {
            return problems;
        }
        // Whether each key parses for the issuer's algorithms.
        policies::JwtIssuer::compile(issuer)
            .err()
            .unwrap_or_default()
    });
    each(&mut p, &config.certificates, certificate);
    each(&mut p, &config.keys, |k| key(k, &names));
    each(&mut p, &config.credentials, |c| credential(c, &names));
    unique_key_hashes(&mut p, &config.keys);
    p.into_vec()
}

/// A secret member of an inline JWKS key left `""`: a hidden one with no single stored
/// counterpart (see `secrets.rs`). An empty `k` would be an empty HMAC key.
fn empty_jwk_secrets(issuer: &policies::JwtIssuerSpec) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, key) in issuer.keys.iter().enumerate() {
        let jwks = key.jwks.iter().flat_map(crate::secrets::jwks_keys);
        for (j, jwk) in jwks.enumerate() {
            for member in crate::secrets::SECRET_JWK_MEMBERS {
                if crate::secrets::is_hidden(jwk, member) {
                    problems.push(Problem::new(
                        format!("keys[{i}].jwks.keys[{j}].{member}"),
                        "must not be empty (give the secret again)",
                    ));
                }
            }
        }
    }
    problems
}

/// Where problems of the object at `index` of the list `plural` are reported:
/// `routes[orders]`, or `routes[3]` when the id is not valid.
pub(crate) fn prefix(plural: &str, id: &str, index: usize) -> String {
    if is_valid_id(id) {
        format!("{plural}[{id}]")
    } else {
        format!("{plural}[{index}]")
    }
}

/// The ids other objects may refer to.
pub(crate) struct Names<'a> {
    pub upstreams: BTreeSet<&'a str>,
    pub plans: BTreeSet<&'a str>,
    pub jwt_issuers: BTreeSet<&'a str>,
    pub consumers: BTreeSet<&'a str>,
}

impl<'a> Names<'a> {
    fn of(config: &'a Config) -> Self {
        fn ids<T: Entity>(list: &[T]) -> BTreeSet<&str> {
            list.iter().map(Entity::id).collect()
        }
        Self {
            upstreams: ids(&config.upstreams),
            plans: ids(&config.plans),
            jwt_issuers: ids(&config.jwt_issuers),
            consumers: ids(&config.consumers),
        }
    }
}

/// Validates each object of a list under its prefix, and reports repeated ids.
///
/// The store validates the whole config on every change, so this allocates nothing per
/// object that has no problem: a list sorted by id (as the store keeps every list) has its
/// repeats next to each other and needs no set of ids (which took 3 MB for 100,000 keys),
/// and an object's path is formatted only when there is a problem to report.
fn each<T: Entity>(p: &mut Problems, list: &[T], check: impl Fn(&T) -> Vec<Problem>) {
    let plural = T::KIND.plural();
    let is_sorted = list.windows(2).all(|w| w[0].id() <= w[1].id());
    let mut seen = BTreeSet::new();
    for (i, item) in list.iter().enumerate() {
        let is_repeat = if is_sorted {
            i > 0 && list[i - 1].id() == item.id()
        } else {
            !seen.insert(item.id())
        };
        let problems = check(item);
        if !is_repeat && problems.is_empty() {
            continue;
        }
        let at = prefix(plural, item.id(), i);
        if is_repeat {
            let field = if matches!(T::KIND, crate::Kind::Credential) {
                "username"
            } else {
                "id"
            };
            p.push(
                format!("{at}.{field}"),
                format!("duplicate {} {}", T::KIND, item.id()),
            );
        }
        p.extend_under(&at, problems);
    }
}

fn upstream(u: &UpstreamSpec) -> Vec<Problem> {
    let mut p = Problems::new();
    check_id(&mut p, "id", &u.id);
    if u.targets.is_empty() {
        p.push("targets", "must hold at least one target");
    }
    let mut addrs = BTreeSet::new();
    for (i, t) in u.targets.iter().enumerate() {
        if let Err(why) = syntax::check_addr(&t.addr) {
            p.push(format!("targets[{i}].addr"), why);
        } else if !addrs.insert(t.addr.as_str()) {
            p.push(format!("targets[{i}].addr"), "duplicate target");
        }
        if t.weight == 0 {
            p.push(format!("targets[{i}].weight"), "must be > 0");
        }
    }
    if let Some(hash_on) = &u.hash_on {
        if u.balancing != Balancing::ConsistentHash {
            p.push("hash_on", "only valid with balancing: consistent_hash");
        }
        let ok = match hash_on.as_str() {
            "client_ip" | "path" => true,
            other => other
                .strip_prefix("header:")
                .is_some_and(policies::is_header_name),
        };
        if !ok {
            p.push("hash_on", "must be client_ip, path or header:NAME");
        }
    }
    if let Some(hc) = &u.health_check {
        p.extend_under("health_check", health_check(hc));
    }
    if u.connect_timeout_ms == 0 {
        p.push("connect_timeout_ms", "must be > 0");
    }
    if u.read_timeout_ms == 0 {
        p.push("read_timeout_ms", "must be > 0");
    }
    if u.dns_refresh_secs == 0 {
        p.push("dns_refresh_secs", "must be > 0");
    }
    match u.protocol {
        Protocol::H2 if !u.tls => p.push(
            "protocol",
            "h2 is HTTP/2 over TLS: set tls: true, or use h2c for HTTP/2 without TLS",
        ),
        Protocol::H2c if u.tls => p.push(
            "protocol",
            "h2c is HTTP/2 without TLS: use h2 with tls: true",
        ),
        _ => {}
    }
    if let Some(sni) = &u.sni {
        if !syntax::is_host(sni, false) {
            p.push("sni", "must be a lowercase host name");
        }
    }
    p.into_vec()
}

fn health_check(hc: &HealthCheckSpec) -> Vec<Problem> {
    let mut p = Problems::new();
    if hc.kind == HealthCheckKind::Http {
        if !hc.path.starts_with('/') {
            p.push("path", "must start with /");
        }
        // The path goes into the probe's request line as it is: CR/LF would inject.
        if !hc.path.bytes().all(|b| b.is_ascii_graphic()) {
            p.push(
                "path",
                "must not contain spaces, control or non-ASCII characters (percent-encode them)",
            );
        }
    }
    if hc.interval_ms == 0 {
        p.push("interval_ms", "must be > 0");
    }
    if hc.timeout_ms == 0 {
        p.push("timeout_ms", "must be > 0");
    } else if hc.timeout_ms > hc.interval_ms {
        p.push("timeout_ms", "must be <= interval_ms");
    }
    if hc.healthy_threshold == 0 {
        p.push("healthy_threshold", "must be > 0");
    }
    if hc.unhealthy_threshold == 0 {
        p.push("unhealthy_threshold", "must be > 0");
    }
    for (i, s) in hc.expected_statuses.iter().enumerate() {
        if !(100..=599).contains(s) {
            p.push(format!("expected_statuses[{i}]"), "must be 100 to 599");
        }
    }
    p.into_vec()
}

fn certificate(c: &CertificateSpec) -> Vec<Problem> {
    let mut p = Problems::new();
    check_id(&mut p, "id", &c.id);
    if c.snis.is_empty() {
        p.push("snis", "must name at least one host");
    }
    for (i, sni) in c.snis.iter().enumerate() {
        if !syntax::is_host(sni, true) {
            p.push(
                format!("snis[{i}]"),
                "must be a lowercase host name (or *.domain)",
            );
        }
    }
    if !syntax::is_pem(&c.cert) {
        p.push("cert", "must be PEM (-----BEGIN ... -----END ...)");
    } else if c.cert.contains("PRIVATE KEY-----") {
        // `cert` is shown to every admin; only `key` is hidden.
        p.push(
            "cert",
            "must hold certificates only: the private key goes in key",
        );
    }
    if !syntax::is_pem(&c.key) {
        p.push(
            "key",
            "must be a PEM private key (-----BEGIN ... -----END ...)",
        );
    }
    p.into_vec()
}

fn key(k: &KeyRecord, names: &Names<'_>) -> Vec<Problem> {
    let mut p = Problems::new();
    check_id(&mut p, "id", &k.id);
    consumer_ref(&mut p, &k.consumer, names);
    if k.prefix.is_empty() {
        p.push("prefix", "must not be empty");
    }
    if k.expires.is_some_and(|e| e <= k.created) {
        p.push("expires", "must be after created");
    }
    p.into_vec()
}

fn credential(c: &CredentialRecord, names: &Names<'_>) -> Vec<Problem> {
    let mut p = Problems::new();
    let u = &c.username;
    if u.is_empty() || u.len() > 64 || u.contains(':') || u.chars().any(char::is_control) {
        p.push(
            "username",
            "must be 1 to 64 characters, without ':' or control characters",
        );
    }
    consumer_ref(&mut p, &c.consumer, names);
    if argon2::PasswordHash::new(&c.password_hash).is_err() {
        p.push("password_hash", "must be a PHC string (argon2)");
    }
    p.into_vec()
}

fn consumer_ref(p: &mut Problems, consumer: &str, names: &Names<'_>) {
    if !names.consumers.contains(consumer) {
        p.push("consumer", format!("unknown consumer {consumer}"));
    }
}

/// Two keys with one hash would make the key index ambiguous.
///
/// A set of references to the hashes finds whether any repeats (1.2 MB for 100,000 keys,
/// where a map from hash to id took 6.4 MB); only then is the map built, to name the first
/// key of each repeated hash.
fn unique_key_hashes(p: &mut Problems, keys: &[KeyRecord]) {
    let mut hashes: HashSet<&KeyHash, BuildHasherDefault<DigestHasher>> =
        HashSet::with_capacity_and_hasher(keys.len(), BuildHasherDefault::default());
    if keys.iter().all(|k| hashes.insert(&k.hash)) {
        return;
    }
    drop(hashes);
    let mut first: HashMap<KeyHash, &str> = HashMap::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        if let Some(other) = first.insert(k.hash, &k.id) {
            p.push(
                format!("{}.hash", prefix("keys", &k.id, i)),
                format!("same hash as key {other}"),
            );
        }
    }
}

#[cfg(test)]
mod tests;
