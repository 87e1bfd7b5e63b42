//! `jwt`: `Authorization: Bearer` tokens from configured issuers. Algorithms are pinned per
//! issuer and per key family (an HS256 token is never checked with an RSA public key); the
//! key is chosen by `kid`; `iss` and `aud` are checked by jsonwebtoken; `exp` and `nbf` are
//! checked here against the injected clock, with the issuer's leeway.

use std::str::FromStr;

use base64::Engine;
use http::{HeaderValue, StatusCode};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::directory::Directory;
use crate::key_auth::identify;
use crate::problem::{Problem, Problems};
use crate::request::{RequestState, RequestView};
use crate::spec::{JwtIssuerSpec, DEFAULT_CONSUMER_CLAIM, DEFAULT_LEEWAY_SECS};
use crate::verdict::{Rejection, Verdict};

pub use crate::spec::{JwtKeySpec, JwtSpec, DEFAULT_HIDE_TOKEN};

const KIND: &str = "jwt";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Hmac,
    Rsa,
    Ec,
    Ed,
}

fn family(alg: Algorithm) -> Family {
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Family::Hmac,
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => Family::Rsa,
        Algorithm::ES256 | Algorithm::ES384 => Family::Ec,
        Algorithm::EdDSA => Family::Ed,
    }
}

