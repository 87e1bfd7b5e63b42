//! The config's secrets: certificates' private keys and JWT issuers' HMAC secrets (a key's
//! `secret`, or an inline JWKS key's `k`, and a JWK's private parts). What the admin API
//! and the console show has them hidden (a certificate without `key`, a JWT key with
//! `secret: ""`, a JWK with `"k": ""`); a change that leaves one hidden keeps the stored
//! value, so a shown object or config can be edited and put back.

use policies::JwtIssuerSpec;
use serde_json::{Map, Value};

use crate::spec::{CertificateSpec, Config};

/// `config` as shown to admins: no private key, every HMAC secret `""`.
pub fn without_secrets(config: &Config) -> Config {
    let mut config = config.clone();
    config
        .certificates
        .iter_mut()
        .for_each(hide_certificate_key);
    config.jwt_issuers.iter_mut().for_each(hide_issuer_secrets);
    config
}

/// Removes the private key (it is then not serialized).
pub fn hide_certificate_key(cert: &mut CertificateSpec) {
    cert.key.clear();
}

/// Members of a JWK that are secret: an `oct` key's `k`, a private key's parts.
pub(crate) const SECRET_JWK_MEMBERS: [&str; 8] = ["k", "d", "p", "q", "dp", "dq", "qi", "oth"];

/// Turns every HMAC secret (and every secret member of an inline JWKS key) into `""`: the
/// key still says it is a secret one.
pub fn hide_issuer_secrets(issuer: &mut JwtIssuerSpec) {
    for key in &mut issuer.keys {
        if let Some(secret) = &mut key.secret {
            secret.clear();
        }
        for jwk in key.jwks.iter_mut().flat_map(jwks_keys_mut) {
            for member in SECRET_JWK_MEMBERS {
                if let Some(value) = jwk.get_mut(member) {
                    *value = Value::String(String::new());
                }
            }
        }
    }
}

