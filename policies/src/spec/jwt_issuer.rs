//! What a person writes for a JWT issuer: its claims, pinned algorithms and keys (a PEM
//! public key, an HMAC secret or a JWKS document), and their validation.

use serde::{Deserialize, Serialize};

use crate::problem::{check_id, Problem, Problems};

/// A JWT issuer and the keys its tokens are verified with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtIssuerSpec {
    pub id: String,
    /// Expected `iss` claim.
    pub issuer: String,
    /// Accepted `aud` values; empty: `aud` is not checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// Allowed `alg` values (HS256/384/512, RS256/384/512, PS256/384/512, ES256/384, EdDSA).
    pub algorithms: Vec<String>,
    pub keys: Vec<JwtKeySpec>,
    /// Claim that names the consumer. Default [`DEFAULT_CONSUMER_CLAIM`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_claim: Option<String>,
    /// Seconds of clock skew allowed on exp/nbf. Default [`DEFAULT_LEEWAY_SECS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leeway_secs: Option<u64>,
}

pub const DEFAULT_CONSUMER_CLAIM: &str = "sub";
pub const DEFAULT_LEEWAY_SECS: u64 = 30;

/// One verification key: a PEM public key, an HMAC secret, or a JWKS document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtKeySpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
}

pub const JWT_ALGORITHMS: &[&str] = &[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "EdDSA",
];

impl JwtIssuerSpec {
    /// Every problem with the issuer: structure first, then (when the structure is sound)
    /// whether each key parses for the issuer's algorithms (PEM public keys, HMAC secrets,
    /// JWKS documents).
    pub fn validate(&self) -> Vec<Problem> {
        let mut p = Problems::new();
        check_id(&mut p, "id", &self.id);
        if self.issuer.is_empty() {
            p.push("issuer", "must not be empty");
        }
        if self.algorithms.is_empty() {
            p.push("algorithms", "must name at least one algorithm");
        }
        for (i, a) in self.algorithms.iter().enumerate() {
            if !JWT_ALGORITHMS.contains(&a.as_str()) {
                p.push(
                    format!("algorithms[{i}]"),
                    format!(
                        "unknown algorithm, expected one of {}",
                        JWT_ALGORITHMS.join(", ")
                    ),
                );
            }
        }
        if self.keys.is_empty() {
            p.push("keys", "must hold at least one key");
        }
        for (i, k) in self.keys.iter().enumerate() {
            let set = [k.pem.is_some(), k.secret.is_some(), k.jwks.is_some()]
                .iter()
                .filter(|b| **b)
                .count();
            if set != 1 {
                p.push(
                    format!("keys[{i}]"),
                    "must have exactly one of pem, secret, jwks",
                );
            }
            if k.secret.as_deref().is_some_and(|s| s.len() < 16) {
                p.push(format!("keys[{i}].secret"), "must be at least 16 bytes");
            }
        }
        if self.consumer_claim.as_deref().is_some_and(str::is_empty) {
            p.push("consumer_claim", "must not be empty");
        }
        if p.is_empty() {
            // Every key must parse for the issuer's algorithms, so the store refuses a bad
            // key before writing it.
            if let Err(problems) = crate::jwt::JwtIssuer::compile(self) {
                p.extend_under("", problems);
            }
        }
        p.into_vec()
    }
}
