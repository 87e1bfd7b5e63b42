use std::time::Duration;

use base64::Engine;
use http::Method;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

use super::*;
use crate::clock::{Clock, ManualClock};
use crate::counters::Counters;
use crate::spec::JwtKeySpec;
use crate::testing::{consumer, fixture, headers, outcome, view};

const NOW: u64 = 1_800_000_000;
const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn pem_key(kid: Option<&str>, file: &str) -> JwtKeySpec {
    JwtKeySpec {
        kid: kid.map(Into::into),
        pem: Some(fixture(file)),
        secret: None,
        jwks: None,
    }
}

fn issuer(id: &str, iss: &str, algorithms: &[&str], keys: Vec<JwtKeySpec>) -> JwtIssuerSpec {
    JwtIssuerSpec {
        id: id.into(),
        issuer: iss.into(),
        audiences: vec!["orders-api".into()],
        algorithms: algorithms.iter().map(|a| (*a).to_owned()).collect(),
        keys,
        consumer_claim: None,
        leeway_secs: None,
    }
}

fn rsa_jwks() -> serde_json::Value {
    let modulus = hex::decode(fixture("rsa_modulus.hex").trim()).expect("modulus hex");
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(modulus);
    json!({"keys": [{"kty": "RSA", "kid": "jwks1", "use": "sig", "alg": "RS256", "n": n, "e": "AQAB"}]})
}

fn directory() -> Directory {
    let issuers = vec![
        issuer(
            "rsa",
            "https://rsa.example/",
            &["RS256"],
            vec![pem_key(Some("rsa1"), "rsa_public.pem")],
        ),
        issuer(
            "ec",
            "https://ec.example/",
            &["ES256"],
            vec![pem_key(None, "ec_public.pem")],
        ),
        issuer(
            "ed",
            "https://ed.example/",
            &["EdDSA"],
            vec![pem_key(None, "ed25519_public.pem")],
        ),
        issuer(
            "hs",
            "https://hs.example/",
            &["HS256"],
            vec![JwtKeySpec {
                kid: None,
                pem: None,
                secret: Some(SECRET.into()),
                jwks: None,
            }],
        ),
        issuer(
            "two",
            "https://two.example/",
            &["RS256", "HS256"],
            vec![
                pem_key(Some("a"), "rsa_public.pem"),
                JwtKeySpec {
                    kid: Some("b".into()),
                    pem: None,
                    secret: Some(SECRET.into()),
                    jwks: None,
                },
            ],
        ),
        issuer(
            "jwks",
            "https://jwks.example/",
            &["RS256"],
            vec![JwtKeySpec {
                kid: None,
                pem: None,
                secret: None,
                jwks: Some(rsa_jwks()),
            }],
        ),
    ];
    Directory::compile(
        &[consumer("acme", None, &[])],
        &[],
        &[],
        &[],
        &issuers,
        &Counters::default(),
    )
    .expect("valid issuers")
}

fn claims(iss: &str) -> serde_json::Value {
    json!({"iss": iss, "aud": "orders-api", "sub": "acme", "exp": NOW + 300, "nbf": NOW - 10})
}

