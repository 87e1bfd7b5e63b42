//! JWTs for the attack list, minted with the RSA key pair in `policies/tests/fixtures`.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

pub const PRIVATE_PEM: &str = include_str!("../../../policies/tests/fixtures/rsa_private.pem");
pub const PUBLIC_PEM: &str = include_str!("../../../policies/tests/fixtures/rsa_public.pem");
pub const ISSUER: &str = "https://issuer.test/";
pub const AUDIENCE: &str = "orders";
pub const KID: &str = "k1";

/// The issuer object for `POST /api/v1/jwt-issuers`: RS256 only, one key with kid `k1`.
pub fn issuer_spec() -> Value {
    json!({
        "id": "test-issuer",
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "algorithms": ["RS256"],
        "keys": [{"kid": KID, "pem": PUBLIC_PEM}],
    })
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Valid claims for consumer `sub`, editable before signing.
pub fn claims(sub: &str) -> Value {
    let now = now();
    json!({"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "nbf": now - 5, "exp": now + 600})
}

/// `claims` signed RS256 with the fixture key, header kid `kid`.
pub fn rs256(claims: &Value, kid: &str) -> Result<String> {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    Ok(encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(PRIVATE_PEM.as_bytes())?,
    )?)
}

/// The key-confusion attack: HS256 with the issuer's RSA *public* key as the HMAC secret.
pub fn hs256_with_public_key(claims: &Value) -> Result<String> {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(KID.to_owned());
    Ok(encode(
        &header,
        claims,
        &EncodingKey::from_secret(PUBLIC_PEM.as_bytes()),
    )?)
}

/// An unsigned token (`alg: none`, empty signature).
pub fn alg_none(claims: &Value) -> String {
    let header = json!({"alg": "none", "typ": "JWT", "kid": KID});
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// `token` with one character of its signature changed.
pub fn altered_signature(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let i = bytes.len() - 5;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `claims` signed RS256 with the fixture key, under a header naming a critical extension
/// (RFC 7515 4.1.11: a verifier that does not understand it must refuse the token).
pub fn rs256_with_crit(claims: &Value) -> Result<String> {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": KID, "crit": ["exp"], "exp": 0});
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_rsa_pem(PRIVATE_PEM.as_bytes())?,
        Algorithm::RS256,
    )?;
    Ok(format!("{message}.{signature}"))
}

/// Every forged or invalid token, named: none of them may reach the upstream.
pub fn attacks(sub: &str) -> Result<Vec<(&'static str, String)>> {
    let valid = claims(sub);
    let with = |field: &str, value: Value| {
        let mut c = valid.clone();
        c[field] = value;
        c
    };
    let now = now();
    Ok(vec![
        ("alg none", alg_none(&valid)),
        (
            "HS256 signed with the RSA public key",
            hs256_with_public_key(&valid)?,
        ),
        ("altered signature", altered_signature(&rs256(&valid, KID)?)),
        ("unknown kid", rs256(&valid, "not-a-kid")?),
        ("expired", rs256(&with("exp", json!(now - 3600)), KID)?),
        // `exp` is the first second the token is invalid (RFC 7519 4.1.4); the issuer
        // allows the default 30 s of leeway, so it is expired from `exp + 30` on.
        (
            "expired by exactly the leeway",
            rs256(&with("exp", json!(now - 30)), KID)?,
        ),
        ("critical header extension", rs256_with_crit(&valid)?),
        (
            "not yet valid",
            rs256(&with("nbf", json!(now + 3600)), KID)?,
        ),
        (
            "wrong iss",
            rs256(&with("iss", json!("https://evil.test/")), KID)?,
        ),
        ("wrong aud", rs256(&with("aud", json!("billing")), KID)?),
    ])
}