/// The keys (objects) of an inline JWKS document `{"keys": [...]}`.
pub(crate) fn jwks_keys(jwks: &Value) -> impl Iterator<Item = &Map<String, Value>> {
    jwks.get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

fn jwks_keys_mut(jwks: &mut Value) -> impl Iterator<Item = &mut Map<String, Value>> {
    jwks.get_mut("keys")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// Whether `member` of `jwk` is there and hidden (`""`).
pub(crate) fn is_hidden(jwk: &Map<String, Value>, member: &str) -> bool {
    jwk.get(member).and_then(Value::as_str) == Some("")
}

/// Fills what `config` leaves hidden from `current`, the stored config: a certificate
/// without `key` takes the key of the stored certificate with its id; a JWT key with
/// `secret: ""` takes the secret of the stored issuer with its id, when exactly one of that
/// issuer's HMAC keys has the same `kid` (or, like it, none): with two, which one the
/// hidden key stands for is unknown (dropping one of two `secret: ""` must not keep the
/// dropped secret). What has no single stored counterpart stays empty, and validation
/// refuses it: the secret must be given again.
pub(crate) fn keep_hidden(config: &mut Config, current: &Config) {
    for cert in config.certificates.iter_mut().filter(|c| c.key.is_empty()) {
        if let Some(stored) = current.certificates.iter().find(|c| c.id == cert.id) {
            cert.key.clone_from(&stored.key);
        }
    }
    for issuer in &mut config.jwt_issuers {
        let Some(stored) = current.jwt_issuers.iter().find(|i| i.id == issuer.id) else {
            continue;
        };
        for key in &mut issuer.keys {
            if key.secret.as_deref() != Some("") {
                continue;
            }
            let mut counterparts = stored
                .keys
                .iter()
                .filter(|k| k.kid == key.kid)
                .filter_map(|k| k.secret.as_ref());
            if let (Some(secret), None) = (counterparts.next(), counterparts.next()) {
                key.secret = Some(secret.clone());
            }
        }
        // A JWK's hidden members come from the only stored JWK of the issuer with its
        // `kid` (or, like it, none) and `kty`.
        for jwk in issuer.keys.iter_mut().flat_map(|k| k.jwks.iter_mut()) {
            for jwk in jwks_keys_mut(jwk) {
                if !SECRET_JWK_MEMBERS.iter().any(|m| is_hidden(jwk, m)) {
                    continue;
                }
                let mut counterparts = stored
                    .keys
                    .iter()
                    .filter_map(|k| k.jwks.as_ref())
                    .flat_map(jwks_keys)
                    .filter(|s| s.get("kid") == jwk.get("kid") && s.get("kty") == jwk.get("kty"));
                let (Some(counterpart), None) = (counterparts.next(), counterparts.next()) else {
                    continue;
                };
                for member in SECRET_JWK_MEMBERS {
                    if let (true, Some(value)) = (is_hidden(jwk, member), counterpart.get(member)) {
                        jwk.insert(member.to_owned(), value.clone());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use policies::JwtKeySpec;

    use super::*;

    // Built from JSON, so fields the specs gain later need no change here.
    fn secret_key(kid: Option<&str>, secret: &str) -> JwtKeySpec {
        let mut key = serde_json::json!({ "secret": secret });
        if let Some(kid) = kid {
            key["kid"] = kid.into();
        }
        serde_json::from_value(key).expect("a valid key spec")
    }

    fn issuer(id: &str, keys: Vec<JwtKeySpec>) -> JwtIssuerSpec {
        serde_json::from_value(serde_json::json!({
            "id": id,
            "issuer": "https://idp.example",
            "algorithms": ["HS256"],
            "keys": keys,
        }))
        .expect("a valid issuer spec")
    }

    fn stored() -> Config {
        Config {
            jwt_issuers: vec![issuer(
                "idp",
                vec![
                    secret_key(Some("a"), "secret-a-0123456789"),
                    secret_key(None, "secret-pos1-0123456"),
                ],
            )],
            certificates: vec![CertificateSpec {
                id: "site".to_owned(),
                snis: vec!["example.com".to_owned()],
                cert: "CERT".to_owned(),
                key: "PRIVATE".to_owned(),
            }],
            ..Config::default()
        }
    }

    #[test]
    fn shown_config_has_no_private_key_and_empty_hmac_secrets() {
        let shown = without_secrets(&stored());
        assert_eq!(shown.certificates[0].key, "");
        let secrets: Vec<_> = shown.jwt_issuers[0]
            .keys
            .iter()
            .map(|k| k.secret.as_deref())
            .collect();
        assert_eq!(secrets, [Some(""), Some("")]);
        let text = serde_json::to_string(&shown).unwrap_or_default();
        assert!(
            !text.contains("secret-a") && !text.contains("PRIVATE"),
            "{text}"
        );
    }

    #[test]
    fn hidden_secrets_keep_the_stored_ones_by_kid_or_lack_of_one() {
        let current = stored();
        let mut put_back = without_secrets(&current);
        keep_hidden(&mut put_back, &current);
        assert_eq!(put_back, current);
    }

    #[test]
    fn a_new_secret_replaces_the_stored_one_and_unknown_ids_stay_hidden() {
        let current = stored();
        let mut changed = without_secrets(&current);
        changed.jwt_issuers[0].keys[0].secret = Some("a-brand-new-secret-value".to_owned());
        changed
            .jwt_issuers
            .push(issuer("other", vec![secret_key(None, "")]));
        keep_hidden(&mut changed, &current);
        assert_eq!(
            changed.jwt_issuers[0].keys[0].secret.as_deref(),
            Some("a-brand-new-secret-value")
        );
        assert_eq!(changed.jwt_issuers[1].keys[0].secret.as_deref(), Some(""));
    }

    #[test]
    fn a_retired_secret_is_not_kept_for_the_key_left_in_its_place() {
        // The attack (or the accident): an issuer with two HMAC keys is shown as two
        // `secret: ""`; dropping the first (a leaked secret being rotated out) and putting
        // the rest back used to give the one left the dropped key's secret, by position
        // (by `kid` alike when two keys share one): the leaked secret stayed valid and
        // the new one was lost. A hidden secret now keeps only an unambiguous counterpart.
        for kid in [None, Some("same")] {
            let current = Config {
                jwt_issuers: vec![issuer(
                    "idp",
                    vec![
                        secret_key(kid, "leaked-secret-0123456"),
                        secret_key(kid, "fresh-secret-01234567"),
                    ],
                )],
                ..Config::default()
            };
            let mut put_back = without_secrets(&current);
            put_back.jwt_issuers[0].keys.remove(0);
            keep_hidden(&mut put_back, &current);
            assert_ne!(
                put_back.jwt_issuers[0].keys[0].secret.as_deref(),
                Some("leaked-secret-0123456"),
                "kid {kid:?}"
            );
        }
    }

    fn jwks_issuer(id: &str, k: &str) -> JwtIssuerSpec {
        serde_json::from_value(serde_json::json!({
            "id": id,
            "issuer": "https://idp.example",
            "algorithms": ["HS256"],
            "keys": [{"jwks": {"keys": [{"kty": "oct", "kid": "j1", "k": k}]}}],
        }))
        .expect("a valid issuer spec")
    }

    #[test]
    fn an_hmac_secret_in_an_inline_jwks_is_hidden_and_kept() {
        // The attack: an HMAC key can also be given as a JWKS `oct` key, whose `k` is the
        // secret; only `secret` was hidden, so GET /api/v1/jwt-issuers showed it.
        let current = Config {
            jwt_issuers: vec![jwks_issuer("idp", "b2N0LXNlY3JldC0wMTIzNDU2Nzg5")],
            ..Config::default()
        };
        let shown = without_secrets(&current);
        let text = serde_json::to_string(&shown).unwrap_or_default();
        assert!(!text.contains("b2N0LXNlY3JldC0wMTIzNDU2Nzg5"), "{text}");
        let mut put_back = shown;
        keep_hidden(&mut put_back, &current);
        assert_eq!(put_back, current);
    }

    #[test]
    fn a_hidden_jwks_secret_without_a_stored_one_is_refused() {
        // Left empty, `k` would be an empty HMAC key: anyone could sign tokens.
        let config = Config {
            jwt_issuers: vec![jwks_issuer("idp", "")],
            ..Config::default()
        };
        let problems = crate::validate::validate_config(&config);
        assert!(
            problems.iter().any(|p| p.path.ends_with("jwks.keys[0].k")),
            "{problems:?}"
        );
    }
}