fn sign(alg: Algorithm, kid: Option<&str>, claims: &serde_json::Value) -> String {
    let key = match family(alg) {
        Family::Hmac => EncodingKey::from_secret(SECRET.as_bytes()),
        Family::Rsa => {
            EncodingKey::from_rsa_pem(fixture("rsa_private.pem").as_bytes()).expect("rsa")
        }
        Family::Ec => EncodingKey::from_ec_pem(fixture("ec_private.pem").as_bytes()).expect("ec"),
        Family::Ed => {
            EncodingKey::from_ed_pem(fixture("ed25519_private.pem").as_bytes()).expect("ed")
        }
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(Into::into);
    encode(&header, claims, &key).expect("sign")
}

/// Runs a `jwt` policy accepting every issuer at the clock's time.
fn check(dir: &Directory, token: &str, clock: &ManualClock) -> (u16, String, Option<String>) {
    let policy = JwtAuth::compile(&JwtSpec::default()).expect("policy");
    let auth = format!("Bearer {token}");
    let h = headers(&[("authorization", &auth)]);
    let v = view(&Method::GET, "/", &h, "192.0.2.1");
    let mut state = RequestState::default();
    let verdict = policy.on_request(&v, &mut state, dir, clock.now().as_secs());
    let (status, message) = outcome(&verdict);
    (status, message, state.consumer_id().map(str::to_owned))
}

fn clock() -> ManualClock {
    ManualClock::new(Duration::from_secs(NOW))
}

fn accepted() -> (u16, String, Option<String>) {
    (0, "continue".into(), Some("acme".into()))
}

#[test]
fn accepts_tokens_of_every_key_family() {
    let dir = directory();
    let c = clock();
    assert_eq!(
        check(
            &dir,
            &sign(
                Algorithm::RS256,
                Some("rsa1"),
                &claims("https://rsa.example/")
            ),
            &c
        ),
        accepted()
    );
    assert_eq!(
        check(
            &dir,
            &sign(Algorithm::ES256, None, &claims("https://ec.example/")),
            &c
        ),
        accepted()
    );
    assert_eq!(
        check(
            &dir,
            &sign(Algorithm::EdDSA, None, &claims("https://ed.example/")),
            &c
        ),
        accepted()
    );
    assert_eq!(
        check(
            &dir,
            &sign(Algorithm::HS256, None, &claims("https://hs.example/")),
            &c
        ),
        accepted()
    );
    assert_eq!(
        check(
            &dir,
            &sign(
                Algorithm::RS256,
                Some("jwks1"),
                &claims("https://jwks.example/")
            ),
            &c
        ),
        accepted()
    );
}

#[test]
fn rejects_alg_none() {
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let token = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(claims("https://hs.example/"))
    );
    let (status, message, consumer) = check(&directory(), &token, &clock());
    assert_eq!((status, consumer), (401, None));
    assert_eq!(message, "invalid token");
}

#[test]
fn rejects_hs256_signed_with_the_rsa_public_key() {
    let public_pem = fixture("rsa_public.pem");
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa1".into());
    let forged = encode(
        &header,
        &claims("https://rsa.example/"),
        &EncodingKey::from_secret(public_pem.as_bytes()),
    )
    .expect("sign");
    assert_eq!(check(&directory(), &forged, &clock()).0, 401);
    // Even where HS256 is allowed, the RSA key's kid only verifies RS256.
    header.kid = Some("a".into());
    let forged = encode(
        &header,
        &claims("https://two.example/"),
        &EncodingKey::from_secret(public_pem.as_bytes()),
    )
    .expect("sign");
    let (status, message, _) = check(&directory(), &forged, &clock());
    assert_eq!(
        (status, message.as_str()),
        (401, "token algorithm not allowed")
    );
}

#[test]
fn rejects_stripped_or_altered_signature_and_payload() {
    let dir = directory();
    let token = sign(
        Algorithm::RS256,
        Some("rsa1"),
        &claims("https://rsa.example/"),
    );
    let (head, sig) = token.rsplit_once('.').expect("three parts");
    assert_eq!(check(&dir, &format!("{head}."), &clock()).0, 401);
    let mut altered = sig.to_owned().into_bytes();
    altered[10] = if altered[10] == b'A' { b'B' } else { b'A' };
    let altered = format!("{head}.{}", String::from_utf8(altered).expect("ascii"));
    assert_eq!(check(&dir, &altered, &clock()).1, "invalid token signature");
    let mut other = claims("https://rsa.example/");
    other["sub"] = json!("mallory");
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(other.to_string());
    let header_part = token.split('.').next().expect("header");
    assert_eq!(
        check(&dir, &format!("{header_part}.{b64}.{sig}"), &clock()).0,
        401
    );
}

#[test]
fn rejects_unknown_kid_and_missing_kid_among_several_keys() {
    let dir = directory();
    let (status, message, _) = check(
        &dir,
        &sign(
            Algorithm::RS256,
            Some("nope"),
            &claims("https://rsa.example/"),
        ),
        &clock(),
    );
    assert_eq!((status, message.as_str()), (401, "unknown key id"));
    let (status, message, _) = check(
        &dir,
        &sign(Algorithm::RS256, None, &claims("https://two.example/")),
        &clock(),
    );
    assert_eq!((status, message.as_str()), (401, "token has no key id"));
    // One key and no kid: that key.
    assert_eq!(
        check(
            &dir,
            &sign(Algorithm::RS256, None, &claims("https://rsa.example/")),
            &clock()
        ),
        accepted()
    );
}