/// One verification key with the algorithms it may verify.
struct JwtKey {
    kid: Option<String>,
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

/// A compiled JWT issuer.
#[derive(Debug)]
pub struct JwtIssuer {
    id: String,
    issuer: String,
    keys: Vec<JwtKey>,
    consumer_claim: String,
    leeway: u64,
}

impl JwtIssuer {
    /// Parses every key for the issuer's algorithms. `Err` names each key that does not parse
    /// or that no allowed algorithm can use (`keys[0].pem`, `keys[1].jwks.keys[2]`).
    pub fn compile(spec: &JwtIssuerSpec) -> Result<Self, Vec<Problem>> {
        let mut p = Problems::new();
        let algorithms: Vec<Algorithm> = spec
            .algorithms
            .iter()
            .filter_map(|a| Algorithm::from_str(a).ok())
            .collect();
        if algorithms.is_empty() {
            p.push("algorithms", "must name at least one known algorithm");
        }
        let base = {
            let mut v = Validation::new(algorithms.first().copied().unwrap_or_default());
            v.validate_exp = false;
            v.validate_nbf = false;
            v.leeway = 0;
            v.set_issuer(&[&spec.issuer]);
            if spec.audiences.is_empty() {
                v.validate_aud = false;
                v.set_required_spec_claims(&["iss"]);
            } else {
                v.set_audience(&spec.audiences);
                v.set_required_spec_claims(&["iss", "aud"]);
            }
            v
        };
        let for_family = |fam: Family| -> Vec<Algorithm> {
            algorithms
                .iter()
                .copied()
                .filter(|a| family(*a) == fam)
                .collect()
        };
        let mut keys = Vec::new();
        let mut push_key = |kid: Option<String>, key: DecodingKey, algs: Vec<Algorithm>| {
            let mut validation = base.clone();
            validation.algorithms = algs;
            keys.push(JwtKey {
                kid,
                key,
                validation,
            });
        };
        for (i, k) in spec.keys.iter().enumerate() {
            if let Some(secret) = &k.secret {
                let algs = for_family(Family::Hmac);
                if algs.is_empty() {
                    p.push(
                        format!("keys[{i}].secret"),
                        "a secret needs an HS256/384/512 algorithm",
                    );
                } else {
                    push_key(
                        k.kid.clone(),
                        DecodingKey::from_secret(secret.as_bytes()),
                        algs,
                    );
                }
            } else if let Some(pem) = &k.pem {
                if pem.contains("PRIVATE KEY") {
                    p.push(
                        format!("keys[{i}].pem"),
                        "must be a public key, not a private key",
                    );
                    continue;
                }
                let parsed = [Family::Rsa, Family::Ec, Family::Ed]
                    .into_iter()
                    .filter(|f| !for_family(*f).is_empty())
                    .find_map(|f| {
                        let key = match f {
                            Family::Rsa => DecodingKey::from_rsa_pem(pem.as_bytes()),
                            Family::Ec => DecodingKey::from_ec_pem(pem.as_bytes()),
                            _ => DecodingKey::from_ed_pem(pem.as_bytes()),
                        };
                        key.ok().map(|key| (key, for_family(f)))
                    });
                match parsed {
                    Some((key, algs)) => push_key(k.kid.clone(), key, algs),
                    None => p.push(
                        format!("keys[{i}].pem"),
                        format!("not a PEM public key for {}", spec.algorithms.join(", ")),
                    ),
                }
            } else if let Some(jwks) = &k.jwks {
                let set: JwkSet = match serde_json::from_value(jwks.clone()) {
                    Ok(set) => set,
                    Err(e) => {
                        p.push(
                            format!("keys[{i}].jwks"),
                            format!("not a JWKS document: {e}"),
                        );
                        continue;
                    }
                };
                let mut usable = 0;
                for (j, jwk) in set.keys.iter().enumerate() {
                    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                        continue;
                    }
                    let fam = match &jwk.algorithm {
                        AlgorithmParameters::RSA(_) => Family::Rsa,
                        AlgorithmParameters::EllipticCurve(_) => Family::Ec,
                        AlgorithmParameters::OctetKeyPair(_) => Family::Ed,
                        AlgorithmParameters::OctetKey(_) => Family::Hmac,
                    };
                    let pinned = jwk
                        .common
                        .key_algorithm
                        .and_then(|a| a.to_string().parse().ok());
                    let algs: Vec<Algorithm> = for_family(fam)
                        .into_iter()
                        .filter(|a| pinned.is_none_or(|pin: Algorithm| pin == *a))
                        .collect();
                    if algs.is_empty() {
                        continue;
                    }
                    // The same floor as a `secret`: a short HMAC key is guessed offline
                    // from one token.
                    if let AlgorithmParameters::OctetKey(oct) = &jwk.algorithm {
                        if hmac_jwk_len(&oct.value) < MIN_HMAC_KEY_BYTES {
                            p.push(
                                format!("keys[{i}].jwks.keys[{j}].k"),
                                format!("must be at least {MIN_HMAC_KEY_BYTES} bytes"),
                            );
                            continue;
                        }
                    }
                    match DecodingKey::from_jwk(jwk) {
                        Ok(key) => {
                            usable += 1;
                            push_key(
                                jwk.common.key_id.clone().or_else(|| k.kid.clone()),
                                key,
                                algs,
                            );
                        }
                        Err(e) => p.push(
                            format!("keys[{i}].jwks.keys[{j}]"),
                            format!("invalid key: {e}"),
                        ),
                    }
                }
                if usable == 0 {
                    p.push(
                        format!("keys[{i}].jwks"),
                        format!("holds no key usable with {}", spec.algorithms.join(", ")),
                    );
                }
            }
        }
        if !p.is_empty() {
            return Err(p.into_vec());
        }
        Ok(Self {
            id: spec.id.clone(),
            issuer: spec.issuer.clone(),
            keys,
            consumer_claim: spec
                .consumer_claim
                .clone()
                .unwrap_or_else(|| DEFAULT_CONSUMER_CLAIM.to_owned()),
            leeway: spec.leeway_secs.unwrap_or(DEFAULT_LEEWAY_SECS),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key for a token's `kid`: that kid's key; with no kid, the only key.
    fn key(&self, kid: Option<&str>) -> Result<&JwtKey, &'static str> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .ok_or("unknown key id"),
            None if self.keys.len() == 1 => Ok(&self.keys[0]),
            None => Err("token has no key id"),
        }
    }
}

/// Unix seconds in a claim (JSON number; fractions are cut).
fn numeric_claim(claims: &serde_json::Value, name: &str) -> Option<Result<u64, ()>> {
    claims.get(name).map(|v| {
        v.as_u64()
            .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .ok_or(())
    })
}

#[derive(Deserialize)]
struct Peek {
    iss: Option<String>,
}

/// Whether a JOSE header has a `crit` member, whatever its value (`null` included).
#[derive(Default)]
struct Crit(bool);

impl<'de> Deserialize<'de> for Crit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Crit(true))
    }
}

#[derive(Deserialize)]
struct HeaderPeek {
    #[serde(default)]
    crit: Crit,
}

/// Whether the token's header (already parsed once by jsonwebtoken, which ignores `crit`)
/// names critical extensions. A header that does not decode counts as having them.
fn has_crit(token: &str) -> bool {
    token
        .split('.')
        .next()
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|h| serde_json::from_slice::<HeaderPeek>(&h).ok())
        .is_none_or(|h| h.crit.0)
}

/// A compiled `jwt` policy.
#[derive(Debug, Clone)]
pub struct JwtAuth {
    /// Issuer ids; empty: every issuer.
    issuers: Vec<String>,
    /// Remove `Authorization` before the upstream (`hide_credentials`).
    hide: bool,
}