#[test]
fn rejects_expired_jwt_by_the_injected_clock_with_leeway() {
    let dir = directory();
    let token = sign(Algorithm::HS256, None, &claims("https://hs.example/"));
    let c = clock();
    // exp NOW + 300 and 30 s of leeway: valid before NOW + 330, expired from it on.
    c.set(Duration::from_secs(NOW + 300 + 29));
    assert_eq!(check(&dir, &token, &c), accepted());
    c.advance(Duration::from_secs(1));
    assert_eq!(check(&dir, &token, &c).1, "token expired");
}

#[test]
fn a_token_is_expired_at_its_exp_second_without_leeway() {
    let mut strict = issuer("strict", "https://strict.example/", &["HS256"], vec![]);
    strict.keys = vec![JwtKeySpec {
        kid: None,
        pem: None,
        secret: Some(SECRET.into()),
        jwks: None,
    }];
    strict.leeway_secs = Some(0);
    let dir = Directory::compile(
        &[consumer("acme", None, &[])],
        &[],
        &[],
        &[],
        &[strict],
        &Counters::default(),
    )
    .expect("valid issuer");
    let mut cl = claims("https://strict.example/");
    cl["exp"] = json!(NOW);
    let token = sign(Algorithm::HS256, None, &cl);
    let c = clock();
    assert_eq!(check(&dir, &token, &c).1, "token expired");
    c.set(Duration::from_secs(NOW - 1));
    assert_eq!(check(&dir, &token, &c), accepted());
}

/// An HS256 token of the `hs` issuer whose header is `header` (JSON), signed with the secret.
fn hs256_with_header(header: serde_json::Value) -> String {
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let message = format!("{}.{}", b64(&header), b64(&claims("https://hs.example/")));
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
        Algorithm::HS256,
    )
    .expect("sign");
    format!("{message}.{signature}")
}

#[test]
fn rejects_tokens_with_critical_extensions() {
    let dir = directory();
    let c = clock();
    assert_eq!(
        check(
            &dir,
            &hs256_with_header(json!({"alg": "HS256", "typ": "JWT"})),
            &c
        ),
        accepted(),
        "the hand-made token is valid without crit"
    );
    for crit in [json!(["b64"]), json!(["exp"]), json!([]), json!(null)] {
        let token = hs256_with_header(json!({"alg": "HS256", "crit": crit, "b64": false}));
        assert_eq!(
            check(&dir, &token, &c),
            (401, "token has critical extensions".into(), None),
            "crit {crit}"
        );
    }
}

#[test]
fn rejects_not_yet_valid_jwt() {
    let dir = directory();
    let mut cl = claims("https://hs.example/");
    cl["nbf"] = json!(NOW + 60);
    let token = sign(Algorithm::HS256, None, &cl);
    let c = clock();
    assert_eq!(check(&dir, &token, &c).1, "token not yet valid");
    c.advance(Duration::from_secs(30));
    assert_eq!(check(&dir, &token, &c), accepted());
}

#[test]
fn rejects_wrong_issuer_audience_missing_exp_and_unknown_consumer() {
    let dir = directory();
    let c = clock();
    let (status, message, _) = check(
        &dir,
        &sign(Algorithm::HS256, None, &claims("https://evil.example/")),
        &c,
    );
    assert_eq!((status, message.as_str()), (401, "unknown token issuer"));
    let mut cl = claims("https://hs.example/");
    cl["aud"] = json!("billing-api");
    assert_eq!(
        check(&dir, &sign(Algorithm::HS256, None, &cl), &c).1,
        "invalid token audience"
    );
    let mut cl = claims("https://hs.example/");
    cl.as_object_mut().expect("object").remove("aud");
    assert_eq!(
        check(&dir, &sign(Algorithm::HS256, None, &cl), &c).1,
        "invalid token audience"
    );
    let mut cl = claims("https://hs.example/");
    cl.as_object_mut().expect("object").remove("exp");
    assert_eq!(
        check(&dir, &sign(Algorithm::HS256, None, &cl), &c).1,
        "token has no valid exp"
    );
    let mut cl = claims("https://hs.example/");
    cl["sub"] = json!("ghost");
    assert_eq!(
        check(&dir, &sign(Algorithm::HS256, None, &cl), &c).1,
        "unknown consumer"
    );
    assert_eq!(check(&dir, "", &c).1, "missing bearer token");
}