fn reject(message: &'static str) -> Verdict {
    let mut r = Rejection::new(StatusCode::UNAUTHORIZED, KIND, message);
    r.headers.push((
        http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer"),
    ));
    Verdict::Respond(r)
}

impl JwtAuth {
    pub fn compile(spec: &JwtSpec) -> Result<Self, Vec<Problem>> {
        Ok(Self {
            issuers: spec.issuers.clone(),
            hide: spec.hide_credentials.unwrap_or(DEFAULT_HIDE_TOKEN),
        })
    }

    /// Whether `Authorization` is removed before the upstream.
    pub fn hides_credentials(&self) -> bool {
        self.hide
    }

    /// Verifies the bearer token and identifies the consumer named by the issuer's consumer
    /// claim. Every failure is a 401 with `WWW-Authenticate: Bearer`, but a repeated
    /// `Authorization` (400: which one counts would be a guess).
    ///
    /// Time: a token is expired from its `exp` on (RFC 7519 4.1.4: "on or after which" it
    /// must not be accepted), so it is refused when `now >= exp + leeway`; it is valid from
    /// `nbf` on, so refused when `now + leeway < nbf`. A token whose header names any
    /// `crit` extension is refused: RFC 7515 4.1.11 requires refusing extensions not
    /// understood, and none is.
    pub fn on_request(
        &self,
        view: &RequestView<'_>,
        state: &mut RequestState,
        directory: &Directory,
        now_secs: u64,
    ) -> Verdict {
        let Ok(authorization) = view.single_header(&http::header::AUTHORIZATION) else {
            let mut r = Rejection::bad_request(KIND, "repeated authorization header");
            r.headers.push((
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            ));
            return Verdict::Respond(r);
        };
        let Some(token) = authorization
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty())
        else {
            return reject("missing bearer token");
        };
        // The unverified `iss` only picks the issuer whose keys then verify the token.
        let iss = token
            .split('.')
            .nth(1)
            .and_then(|p| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .ok()
            })
            .and_then(|p| serde_json::from_slice::<Peek>(&p).ok())
            .and_then(|p| p.iss);
        let Some(iss) = iss else {
            return reject("invalid token");
        };
        let Some(issuer) = directory
            .issuers()
            .iter()
            .find(|i| i.issuer == iss && (self.issuers.is_empty() || self.issuers.contains(&i.id)))
        else {
            return reject("unknown token issuer");
        };
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return reject("invalid token");
        };
        if has_crit(token) {
            return reject("token has critical extensions");
        }
        let key = match issuer.key(header.kid.as_deref()) {
            Ok(key) => key,
            Err(message) => return reject(message),
        };
        let claims =
            match jsonwebtoken::decode::<serde_json::Value>(token, &key.key, &key.validation) {
                Ok(data) => data.claims,
                Err(e) => {
                    return reject(match e.kind() {
                        ErrorKind::InvalidSignature => "invalid token signature",
                        ErrorKind::InvalidAlgorithm => "token algorithm not allowed",
                        ErrorKind::InvalidIssuer => "invalid token issuer",
                        ErrorKind::InvalidAudience | ErrorKind::MissingRequiredClaim(_) => {
                            "invalid token audience"
                        }
                        _ => "invalid token",
                    })
                }
            };
        match numeric_claim(&claims, "exp") {
            None | Some(Err(())) => return reject("token has no valid exp"),
            Some(Ok(exp)) if exp.saturating_add(issuer.leeway) <= now_secs => {
                return reject("token expired")
            }
            Some(Ok(_)) => {}
        }
        match numeric_claim(&claims, "nbf") {
            Some(Err(())) => return reject("invalid token"),
            Some(Ok(nbf)) if now_secs.saturating_add(issuer.leeway) < nbf => {
                return reject("token not yet valid")
            }
            _ => {}
        }
        let Some(consumer) = claims
            .get(&issuer.consumer_claim)
            .and_then(|c| c.as_str())
            .and_then(|id| directory.consumer(id))
        else {
            return reject("unknown consumer");
        };
        identify(state, consumer, KIND)
    }
}

/// The shortest HMAC key accepted, as a `secret` or a JWKS `oct` key.
const MIN_HMAC_KEY_BYTES: usize = 16;

/// The length of a JWK `k` (base64url, with or without padding); 0 when it does not decode.
fn hmac_jwk_len(k: &str) -> usize {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(k.trim_end_matches('='))
        .map_or(0, |bytes| bytes.len())
}

#[cfg(test)]
#[path = "jwt/tests.rs"]
mod tests;