#[test]
fn policy_limited_to_named_issuers_ignores_others() {
    let dir = directory();
    let policy = JwtAuth::compile(&JwtSpec {
        issuers: vec!["rsa".into()],
        ..Default::default()
    })
    .expect("policy");
    let token = sign(Algorithm::HS256, None, &claims("https://hs.example/"));
    let auth = format!("Bearer {token}");
    let h = headers(&[("authorization", &auth)]);
    let v = view(&Method::GET, "/", &h, "192.0.2.1");
    let verdict = policy.on_request(&v, &mut RequestState::default(), &dir, NOW);
    assert_eq!(outcome(&verdict).1, "unknown token issuer");
}

#[test]
fn validate_refuses_keys_that_do_not_parse_for_the_algorithms() {
    let paths = |spec: JwtIssuerSpec| -> Vec<String> {
        spec.validate().into_iter().map(|p| p.path).collect()
    };
    let garbage = JwtKeySpec {
        kid: None,
        pem: Some("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into()),
        secret: None,
        jwks: None,
    };
    assert_eq!(
        paths(issuer("a", "i", &["RS256"], vec![garbage])),
        ["keys[0].pem"]
    );
    assert_eq!(
        paths(issuer(
            "a",
            "i",
            &["RS256"],
            vec![pem_key(None, "rsa_private.pem")]
        )),
        ["keys[0].pem"]
    );
    assert_eq!(
        paths(issuer(
            "a",
            "i",
            &["RS256"],
            vec![pem_key(None, "ec_public.pem")]
        )),
        ["keys[0].pem"]
    );
    let secret = JwtKeySpec {
        kid: None,
        pem: None,
        secret: Some(SECRET.into()),
        jwks: None,
    };
    assert_eq!(
        paths(issuer("a", "i", &["RS256"], vec![secret])),
        ["keys[0].secret"]
    );
    let bad_jwks = JwtKeySpec {
        kid: None,
        pem: None,
        secret: None,
        jwks: Some(json!({"keys": "no"})),
    };
    assert_eq!(
        paths(issuer("a", "i", &["RS256"], vec![bad_jwks])),
        ["keys[0].jwks"]
    );
    let jwks = JwtKeySpec {
        kid: None,
        pem: None,
        secret: None,
        jwks: Some(rsa_jwks()),
    };
    assert_eq!(
        paths(issuer("a", "i", &["ES256"], vec![jwks.clone()])),
        ["keys[0].jwks"]
    );
    assert!(paths(issuer("a", "i", &["RS256"], vec![jwks])).is_empty());
    assert!(paths(issuer(
        "a",
        "i",
        &["EdDSA", "ES256"],
        vec![pem_key(None, "ed25519_public.pem")]
    ))
    .is_empty());
}

#[test]
fn a_jwks_hmac_key_shorter_than_a_secret_may_be_is_refused() {
    use base64::Engine as _;
    let oct = |bytes: &[u8]| {
        let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        JwtKeySpec {
            kid: None,
            pem: None,
            secret: None,
            jwks: Some(serde_json::json!({"keys": [{"kty": "oct", "kid": "h", "k": k}]})),
        }
    };
    let short = issuer("hs", "https://a/", &["HS256"], vec![oct(b"x")]);
    let problems = JwtIssuer::compile(&short).err().unwrap_or_default();
    assert!(
        problems
            .iter()
            .any(|p| p.path == "keys[0].jwks.keys[0].k" && p.message.contains("16 bytes")),
        "{problems:?}"
    );
    let long = issuer("hs", "https://a/", &["HS256"], vec![oct(&[7u8; 32])]);
    assert!(JwtIssuer::compile(&long).is_ok());
}
